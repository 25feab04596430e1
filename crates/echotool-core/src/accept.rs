//! The accept loop shared by every connection server (TCP, TLS, QUIC, and any transport to
//! come): connection limit, accept-error back-off, a task per connection, idle and handshake
//! timeouts, the echo of every stream and datagram a connection carries, and a graceful drain;
//! and the handshake bookkeeping every secure server shares: a failed handshake is logged with
//! its explanation and counted under a short cause.
//!
//! A transport brings two things: an [`AcceptSource`], where connections come from (a
//! listening TCP socket, a QUIC endpoint), and a [`Handshake`], what turns an accepted
//! connection into something to echo (nothing for TCP, a TLS handshake, a QUIC handshake).
//! [`serve_connections`] does everything else, so a new transport gets limits, idle sweeping,
//! drain, counters and logging by implementing those two, not by copying them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admission::{Activity, Admission, Slot};
use crate::echo::{EchoEnd, Echoed, echo_stream};
use crate::latch::Latch;
use crate::{BoxStream, ByteStream, EchoStats, Limits, Peer, ServeContext};

/// Where a connection server's connections come from: a listening socket, a QUIC endpoint.
/// Owned by the accept loop, which stops it the moment shutdown begins, so that newcomers are
/// refused at once while the connections already open drain.
#[async_trait]
pub trait AcceptSource: Send + Sized + 'static {
    /// A connection as accepted, before any handshake (a `TcpStream`, a QUIC `Incoming`).
    type Incoming: Send + 'static;

    /// Accepts the next connection and says who it comes from; `Ok(None)` once the source has
    /// closed for good.
    async fn accept(&mut self) -> io::Result<Option<(Self::Incoming, Peer)>>;

    /// Turns away a connection beyond the limit (the `refuse` policy). By default it is
    /// dropped, which closes it.
    fn refuse(&self, incoming: Self::Incoming) {
        drop(incoming);
    }

    /// Whether the transport closes idle connections itself (QUIC's idle timeout), so the
    /// loop's own idle sweep stays out of its way.
    fn closes_idle_connections(&self) -> bool {
        false
    }

    /// Takes no more connections: closes the listening socket, or tells the endpoint to
    /// refuse. Called once, when shutdown begins.
    fn stop_accepting(&mut self);

    /// After the drain: anything left before the server returns (QUIC: close the endpoint
    /// and let its last packets go out).
    async fn finish(self) {}
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
    /// The cause of a handshake that did not finish within the handshake timeout.
    pub const TIMED_OUT: &'static str = "timed out";

    /// A failure of kind `cause`, explained by `message`.
    pub fn new(cause: &'static str, message: impl Into<String>) -> Self {
        HandshakeError {
            cause,
            message: message.into(),
        }
    }
}

/// Turns an accepted connection into something to echo (for TLS and QUIC, the handshake).
/// Shared by every connection's task; runs under the handshake timeout, and its failure
/// closes only that connection.
#[async_trait]
pub trait Handshake<I>: Send + Sync + 'static {
    /// Completes the connection.
    async fn handshake(&self, incoming: I, peer: Peer) -> Result<Established, HandshakeError>;
}

/// A connection ready to echo.
pub struct Established {
    /// What it carries.
    pub connected: Connected,
    /// A handshake still finishing while the connection is already served (QUIC's 0.5-RTT,
    /// which lets a resuming client's early data be echoed at once): how it ends. `None` when
    /// the handshake is complete. It still has to finish within the handshake timeout.
    pub finishing: Option<Finishing>,
}

/// The rest of a handshake that finishes in the background; `Ok` also when this server
/// itself closed the connection meanwhile (shutdown is nobody's failure).
pub type Finishing = Pin<Box<dyn Future<Output = Result<(), HandshakeError>> + Send>>;

impl Established {
    /// A connection whose handshake is complete and that carries one byte stream.
    pub fn stream(stream: BoxStream) -> Self {
        Established {
            connected: Connected::Stream(stream),
            finishing: None,
        }
    }
}

/// What an established connection carries.
pub enum Connected {
    /// One byte stream, echoed until the peer half-closes (TCP, TLS).
    Stream(BoxStream),
    /// Streams the peer opens and datagrams it sends, each echoed (QUIC).
    Multiplexed(Box<dyn Multiplexed>),
}

