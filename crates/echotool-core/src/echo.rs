//! The echo loop for byte streams: read what arrives, write it back, exactly, until the peer
//! half-closes.

use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{ByteStream, EchoStats};

/// Size of the buffer a busy connection reads into. Large enough for one read to drain a
/// loopback burst, small enough that thousands of busy connections fit in little memory.
pub const ECHO_BUFFER: usize = 16 * 1024;

/// Why an echo loop ended without an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoEnd {
    /// The peer half-closed and received the echo of everything it sent.
    PeerClosed,
    /// Nothing arrived (or nothing could be written) for the idle timeout.
    IdleTimeout,
    /// The server is shutting down and this connection had nothing in flight.
    Shutdown,
}

/// Counters of one connection, logged when it closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes echoed (received and sent back).
    pub bytes: u64,
    /// Read-then-write rounds.
    pub messages: u64,
}

/// Echoes `stream` until the peer closes its side, the idle timeout passes, or shutdown.
///
/// An idle connection holds no buffer: the loop waits for readiness first and only then takes
/// one, and gives it back when the next read would wait. Writes block while the peer does not
/// read, so a client that never reads costs one buffer, not unbounded memory. After
/// end-of-stream the write side is shut down so the peer sees the echo end too.
///
/// On `shutdown`, data that has already arrived is still echoed (it is in flight); the loop
/// ends at the first moment it would have to wait.
pub async fn echo_stream<S: ByteStream + ?Sized>(
    stream: &mut S,
    stats: &EchoStats,
    conn: &mut ConnStats,
    idle: Option<Duration>,
    shutdown: &CancellationToken,
) -> io::Result<EchoEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let end = loop {
        let ready_now = poll_fn(|cx| Poll::Ready(stream.poll_read_ready(cx))).await;
        match ready_now {
            Poll::Ready(result) => result?,
            Poll::Pending => {
                buf = Vec::new();
                if shutdown.is_cancelled() {
                    break EchoEnd::Shutdown;
                }
                let wait = poll_fn(|cx| stream.poll_read_ready(cx));
                tokio::select! {
                    ready = wait => ready?,
                    () = sleep_or_forever(idle) => break EchoEnd::IdleTimeout,
                    () = shutdown.cancelled() => break EchoEnd::Shutdown,
                }
            }
        }
        if buf.capacity() == 0 {
            buf.reserve_exact(ECHO_BUFFER);
        }
        buf.clear();
        // Streams without readiness of their own (TLS) wait here rather than above, so the
        // idle timeout and shutdown must be watched here too. `biased` reads first: data that
        // has already arrived is echoed even while shutting down.
        let n = tokio::select! {
            biased;
            n = stream.read_buf(&mut buf) => n?,
            () = sleep_or_forever(idle) => break EchoEnd::IdleTimeout,
            () = shutdown.cancelled() => break EchoEnd::Shutdown,
        };
        if n == 0 {
            break EchoEnd::PeerClosed;
        }
        let write = async {
            stream.write_all(&buf[..n]).await?;
            stream.flush().await
        };
        match idle {
            Some(limit) => match tokio::time::timeout(limit, write).await {
                Ok(written) => written?,
                Err(_) => break EchoEnd::IdleTimeout,
            },
            None => write.await?,
        }
        stats.record_echo(n);
        conn.bytes += n as u64;
        conn.messages += 1;
    };
    // The peer may already be gone; that is not an error worth reporting.
    let _ = stream.shutdown().await;
    Ok(end)
}

/// Sleeps for `limit`, or forever when there is none.
pub(crate) async fn sleep_or_forever(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ByteStream for tokio::io::DuplexStream {}

    #[tokio::test]
    async fn echoes_exactly_and_half_closes() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let stats = EchoStats::default();
        let token = CancellationToken::new();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut conn = ConnStats::default();
        let echo = echo_stream(&mut server, &stats, &mut conn, None, &token);
        let client_side = async {
            let (mut rd, mut wr) = tokio::io::split(&mut client);
            let send = async {
                wr.write_all(&payload).await.unwrap();
                wr.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let recv = rd.read_to_end(&mut back);
            let (_, n) = tokio::join!(send, recv);
            n.unwrap();
            back
        };
        let (end, back) = tokio::join!(echo, client_side);
        assert_eq!(end.unwrap(), EchoEnd::PeerClosed);
        assert_eq!(back, payload);
        let s = stats.snapshot();
        assert_eq!((s.bytes_in, s.bytes_out), (100_000, 100_000));
        assert_eq!(conn.bytes, 100_000);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_a_silent_connection() {
        let stats = EchoStats::default();
        let token = CancellationToken::new();
        // A stream without readiness of its own (like TLS) whose peer never sends: the loop
        // waits in `read`, and the idle timeout must fire there.
        let end = tokio::time::timeout(
            Duration::from_secs(10),
            echo_stream(
                &mut NeverReady,
                &stats,
                &mut ConnStats::default(),
                Some(Duration::from_secs(1)),
                &token,
            ),
        )
        .await
        .expect("idle timeout should fire");
        assert_eq!(end.unwrap(), EchoEnd::IdleTimeout);
    }

    /// A stream whose readiness never comes, like a socket the peer never writes to.
    struct NeverReady;

    impl ByteStream for NeverReady {}

    impl tokio::io::AsyncRead for NeverReady {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl tokio::io::AsyncWrite for NeverReady {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
