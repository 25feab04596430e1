//! QUIC streams and datagrams as echotool channels.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use echotool_core::{DatagramSocket, async_trait};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Turns a lost connection into words (the client's view: alerts, verification failures).
pub(crate) type Explain = Arc<dyn Fn(&quinn::ConnectionError) -> String + Send + Sync>;

/// A client's connection and endpoint, closed in an orderly way (code 0, rather than letting
/// the server time it out) when the last stream or opener holding it is dropped.
pub(crate) struct ClientConnection {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl ClientConnection {
    pub(crate) fn new(conn: quinn::Connection, endpoint: quinn::Endpoint) -> Arc<Self> {
        Arc::new(ClientConnection {
            conn,
            _endpoint: endpoint,
        })
    }
}

impl Drop for ClientConnection {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"done");
    }
}

/// One bidirectional QUIC stream as a byte stream: reads from its receive half, writes to its
/// send half, and half-close finishes the send half (FIN).
pub(crate) struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// A client's connection, shared by its streams and held only so that it closes when the
    /// last of them goes; a server's stream leaves its connection alone.
    _owner: Option<Arc<ClientConnection>>,
    /// A client explains a lost connection: a server that wants a client certificate says so
    /// only after the handshake, on the first read.
    explain: Option<Explain>,
}

impl QuicStream {
    pub(crate) fn client(
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        owner: Arc<ClientConnection>,
        explain: Explain,
    ) -> Self {
        QuicStream {
            send,
            recv,
            _owner: Some(owner),
            explain: Some(explain),
        }
    }

    pub(crate) fn server(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        QuicStream {
            send,
            recv,
            _owner: None,
            explain: None,
        }
    }

    fn explained(&self, err: io::Error) -> io::Error {
        let lost = err.get_ref().and_then(|inner| {
            if let Some(quinn::ReadError::ConnectionLost(e)) = inner.downcast_ref() {
                Some(e)
            } else if let Some(quinn::WriteError::ConnectionLost(e)) = inner.downcast_ref() {
                Some(e)
            } else {
                None
            }
        });
        match (lost, &self.explain) {
            (Some(lost), Some(explain)) => io::Error::new(err.kind(), explain(lost)),
            _ => err,
        }
    }
}

/// More streams on a client's connection (`Connection::streams`), each independent.
pub(crate) struct QuicOpener {
    pub(crate) owner: Arc<ClientConnection>,
    pub(crate) explain: Explain,
}

#[async_trait]
impl echotool_core::StreamOpener for QuicOpener {
    async fn open(&self) -> io::Result<echotool_core::BoxStream> {
        let (send, recv) =
            self.owner.conn.open_bi().await.map_err(|e| {
                io::Error::new(io::ErrorKind::ConnectionAborted, (self.explain)(&e))
            })?;
        Ok(Box::new(QuicStream::client(
            send,
            recv,
            self.owner.clone(),
            self.explain.clone(),
        )))
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explained(e))),
            other => other,
        }
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explained(e))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx)
    }
}

/// A QUIC connection's unreliable datagrams (RFC 9221) as a datagram socket.
pub(crate) struct QuicDatagrams {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    max: usize,
}

impl QuicDatagrams {
    pub(crate) fn new(conn: quinn::Connection, endpoint: quinn::Endpoint, max: usize) -> Self {
        QuicDatagrams {
            conn,
            _endpoint: endpoint,
            max,
        }
    }
}

impl Drop for QuicDatagrams {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"done");
    }
}

#[async_trait]
impl DatagramSocket for QuicDatagrams {
    async fn send(&self, payload: &[u8]) -> io::Result<()> {
        self.conn
            .send_datagram_wait(Bytes::copy_from_slice(payload))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let datagram = self
            .conn
            .read_datagram()
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()))?;
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }

    fn max_payload(&self) -> usize {
        self.max
    }
}

/// What `-v` shows about a client connection.
pub(crate) fn describe(conn: &quinn::Connection, early: bool) -> Vec<String> {
    let handshake = if early {
        "0-RTT (resumed session, early data)"
    } else {
        "1-RTT handshake"
    };
    let negotiated = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .map(|d| {
            echotool_secure::describe_negotiated(
                d.cipher_suite,
                d.key_exchange_group,
                d.protocol.as_deref(),
            )
        })
        // A 0-RTT dial returns before the server has answered.
        .unwrap_or_else(|| "the handshake still under way".into());
    let mut details = vec![
        format!("connected to {}", conn.remote_address()),
        format!(
            "QUIC v1 with TLS 1.3, {negotiated}, {handshake}, largest datagram {} bytes",
            conn.max_datagram_size().unwrap_or(0)
        ),
    ];
    let certs = conn.peer_identity().and_then(|id| {
        id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()
    });
    if let Some(first) = certs.as_ref().and_then(|c| c.first()) {
        details.push(echotool_secure::describe_certificate(first));
    }
    details
}
