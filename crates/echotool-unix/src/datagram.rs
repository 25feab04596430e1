//! Unix datagrams: the server sends every datagram back to its sender, and the client is a
//! socket connected to the server with an address of its own.
//!
//! A datagram can only be answered when its sender has an address. A Unix datagram socket
//! that never bound one (socat's `UNIX-SENDTO` without `bind=`, a program that just calls
//! `sendto`) has none: its datagrams are counted as dropped and logged at `-v` with what the
//! client must do. echotool's own client binds an abstract name the kernel picks; `nc -uU`
//! binds a temporary file of its own.
//!
//! The server never waits for long on one client: when an echo cannot be sent within
//! [`SEND_PATIENCE`] (the client does not read, and the kernel's buffers are full), it is
//! dropped and counted, as a UDP server's would be lost, so that one stuck client does not
//! stall everyone else.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use echotool_core::{
    DatagramSocket, EchoStats, HostPort, Result, ServeContext, Server, async_trait,
};
use socket2::{SockAddr, SockRef};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::net::unix::SocketAddr as UnixAddr;
use tracing::debug;

use crate::file::SocketFile;
use crate::socket::Bound;

/// The largest datagram echotool sends or echoes over a Unix socket: 64 KiB, the size of the
/// largest UDP datagrams, well within what the kernel allows with default buffers (a
/// datagram may take all but 32 bytes of the sender's 212992-byte send buffer).
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// How long the server waits to send one echo before dropping it.
pub const SEND_PATIENCE: Duration = Duration::from_millis(100);

/// What a `-v` log says about a datagram from a socket with no address.
const UNNAMED: &str = "dropped a datagram from an unnamed socket: there is no address to send \
     its echo to; a unixgram client must bind an address of its own (socat: UNIX-SENDTO:PATH,\
     bind=OWN_PATH; echotool connect and nc -uU do it for you)";

/// A bound Unix datagram echo server.
#[derive(Debug)]
pub struct UnixDatagramServer {
    socket: UnixDatagram,
    local: HostPort,
    /// Removed when the server stops.
    file: Option<SocketFile>,
    notes: Vec<String>,
}

impl UnixDatagramServer {
    /// Serves on a bound datagram socket.
    pub(crate) fn new(bound: Bound, notes: Vec<String>) -> Result<Self> {
        let local = HostPort::at_path(bound.name.to_string());
        let socket = UnixDatagram::from_std(bound.socket.into())
            .map_err(|e| echotool_core::Error::io(format!("serving on {local}"), e))?;
        Ok(UnixDatagramServer {
            socket,
            local,
            file: bound.file,
            notes,
        })
    }
}

#[async_trait]
impl Server for UnixDatagramServer {
    fn local_addr(&self) -> HostPort {
        self.local.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        let UnixDatagramServer { socket, file, .. } = *self;
        let echo = Echo {
            socket,
            stats: ctx.stats.clone(),
            url: ctx.url.clone(),
        };
        tokio::select! {
            () = echo.run() => {}
            () = ctx.shutdown.cancelled() => {}
        }
        drop(file);
        Ok(())
    }
}

/// The receive-echo loop.
struct Echo {
    socket: UnixDatagram,
    stats: Arc<EchoStats>,
    url: String,
}

impl Echo {
    async fn run(self) {
        // One byte more than any datagram echotool sends, so a longer one shows as such.
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(err) => {
                    self.stats.record_error();
                    debug!(listener = %self.url, error = %err, "receive failed");
                    continue;
                }
            };
            self.stats.record_received(n);
            let Some(to) = reply_address(&from) else {
                self.stats.dropped_unnamed.fetch_add(1, Relaxed);
                debug!(listener = %self.url, bytes = n, "{UNNAMED}");
                continue;
            };
            self.send(&buf[..n], &to, &from).await;
        }
    }

    /// Sends one echo to `to` (which is `from`), waiting at most [`SEND_PATIENCE`] for room.
    async fn send(&self, payload: &[u8], to: &SockAddr, from: &UnixAddr) {
        // tokio sends only to paths; socket2 sends to abstract names too.
        let sending = self.socket.async_io(Interest::WRITABLE, || {
            SockRef::from(&self.socket).send_to(payload, to)
        });
        let peer = sender(from);
        match tokio::time::timeout(SEND_PATIENCE, sending).await {
            Ok(Ok(_)) => self.stats.record_sent(payload.len()),
            Ok(Err(err)) => {
                self.stats.record_error();
                debug!(listener = %self.url, %peer, error = %err, "send failed");
            }
            Err(_) => {
                self.stats.dropped_stalled.fetch_add(1, Relaxed);
                debug!(listener = %self.url, %peer, bytes = payload.len(),
                    "dropped an echo: the client's socket took nothing for {} ms",
                    SEND_PATIENCE.as_millis());
            }
        }
    }
}

/// Where to send the echo of a datagram from `from`: its path or abstract name; `None` for
/// an unnamed socket.
fn reply_address(from: &UnixAddr) -> Option<SockAddr> {
    let path = match (from.as_pathname(), from.as_abstract_name()) {
        (Some(path), _) => path.as_os_str().to_os_string(),
        (None, Some(name)) => OsStr::from_bytes(&[&[0u8][..], name].concat()).to_os_string(),
        (None, None) => return None,
    };
    SockAddr::unix(path).ok()
}

/// A datagram's sender for logs: its path, or `@name`.
fn sender(addr: &UnixAddr) -> String {
    match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
        (None, None) => "an unnamed socket".into(),
    }
}

/// A client's datagram socket, connected to the server.
pub(crate) struct UnixgramClient {
    pub(crate) socket: UnixDatagram,
}

#[async_trait]
impl DatagramSocket for UnixgramClient {
    async fn send(&self, payload: &[u8]) -> io::Result<()> {
        self.socket.send(payload).await.map(drop)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf).await
    }

    fn max_payload(&self) -> usize {
        MAX_DATAGRAM
    }
}
