//! The WebSocket echo server on tokio-websockets.
//!
//! tokio-websockets' `ServerBuilder::accept` does the handshake but answers any request that is
//! not an upgrade with a bare `400 Bad Request` the application never sees, so the page cannot
//! be served through it. This server reads the request head itself (`ws_crates::read_head`),
//! answers plain requests, writes the 101 (the crate computes the accept key inside its
//! handshake codec but does not export it: `ws_crates::accept_key`) and hands the stream to
//! `ServerBuilder::serve`. Pongs, the close reply and 1009 for an oversized frame are queued by
//! the crate and flushed on the next read.

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_websockets::{CloseCode, Error, Limits, Message, ServerBuilder, WebSocketStream};
use ws_crates::Options;

fn main() {
    ws_crates::run("ws-tokio-websockets", serve);
}

async fn serve(mut stream: TcpStream, opts: Options) -> Result<(), String> {
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
    let ws = ServerBuilder::new()
        .limits(Limits::default().max_payload_len(Some(opts.max_message)))
        .serve(stream);
    echo(ws).await
}

async fn echo(mut ws: WebSocketStream<TcpStream>) -> Result<(), String> {
    while let Some(message) = ws.next().await {
        match message {
            // Text stays text: the message keeps its opcode.
            Ok(m) if m.is_text() || m.is_binary() => ws.send(m).await.map_err(|e| e.to_string())?,
            // Ping and close: the pong and the close echo are queued by the crate and flushed by
            // the next `next()`, which then ends the stream after a close.
            Ok(_) => {}
            Err(Error::PayloadTooLong { len, max_len }) => {
                // A single oversized frame has already queued close 1009, and then `send`
                // refuses (AlreadyClosed) and only `flush` writes the queued frame; an oversized
                // *fragmented* message has queued nothing, and `send` does it.
                let close = Message::close(Some(CloseCode::MESSAGE_TOO_BIG), "message too big");
                if ws.send(close).await.is_err() {
                    let _ = ws.flush().await;
                }
                return Err(format!("message of {len} bytes above {max_len}"));
            }
            Err(e) => {
                // Protocol errors queued their close frame: flush it.
                let _ = ws.flush().await;
                return Err(e.to_string());
            }
        }
    }
    Ok(())
}
