//! The WebSocket echo server on tokio-tungstenite (with tungstenite, its sans-IO core).
//!
//! tokio-tungstenite's own server handshake (`accept_hdr_async`) cannot serve the page: its
//! callback only runs after tungstenite's `create_response` accepted the request as an upgrade,
//! and a plain `GET /` fails before it with nothing written back. So this server reads the
//! request head itself (`ws_crates::read_head`), answers plain requests, writes the 101 with
//! `tungstenite::handshake::derive_accept_key`, and hands the stream to
//! `WebSocketStream::from_raw_socket`. Pongs and the close reply are queued by tungstenite and
//! flushed on the next read; an oversized message is an error the server must answer with
//! 1009 itself. `--crate-handshake` uses `accept_hdr_async` instead, to show the above.
//! `--small-buffers` trades the default 128 KiB read and write buffers for 8 KiB.

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};
use ws_crates::Options;

fn main() {
    ws_crates::run("ws-tungstenite", serve);
}

async fn serve(mut stream: TcpStream, opts: Options) -> Result<(), String> {
    if opts.rest.iter().any(|f| f == "--crate-handshake") {
        return serve_crate_handshake(stream, opts).await;
    }
    let head = ws_crates::read_head(&mut stream).await?;
    let Some(key) = head.key.as_deref().filter(|_| head.upgrade) else {
        return ws_crates::answer_plain(&mut stream, &head)
            .await
            .map_err(|e| e.to_string());
    };
    let accept = derive_accept_key(key.as_bytes());
    stream
        .write_all(ws_crates::switching_protocols(&accept).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut config = WebSocketConfig::default()
        .max_message_size(Some(opts.max_message))
        .max_frame_size(Some(opts.max_message));
    // `--small-buffers`: tungstenite allocates its 128 KiB read buffer eagerly per connection
    // (since 0.25); 8 KiB is what its changelog suggests for many mostly idle connections.
    if opts.rest.iter().any(|f| f == "--small-buffers") {
        config = config
            .read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024);
    }
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    echo(ws).await
}

/// `--crate-handshake`: tungstenite's own server handshake, whose callback would be the place
/// to answer a plain request. It is never called for one: `create_response` refuses the
/// request first and the connection closes with nothing written (see ws-crates.md).
// The callback's error type is tungstenite's (`http::Response<Option<String>>`), not ours.
#[allow(clippy::result_large_err)]
async fn serve_crate_handshake(stream: TcpStream, opts: Options) -> Result<(), String> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(opts.max_message))
        .max_frame_size(Some(opts.max_message));
    let callback = |request: &Request, response: Response| {
        eprintln!("callback: {} {}", request.method(), request.uri());
        Ok::<Response, ErrorResponse>(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    echo(ws).await
}

async fn echo(mut ws: WebSocketStream<TcpStream>) -> Result<(), String> {
    while let Some(message) = ws.next().await {
        match message {
            // Text stays text: tungstenite keeps the opcode in the variant.
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                ws.send(m).await.map_err(|e| e.to_string())?
            }
            // Ping: the pong is already queued. Close: the echoed close frame is queued; the
            // next `next()` flushes it and ends the stream.
            Ok(_) => {}
            Err(Error::Capacity(e)) => {
                let frame = CloseFrame {
                    code: CloseCode::Size,
                    reason: "message too big".into(),
                };
                // The peer may already be gone; the reason is the capacity error either way.
                let _ = ws.close(Some(frame)).await;
                return Err(e.to_string());
            }
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}
