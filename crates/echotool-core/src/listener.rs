//! The accept loop shared by every stream server (TCP, TLS): connection limit, accept-error
//! back-off, a task per connection, idle and handshake timeouts, and a graceful drain; and the
//! handshake bookkeeping every secure server shares (QUIC too): a failed handshake is logged
//! with its explanation and counted under a short cause.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, info, warn};

use crate::admission::{Activity, Admission, Slot};
use crate::echo::{ConnStats, echo_stream};
use crate::signal::Signal;
use crate::{BoxStream, ByteStream, Limits, Result, ServeContext};

/// The accepting half of a stream server, owned by the accept loop and dropped (closing the
/// listening socket) the moment shutdown begins, so new clients are refused at once.
#[async_trait]
pub trait Accept: Send + 'static {
    /// What `accept` returns before any handshake (a `TcpStream`).
    type Conn: Send + 'static;

    /// Accepts the next connection.
    async fn accept(&mut self) -> io::Result<(Self::Conn, SocketAddr)>;
}

/// Why a connection's handshake failed: a short cause the summary counts by, and the full
/// explanation the log shows. Built by the transports that know the protocol (TLS, QUIC).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandshakeError {
    /// A few words, the same for every failure of this kind, that read well after a number:
    /// "not TLS", "untrusted certificate", "timed out".
    pub cause: &'static str,
    /// What went wrong and what to do, in words.
    pub message: String,
}

impl HandshakeError {
    /// A failure of kind `cause`, explained by `message`.
    pub fn new(cause: &'static str, message: impl Into<String>) -> Self {
        HandshakeError {
            cause,
            message: message.into(),
        }
    }
}

/// The cause of a handshake that did not finish within the handshake timeout.
pub const TIMED_OUT: &str = "timed out";

/// Turns an accepted connection into a byte stream (for TLS, the handshake). Shared by every
/// connection's task; runs under the handshake timeout, and its failure closes only that
/// connection.
#[async_trait]
pub trait Upgrade<C>: Send + Sync + 'static {
    /// Completes the connection.
    async fn upgrade(&self, conn: C, peer: SocketAddr) -> Result<BoxStream, HandshakeError>;
}

/// The upgrade of plain streams: none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

#[async_trait]
impl<C: ByteStream> Upgrade<C> for Plain {
    async fn upgrade(&self, conn: C, _peer: SocketAddr) -> Result<BoxStream, HandshakeError> {
        Ok(Box::new(conn))
    }
}

/// Serves echo streams accepted by `listener` and completed by `upgrade` until `ctx.shutdown`
/// is cancelled; then closes the listening socket, lets in-flight echoes finish for up to
/// `limits.drain_timeout`, and cuts what is left.
///
/// Errors of one connection are logged and counted, never returned: the loop only ends on
/// shutdown.
pub async fn serve_streams<L, U>(mut listener: L, upgrade: U, limits: Limits, ctx: ServeContext)
where
    L: Accept,
    U: Upgrade<L::Conn>,
{
    let upgrade = Arc::new(upgrade);
    let mut admission = Admission::new(&limits, &ctx.url);
    let stop = Signal::following(&ctx.shutdown);
    let mut backoff = AcceptBackoff::default();
    loop {
        let Some(reserved) = admission.reserve(&ctx.shutdown).await else {
            break;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctx.shutdown.cancelled() => break,
        };
        let (conn, peer) = match accepted {
            Ok(accepted) => {
                if backoff.recovered() {
                    info!(listener = %ctx.url, "accepting connections again");
                }
                accepted
            }
            Err(err) => {
                match backoff.after(&err) {
                    Some(pause) => {
                        if backoff.first_pause() {
                            warn!(listener = %ctx.url, error = %err,
                                "cannot accept connections (out of file descriptors or memory); \
                                 retrying with back-off until some close");
                        }
                        debug!(listener = %ctx.url, error = %err, pause_ms = pause.as_millis() as u64,
                            "accept paused");
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            () = ctx.shutdown.cancelled() => break,
                        }
                    }
                    None => debug!(listener = %ctx.url, error = %err, "accept failed"),
                }
                continue;
            }
        };
        let Some(slot) = admission.admit(reserved, &ctx.stats) else {
            debug!(listener = %ctx.url, %peer, max_conns = limits.max_conns,
                "refused: connection limit reached");
            drop(conn);
            continue;
        };
        let handler = Handler {
            upgrade: upgrade.clone(),
            stop: stop.clone(),
            ctx: ctx.clone(),
            limits: limits.clone(),
            peer,
            _slot: slot,
        };
        admission.spawn(peer, |activity| handler.run(conn, activity));
    }
    // Closing the listening socket now refuses newcomers while the others drain.
    drop(listener);
    admission.drain(&ctx.url).await;
}

