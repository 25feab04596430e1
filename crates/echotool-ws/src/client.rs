//! The WebSocket client: dial (TCP, then TLS for wss), upgrade (the request written and the
//! 101 checked here, so that a refusal reads as what the server said), then messages.
//!
//! Core's client and benchmark speak to a connection of messages through
//! [`DatagramSocket`]: one message per `send`, one per `recv`. A WebSocket message also has a
//! type, which that trait has no word for, so the socket chooses it: a payload that is valid
//! UTF-8 goes as text (a typed line), anything else as binary; and since the server answers in
//! order, each echo is checked to come back with the type its message went with.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;

use echotool_core::{BoxStream, DatagramSocket, async_trait, lock_ignoring_poison};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_websockets::{ClientBuilder, CloseCode, Limits, Message, WebSocketStream};

use crate::head;

type Ws = WebSocketStream<BoxStream>;

/// Upgrades `stream` to a WebSocket at `path` on `host` (the Host header); the error says
/// what the server answered instead of a proper 101.
pub(crate) async fn upgrade(stream: &mut BoxStream, host: &str, path: &str) -> io::Result<()> {
    let key = head::new_key()?;
    stream
        .write_all(&head::upgrade_request(host, path, &key))
        .await?;
    stream.flush().await?;
    let (response, mut body) = head::read_head(stream).await.map_err(|e| match e {
        head::HeadError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    })?;
    // A refusal's one line is worth reading to the end, within its Content-Length.
    let wanted = head::content_length(&response);
    while body.len() < wanted {
        let mut more = [0u8; 1024];
        match tokio::io::AsyncReadExt::read(stream, &mut more).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&more[..n]),
        }
    }
    head::check_response(&response, &body, &key)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
    if !body.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent data right after the 101, before any message: not an echo server",
        ));
    }
    Ok(())
}

/// An upgraded connection as a socket of messages.
pub(crate) struct WsSocket {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    stream: tokio::sync::Mutex<SplitStream<Ws>>,
    /// Whether each message awaiting its echo went as text, oldest first.
    sent_text: Mutex<VecDeque<bool>>,
    /// The largest message this client takes, and sends.
    max_message: usize,
}

impl WsSocket {
    /// Takes over a stream that has been upgraded.
    pub(crate) fn new(stream: BoxStream, max_message: usize) -> Self {
        let limits = Limits::default().max_payload_len(Some(max_message));
        let ws = ClientBuilder::new().limits(limits).take_over(stream);
        let (sink, stream) = ws.split();
        WsSocket {
            sink: tokio::sync::Mutex::new(sink),
            stream: tokio::sync::Mutex::new(stream),
            sent_text: Mutex::new(VecDeque::new()),
            max_message,
        }
    }

    /// Checks that an echo has the type its message was sent with.
    fn check_type(&self, message: &Message) -> io::Result<()> {
        let expected = lock_ignoring_poison(&self.sent_text).pop_front();
        let name = |text: bool| if text { "text" } else { "binary" };
        match expected {
            Some(text) if text != message.is_text() => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a {} message came back {}: the server does not keep each message's type",
                    name(text),
                    name(message.is_text())
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The server's close frame, in words.
fn closed_by_server(message: &Message) -> io::Error {
    let said = match message.as_close() {
        Some((code, "")) => format!("{}", u16::from(code)),
        Some((code, reason)) => format!("{} ({reason})", u16::from(code)),
        None => "no code".into(),
    };
    let hint = match message.as_close().map(|(code, _)| code) {
        Some(CloseCode::MESSAGE_TOO_BIG) => {
            "; the message was above its limit (--ws-max-message on an echotool server)"
        }
        _ => "",
    };
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("the server closed the WebSocket with {said}{hint}"),
    )
}

#[async_trait]
impl DatagramSocket for WsSocket {
    async fn send(&self, payload: &[u8]) -> io::Result<()> {
        let message = match std::str::from_utf8(payload) {
            Ok(text) => Message::text(text.to_owned()),
            Err(_) => Message::binary(payload.to_vec()),
        };
        let mut sink = self.sink.lock().await;
        lock_ignoring_poison(&self.sent_text).push_back(message.is_text());
        sink.send(message).await.map_err(io::Error::other)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut stream = self.stream.lock().await;
        loop {
            let message = match stream.next().await {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection without a close frame",
                    ));
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(message)) => message,
            };
            if message.is_close() {
                return Err(closed_by_server(&message));
            }
            if !(message.is_text() || message.is_binary()) {
                continue;
            }
            self.check_type(&message)?;
            let payload = message.as_payload();
            let n = payload.len().min(buf.len());
            buf[..n].copy_from_slice(&payload[..n]);
            return Ok(n);
        }
    }

    fn max_payload(&self) -> usize {
        self.max_message
    }
}

impl Drop for WsSocket {
    /// Says goodbye with close 1000 when the frame can go at once, so that the server logs an
    /// orderly end rather than a vanished client.
    fn drop(&mut self) {
        if let Ok(mut sink) = self.sink.try_lock() {
            let bye = Message::close(Some(CloseCode::NORMAL_CLOSURE), "");
            let _ = sink.send(bye).now_or_never();
        }
    }
}