/// A connection that carries many streams and datagrams (QUIC).
#[async_trait]
pub trait Multiplexed: Send {
    /// The next thing the peer opens or sends. A datagram is echoed on the spot (by the
    /// transport, which can do it without a copy) and reported.
    async fn next(&mut self) -> Arrival;

    /// Closes the connection, telling the peer `reason` (shutdown, handshake timeout).
    fn close(&mut self, reason: &str);
}

/// What a [`Multiplexed`] connection brought.
pub enum Arrival {
    /// A new stream to echo.
    Stream(BoxStream),
    /// A datagram of `bytes` bytes, and whether its echo went out.
    Datagram {
        /// Its size.
        bytes: usize,
        /// Why its echo could not be sent, if it could not.
        echoed: io::Result<()>,
    },
    /// The connection ended: orderly (closed by either side, or idle) when `error` is `None`.
    Closed {
        /// What went wrong, if something did.
        error: Option<String>,
    },
}

/// The handshake of plain streams: none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

#[async_trait]
impl<C: ByteStream> Handshake<C> for Plain {
    async fn handshake(&self, conn: C, _peer: Peer) -> Result<Established, HandshakeError> {
        Ok(Established::stream(Box::new(conn)))
    }
}

/// Serves the connections `source` accepts and `handshake` completes until `ctx.shutdown` is
/// cancelled; then stops accepting, lets in-flight echoes finish for up to
/// `limits.drain_timeout`, cuts what is left, and lets the source finish.
///
/// Errors of one connection are logged and counted, never returned: the loop only ends on
/// shutdown (or when the source closes for good).
pub async fn serve_connections<S, H>(mut source: S, handshake: H, limits: Limits, ctx: ServeContext)
where
    S: AcceptSource,
    H: Handshake<S::Incoming>,
{
    let swept = match source.closes_idle_connections() {
        true => Limits {
            idle_timeout: None,
            ..limits.clone()
        },
        false => limits.clone(),
    };
    let mut admission = Admission::new(&swept);
    // One allocation for what every connection shares, not a copy of it in each (issue 19).
    let shared = Arc::new(Shared {
        handshake,
        stop: Latch::following(&ctx.shutdown),
        ctx: ctx.clone(),
        handshake_timeout: limits.handshake_timeout,
    });
    let mut backoff = AcceptBackoff::default();
    while let Some(reserved) = admission.reserve(&ctx.shutdown).await {
        let accepted = tokio::select! {
            accepted = source.accept() => accepted,
            () = ctx.shutdown.cancelled() => break,
        };
        let (incoming, peer) = match accepted {
            Ok(Some(accepted)) => {
                if backoff.recovered() {
                    info!(listener = %ctx.url, "accepting connections again");
                }
                accepted
            }
            Ok(None) => break,
            Err(err) => {
                if !backoff.wait_after(&err, &ctx).await {
                    break;
                }
                continue;
            }
        };
        let Some(slot) = admission.admit(reserved, &ctx.stats) else {
            debug!(listener = %ctx.url, %peer, max_conns = limits.max_conns,
                "refused: connection limit reached");
            source.refuse(incoming);
            continue;
        };
        // Boxed: the task would otherwise keep the accepted item's room (384 bytes for QUIC)
        // for the life of the connection; the handshake frees the box.
        let incoming = Box::new(incoming);
        let shared = shared.clone();
        admission.spawn(slot, |slot, activity| {
            let handler = Handler {
                shared,
                peer,
                activity,
                _slot: slot,
            };
            handler.run(incoming)
        });
    }
    // Refusing newcomers now, while the others drain.
    source.stop_accepting();
    admission.drain(&ctx.url).await;
    source.finish().await;
}

/// What every connection of one listener shares, behind one `Arc`.
struct Shared<H> {
    /// Performs the handshake.
    handshake: H,
    /// Fires at shutdown: cheap to wait on beside the socket.
    stop: Latch,
    /// Listener name, counters and the shutdown signal.
    ctx: ServeContext,
    /// The only limit a connection applies itself (the others are the loop's and the sweep's).
    handshake_timeout: Duration,
}

/// One connection: handshake, echo, and the bookkeeping around them. Kept small: every idle
/// connection's task holds one for its whole life (issue 19).
struct Handler<H> {
    /// What all connections share.
    shared: Arc<Shared<H>>,
    /// Who is on the other side, for logs.
    peer: Peer,
    /// Its idle mark: touched by the echo, and read on drop to log an idle timeout (the sweep
    /// ends the task without knowing who it is, issue 19).
    activity: Activity,
    /// Held for the life of the connection; dropping it lets the next one in, and the drain
    /// waits for every one.
    _slot: Slot,
}