/// One connection: handshake, echo, and the bookkeeping around them.
struct Handler<U> {
    /// Shared by all connections; performs the upgrade (handshake).
    upgrade: Arc<U>,
    /// Fires at shutdown: cheap to wait on beside the socket.
    stop: Signal,
    /// Listener name, counters and the shutdown signal.
    ctx: ServeContext,
    /// Timeouts for this connection.
    limits: Limits,
    /// Who is on the other side, for logs.
    peer: SocketAddr,
    /// Held for the life of the connection; dropping it lets the next one in.
    _slot: Slot,
}

impl<U> Handler<U> {
    async fn run<C>(self, conn: C, activity: Activity)
    where
        U: Upgrade<C>,
    {
        let stats = &self.ctx.stats;
        let _open = stats.open_connection();
        let (url, peer) = (&self.ctx.url, self.peer);
        debug!(listener = %url, %peer, "accepted");
        let Some(mut stream) = handshake(
            self.upgrade.upgrade(conn, peer),
            self.limits.handshake_timeout,
            &self.ctx,
            peer,
        )
        .await
        else {
            return;
        };
        let mut conn = ConnStats::default();
        match echo_stream(&mut *stream, stats, &mut conn, &activity, &self.stop).await {
            Ok(end) => {
                debug!(listener = %url, %peer, ?end, bytes = conn.bytes, messages = conn.messages, "closed");
            }
            Err(err) => {
                stats.record_error();
                debug!(listener = %url, %peer, error = %err, bytes = conn.bytes, messages = conn.messages,
                    "connection error");
            }
        }
    }
}

/// Runs a connection's handshake under `limit`. A failure or a timeout is counted as a failed
/// handshake under its cause and logged at debug level against the listener and the peer;
/// only that connection ends.
pub async fn handshake<T>(
    handshake: impl std::future::Future<Output = Result<T, HandshakeError>>,
    limit: Duration,
    ctx: &ServeContext,
    peer: SocketAddr,
) -> Option<T> {
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(done)) => Some(done),
        Ok(Err(err)) => {
            handshake_failed(ctx, peer, &err);
            None
        }
        Err(_) => {
            handshake_timed_out(ctx, peer, limit);
            None
        }
    }
}

/// Counts and logs a failed handshake.
pub fn handshake_failed(ctx: &ServeContext, peer: SocketAddr, err: &HandshakeError) {
    ctx.stats.record_failed_handshake(err.cause);
    debug!(listener = %ctx.url, %peer, cause = err.cause, error = %err.message, "handshake failed");
}

/// Counts and logs a handshake that did not finish within `limit`.
pub fn handshake_timed_out(ctx: &ServeContext, peer: SocketAddr, limit: Duration) {
    ctx.stats.record_failed_handshake(TIMED_OUT);
    debug!(listener = %ctx.url, %peer, cause = TIMED_OUT, timeout_ms = limit.as_millis() as u64,
        "handshake timed out");
}

/// Exponential back-off for accept errors that mean "out of resources" (descriptors, memory):
/// retrying at once would spin, giving up would kill the server.
#[derive(Debug, Default)]
struct AcceptBackoff {
    current: Duration,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// Resets after a successful accept; true if accepting had been failing.
    fn recovered(&mut self) -> bool {
        std::mem::take(&mut self.current) > Duration::ZERO
    }

    /// Whether the pause just chosen is the first of a run of failures.
    fn first_pause(&self) -> bool {
        self.current == Self::FIRST
    }

    /// The pause before the next accept, or `None` when the error concerned one connection
    /// only (it was reset before we took it) and accepting again at once is right.
    fn after(&mut self, err: &io::Error) -> Option<Duration> {
        let exhausted = matches!(
            err.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !exhausted {
            return None;
        }
        self.current = (self.current * 2).clamp(Self::FIRST, Self::MAX);
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_resets() {
        let mut b = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(b.after(&emfile), Some(Duration::from_millis(5)));
        assert_eq!(b.after(&emfile), Some(Duration::from_millis(10)));
        for _ in 0..20 {
            b.after(&emfile);
        }
        assert_eq!(b.after(&emfile), Some(Duration::from_secs(1)));
        assert!(b.recovered());
        assert!(!b.recovered());
        assert_eq!(b.after(&emfile), Some(Duration::from_millis(5)));
        assert!(b.first_pause());
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(b.after(&aborted), None);
    }
}
