//! TLS streams as echotool byte streams: errors from rustls explained on the way out, a
//! client's end without close_notify taken as its end, and the facts `-v` shows about a
//! session.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use echotool_core::TlsClientOptions;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use echotool_secure::describe_certificate;
use echotool_secure::explain::{explain_io, rustls_error};
use echotool_secure::{Side, TlsError};

/// A TLS stream whose rustls errors arrive explained (a TLS 1.3 server that wants a client
/// certificate says so only after the handshake, on the first read).
pub(crate) struct TlsByteStream<S> {
    inner: S,
    side: Side,
    name: String,
    opts: TlsClientOptions,
}

impl<S> TlsByteStream<S> {
    pub(crate) fn new(inner: S, side: Side, name: String, opts: TlsClientOptions) -> Self {
        TlsByteStream {
            inner,
            side,
            name,
            opts,
        }
    }

    fn explained(&self, err: io::Error) -> io::Error {
        if rustls_error(&err).is_some() {
            let message = explain_io(&err, self.side, &self.name, &self.opts);
            io::Error::new(err.kind(), TlsError::Handshake(message))
        } else {
            err
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TlsByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            // Many clients drop the connection without close_notify (a killed `openssl
            // s_client`, most HTTP clients). Truncation matters to a client waiting for data;
            // to an echo server it is just the end of that client.
            Poll::Ready(Err(e)) if self.side == Side::Server && is_missing_close_notify(&e) => {
                debug!(peer = %self.name, "the client closed without close_notify: its end");
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explained(e))),
            other => other,
        }
    }
}

/// The end of a TCP connection that was not announced with a TLS close_notify alert (rustls
/// reports it as an unexpected end of file of its own making).
fn is_missing_close_notify(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof && rustls_error(err).is_none()
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TlsByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explained(e))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What `-v` shows about a client session: version, cipher suite, key exchange, ALPN and the
/// server's certificate.
pub(crate) fn describe_client(
    tls: &tokio_rustls::client::TlsStream<TcpStream>,
    peer: SocketAddr,
) -> Vec<String> {
    let conn = tls.get_ref().1;
    let mut details = vec![
        format!("connected to {peer}"),
        echotool_secure::describe_session(conn),
    ];
    if let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) {
        details.push(describe_certificate(cert));
    }
    details
}