impl<H> Drop for Handler<H> {
    /// The idle sweep ends a connection by aborting its task, which drops its handler here.
    fn drop(&mut self) {
        if self.activity.timed_out() {
            debug!(listener = %self.shared.ctx.url, peer = %self.peer, "closed: idle timeout");
        }
    }
}

impl<H> Handler<H> {
    /// The connection's task. Not an `async fn`: rustc keeps an async fn's arguments and the
    /// locals they are moved into side by side for the life of the future, so every idle
    /// connection would carry its handler and accepted item twice. The block captures each
    /// once, and the handshake (the largest state, with its timer) runs in a box of its own
    /// that is freed when it ends.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice (issue 19)"
    )]
    fn run<I>(self, incoming: Box<I>) -> impl Future<Output = ()> + Send + 'static
    where
        H: Handshake<I>,
        I: Send + 'static,
    {
        async move {
            let _open = self.shared.ctx.stats.open_connection();
            let Some(Established {
                connected,
                finishing,
            }) = Box::pin(self.establish(incoming)).await
            else {
                return;
            };
            match connected {
                Connected::Stream(stream) => {
                    drop(finishing);
                    let shared = &*self.shared;
                    let activity = self.activity.clone();
                    let echoed = echo_stream(stream, &shared.ctx.stats, activity, &shared.stop);
                    self.ended(echoed.await, "closed");
                }
                // Boxed: its state is larger than a stream's, and would make every stream
                // connection's task larger too.
                Connected::Multiplexed(conn) => {
                    Box::pin(self.serve_multiplexed(conn, finishing)).await;
                }
            }
        }
    }

    /// The handshake under its timeout; `None` (counted and logged) when it failed.
    async fn establish<I>(&self, incoming: Box<I>) -> Option<Established>
    where
        H: Handshake<I>,
    {
        let shared = &*self.shared;
        debug!(listener = %shared.ctx.url, peer = %self.peer, "accepted");
        let started = {
            // The box is freed at the end of this block, as the handshake takes the item.
            let incoming = incoming;
            shared.handshake.handshake(*incoming, self.peer)
        };
        handshake(started, shared.handshake_timeout, &shared.ctx, self.peer).await
    }

    /// Logs how one echo loop ended; an error counts.
    fn ended(&self, echoed: Echoed, what: &'static str) {
        let (url, peer) = (&self.shared.ctx.url, self.peer);
        let Echoed { end, conn } = echoed;
        match end {
            Ok(end) => {
                debug!(listener = %url, %peer, ?end, bytes = conn.bytes, messages = conn.messages, "{what}");
            }
            Err(err) => {
                self.shared.ctx.stats.record_error();
                debug!(listener = %url, %peer, error = %err, bytes = conn.bytes,
                    messages = conn.messages, "connection error");
            }
        }
    }

    /// A connection of many streams and datagrams: every stream echoed in a task of its own,
    /// every datagram counted as the transport echoes it, until the connection ends or
    /// shutdown (which lets the streams finish, then closes the connection).
    async fn serve_multiplexed(
        &self,
        mut conn: Box<dyn Multiplexed>,
        finishing: Option<Finishing>,
    ) {
        let activity = &self.activity;
        let stats = &self.shared.ctx.stats;
        let mut streams = JoinSet::new();
        let mut stopped = self.shared.stop.fired();
        let limit = self.shared.handshake_timeout;
        let mut finishing = finishing.map(|f| Box::pin(tokio::time::timeout(limit, f)));
        // Failed: the handshake failure was counted, so the connection's end is not an error.
        let mut failed = false;
        let error = loop {
            tokio::select! {
                arrival = conn.next() => match arrival {
                    Arrival::Stream(stream) => {
                        activity.touch();
                        let echo = StreamEcho {
                            stats: stats.clone(),
                            stop: self.shared.stop.clone(),
                            activity: activity.clone(),
                        };
                        streams.spawn(echo.run(stream));
                    }
                    Arrival::Datagram { bytes, echoed } => {
                        activity.touch();
                        record_datagram(stats, bytes, echoed, &self.shared.ctx.url, self.peer);
                    }
                    Arrival::Closed { error } => break error,
                },
                Some(joined) = streams.join_next() => self.stream_ended(joined),
                done = async { finishing.as_mut().expect("guarded").await }, if finishing.is_some() => {
                    finishing = None;
                    failed = !self.handshake_finished(done, &mut *conn);
                }
                () = &mut stopped => {
                    while let Some(joined) = streams.join_next().await {
                        self.stream_ended(joined);
                    }
                    conn.close("server shutting down");
                    break None;
                }
            }
        };
        // Lost before its handshake finished: the handshake says why (a client that refused
        // the certificate), and that is its failure, not a connection error.
        if let Some(rest) = finishing {
            failed = !self.handshake_finished(rest.await, &mut *conn);
        }
        while let Some(joined) = streams.join_next().await {
            self.stream_ended(joined);
        }
        match error {
            Some(err) if !failed => {
                stats.record_error();
                debug!(listener = %self.shared.ctx.url, peer = %self.peer, error = %err, "connection error");
            }
            _ => debug!(listener = %self.shared.ctx.url, peer = %self.peer, "closed"),
        }
    }
}

