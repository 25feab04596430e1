//! The WebSocket echo server on fastwebsockets, two ways.
//!
//! By default the crate's own server path: hyper 1 parses every request, `GET /` is answered by
//! the hyper service like any HTTP request (the natural place for the page), and an upgrade
//! goes through `fastwebsockets::upgrade::upgrade`, whose future yields the socket once hyper
//! has sent the 101. With `--own-handshake` the server skips hyper: it reads the head itself
//! (`ws_crates::read_head`) and wraps the raw stream with `WebSocket::after_handshake`, so the
//! cost of hyper in setup and memory shows separately.
//!
//! `FragmentCollector` reassembles fragments and the crate answers pings and echoes the close
//! frame on its own (`auto_pong`, `auto_close`); an oversized frame is an error the server
//! answers with 1009 itself. The size limit is per frame: the collector does not cap a message
//! made of many frames (see benches/results/ws-crates.md).

use std::convert::Infallible;

use fastwebsockets::{FragmentCollector, Frame, OpCode, Role, WebSocket, WebSocketError, upgrade};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_crates::Options;

fn main() {
    ws_crates::run("ws-fastwebsockets", |stream, opts| async move {
        if opts.rest.iter().any(|f| f == "--own-handshake") {
            serve_raw(stream, opts).await
        } else {
            serve_hyper(stream, opts).await
        }
    });
}

async fn serve_hyper(stream: TcpStream, opts: Options) -> Result<(), String> {
    let max = opts.max_message;
    let service = service_fn(move |req| respond(req, max));
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
        .map_err(|e| e.to_string())
}

/// The hyper service: the 101 for an upgrade (the echo runs in its own task once hyper hands
/// the socket over), the page or a 4xx for anything else.
async fn respond(
    mut req: Request<Incoming>,
    max: usize,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if upgrade::is_upgrade_request(&req) {
        match upgrade::upgrade(&mut req) {
            Ok((response, socket)) => {
                tokio::spawn(async move {
                    if let Ok(ws) = socket.await {
                        let _ = echo(ws, max).await;
                    }
                });
                let (parts, _) = response.into_parts();
                return Ok(Response::from_parts(parts, Full::default()));
            }
            Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, "text/plain", e.to_string())),
        }
    }
    let (status, kind, body) = ws_crates::plain_response(req.method().as_str(), req.uri().path());
    let status = status
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    Ok(plain(status, kind, body.to_owned()))
}

fn plain(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(kind) = kind.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, kind);
    }
    response
}

async fn serve_raw(mut stream: TcpStream, opts: Options) -> Result<(), String> {
    let head = ws_crates::read_head(&mut stream).await?;
    let Some(key) = head.key.as_deref().filter(|_| head.upgrade) else {
        return ws_crates::answer_plain(&mut stream, &head)
            .await
            .map_err(|e| e.to_string());
    };
    stream
        .write_all(ws_crates::switching_protocols(&ws_crates::accept_key(key)).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    echo(
        WebSocket::after_handshake(stream, Role::Server),
        opts.max_message,
    )
    .await
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
    max: usize,
) -> Result<(), String> {
    // The crate refuses a frame of `len >= max`: one more byte lets a message of exactly `max`
    // through, as the other servers do.
    ws.set_max_message_size(max + 1);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = match ws.read_frame().await {
            Ok(frame) => frame,
            Err(WebSocketError::FrameTooLarge) => {
                let _ = ws.write_frame(Frame::close(1009, b"message too big")).await;
                return Err("frame too large".into());
            }
            Err(WebSocketError::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        match frame.opcode {
            // Text stays text: the reassembled frame keeps the first frame's opcode.
            OpCode::Text | OpCode::Binary => {
                ws.write_frame(frame).await.map_err(|e| e.to_string())?
            }
            // The crate has already written the close echo.
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}