impl<H> Handler<H> {
    /// Counts a stream of a multiplexed connection that ended in an error.
    fn stream_ended(&self, joined: Result<io::Result<EchoEnd>, tokio::task::JoinError>) {
        let err = match joined {
            Ok(Ok(_)) => return,
            Ok(Err(err)) => err.to_string(),
            Err(join) => join.to_string(),
        };
        self.shared.ctx.stats.record_error();
        debug!(listener = %self.shared.ctx.url, peer = %self.peer, error = %err, "stream error");
    }

    /// How a handshake finishing in the background ended; counts and logs a failure or a
    /// timeout (closing the connection then) and returns whether it succeeded.
    fn handshake_finished(
        &self,
        done: Result<Result<(), HandshakeError>, tokio::time::error::Elapsed>,
        conn: &mut dyn Multiplexed,
    ) -> bool {
        match done {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                handshake_failed(&self.shared.ctx, self.peer, &err);
                false
            }
            Err(_) => {
                let limit = self.shared.handshake_timeout;
                handshake_timed_out(&self.shared.ctx, self.peer, limit);
                conn.close("handshake timeout");
                false
            }
        }
    }
}

/// One stream of a multiplexed connection, echoed in a task of its own.
struct StreamEcho {
    stats: Arc<EchoStats>,
    stop: Latch,
    activity: Activity,
}

impl StreamEcho {
    async fn run(self, stream: BoxStream) -> io::Result<EchoEnd> {
        echo_stream(stream, &self.stats, self.activity, &self.stop)
            .await
            .end
    }
}

/// Counts a datagram a multiplexed connection echoed, or failed to.
fn record_datagram(stats: &EchoStats, bytes: usize, echoed: io::Result<()>, url: &str, peer: Peer) {
    stats.record_received(bytes);
    match echoed {
        Ok(()) => stats.record_sent(bytes),
        Err(err) => {
            stats.record_error();
            debug!(listener = %url, %peer, error = %err, bytes, "datagram not echoed");
        }
    }
}

/// Runs a connection's handshake under `limit`. A failure or a timeout is counted as a failed
/// handshake under its cause and logged at debug level against the listener and the peer;
/// only that connection ends.
async fn handshake<T>(
    handshake: impl std::future::Future<Output = Result<T, HandshakeError>>,
    limit: Duration,
    ctx: &ServeContext,
    peer: Peer,
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
fn handshake_failed(ctx: &ServeContext, peer: Peer, err: &HandshakeError) {
    ctx.stats.record_failed_handshake(err.cause);
    debug!(listener = %ctx.url, %peer, cause = err.cause, error = %err.message, "handshake failed");
}

/// Counts and logs a handshake that did not finish within `limit`.
fn handshake_timed_out(ctx: &ServeContext, peer: Peer, limit: Duration) {
    ctx.stats.record_failed_handshake(HandshakeError::TIMED_OUT);
    debug!(listener = %ctx.url, %peer, cause = HandshakeError::TIMED_OUT, timeout_ms = limit.as_millis() as u64,
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

    /// After an accept error: pauses (with back-off) when resources ran out, says so once,
    /// and returns `false` when shutdown came meanwhile.
    async fn wait_after(&mut self, err: &io::Error, ctx: &ServeContext) -> bool {
        let Some(pause) = self.after(err) else {
            debug!(listener = %ctx.url, error = %err, "accept failed");
            return true;
        };
        if self.first_pause() {
            warn!(listener = %ctx.url, error = %err,
                "cannot accept connections (out of file descriptors or memory); retrying with \
                 back-off until some close");
        }
        debug!(listener = %ctx.url, error = %err, pause_ms = pause.as_millis() as u64, "accept paused");
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = ctx.shutdown.cancelled() => false,
        }
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
    use crate::{CancellationToken, Kind, OnLimit};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    /// Connections handed in by the test, as if accepted.
    struct Queue {
        incoming: mpsc::Receiver<DuplexStream>,
        refused: mpsc::UnboundedSender<()>,
        stopped: bool,
    }

    #[async_trait]
    impl AcceptSource for Queue {
        type Incoming = DuplexStream;

        async fn accept(&mut self) -> io::Result<Option<(DuplexStream, Peer)>> {
            if self.stopped {
                return Ok(None);
            }
            let peer = Peer::Ip("127.0.0.1:1".parse().expect("an address"));
            Ok(self.incoming.recv().await.map(|s| (s, peer)))
        }

        fn refuse(&self, incoming: DuplexStream) {
            drop(incoming);
            let _ = self.refused.send(());
        }

        fn stop_accepting(&mut self) {
            self.stopped = true;
        }
    }

    fn context() -> ServeContext {
        ServeContext {
            url: "test://queue".into(),
            stats: Arc::new(EchoStats::new(Kind::Stream)),
            shutdown: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn the_loop_echoes_refuses_beyond_the_limit_and_drains() {
        let (tx, incoming) = mpsc::channel(4);
        let (refused, mut refusals) = mpsc::unbounded_channel();
        let queue = Queue {
            incoming,
            refused,
            stopped: false,
        };
        let limits = Limits {
            max_conns: 1,
            on_limit: OnLimit::Refuse,
            ..Limits::default()
        };
        let ctx = context();
        let server = tokio::spawn(serve_connections(queue, Plain, limits, ctx.clone()));
        let (mut first, theirs) = tokio::io::duplex(1024);
        tx.send(theirs).await.unwrap();
        first.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        first.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        // A second connection while the first is open: refused at the limit of one.
        let (_second, theirs) = tokio::io::duplex(1024);
        tx.send(theirs).await.unwrap();
        refusals.recv().await.expect("refused");
        // Shutdown with the first one idle: it is drained, and the loop ends.
        ctx.shutdown.cancel();
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("drained in time")
            .unwrap();
        let s = ctx.stats.snapshot();
        assert_eq!(
            (s.connections, s.messages, s.refused, s.errors),
            (1, 1, 1, 0)
        );
    }

    /// A multiplexed connection that ends at once with an error, as a QUIC connection whose
    /// client refused the certificate does.
    struct Refusing;

    #[async_trait]
    impl Multiplexed for Refusing {
        async fn next(&mut self) -> Arrival {
            Arrival::Closed {
                error: Some("the peer sent an alert".into()),
            }
        }

        fn close(&mut self, _reason: &str) {}
    }

    /// A handshake that serves the connection before it finishes (0.5-RTT) and then fails.
    struct FailsLate;

    #[async_trait]
    impl Handshake<DuplexStream> for FailsLate {
        async fn handshake(&self, _: DuplexStream, _: Peer) -> Result<Established, HandshakeError> {
            let finishing = async { Err(HandshakeError::new("untrusted certificate", "no")) };
            Ok(Established {
                connected: Connected::Multiplexed(Box::new(Refusing)),
                finishing: Some(Box::pin(finishing)),
            })
        }
    }

    #[tokio::test]
    async fn a_handshake_that_fails_late_is_a_failed_handshake_not_an_error() {
        let (tx, incoming) = mpsc::channel(1);
        let (refused, _refusals) = mpsc::unbounded_channel();
        let queue = Queue {
            incoming,
            refused,
            stopped: false,
        };
        let ctx = context();
        let server = tokio::spawn(serve_connections(
            queue,
            FailsLate,
            Limits::default(),
            ctx.clone(),
        ));
        let (_ours, theirs) = tokio::io::duplex(64);
        tx.send(theirs).await.unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the loop ends when the source does")
            .unwrap();
        let s = ctx.stats.snapshot();
        assert_eq!(
            (s.connections, s.errors, s.failed_handshakes_total()),
            (1, 0, 1)
        );
        assert_eq!(s.failed_handshake_causes(), "1 untrusted certificate");
    }

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
