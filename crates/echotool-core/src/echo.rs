//! The echo loop for byte streams: read what arrives, write it back, exactly, until the peer
//! half-closes.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncWriteExt, ReadBuf};

use crate::admission::Activity;
use crate::latch::Latch;
use crate::{ByteStream, EchoStats};

/// Size of the buffer a busy connection reads into. Large enough for one read to drain a
/// loopback burst, small enough that thousands of busy connections fit in little memory.
pub const ECHO_BUFFER: usize = 16 * 1024;

/// Spare buffers kept per thread, so a connection that waits between messages does not
/// allocate and free 16 KiB each time (a tenth of the server's own instructions per message
/// before this pool). At most 1 MiB per thread.
const SPARE_BUFFERS: usize = 64;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An echo buffer on loan from this thread's spares; goes back when dropped.
struct Buffer(Vec<u8>);

impl Buffer {
    /// A buffer of [`ECHO_BUFFER`] initialised bytes (zeroed once, when first allocated).
    fn take() -> Buffer {
        let spare = SPARE.with(|s| s.borrow_mut().pop());
        Buffer(spare.unwrap_or_else(|| vec![0; ECHO_BUFFER]))
    }
}

impl std::ops::Deref for Buffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        // The task may have moved threads since `take`; any thread's pool will do.
        let _ = SPARE.try_with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < SPARE_BUFFERS && buf.len() == ECHO_BUFFER {
                spare.push(buf);
            }
        });
    }
}

/// Why an echo loop ended without an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoEnd {
    /// The peer half-closed and received the echo of everything it sent.
    PeerClosed,
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

/// Echoes `stream` until the peer closes its side or shutdown (the idle timeout is the
/// [`crate::admission`] sweep's: `activity` is touched after each message).
///
/// An idle connection holds no buffer: each read takes one from a per-thread pool only while
/// data is there, and gives it back after the echo. Writes block while the peer does not
/// read, so a client that never reads costs one buffer, not unbounded memory. After
/// end-of-stream the write side is shut down so the peer sees the echo end too.
///
/// On `shutdown`, data that has already arrived is still echoed (it is in flight); the loop
/// ends at the first moment it would have to wait.
///
/// The hot path arms no timer, takes no lock and allocates nothing: the shutdown signal is one
/// lock-free future, buffers come from the thread's spares, and activity is a relaxed store.
///
/// Not an `async fn`: rustc would keep its five arguments twice in the future, which every
/// idle connection's task holds for its whole life (issue 19).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice (issue 19)"
)]
pub fn echo_stream<'a, S: ByteStream + ?Sized>(
    stream: &'a mut S,
    stats: &'a EchoStats,
    conn: &'a mut ConnStats,
    activity: &'a Activity,
    shutdown: &'a Latch,
) -> impl Future<Output = io::Result<EchoEnd>> + Send + 'a {
    async move {
        let mut cancelled = shutdown.fired();
        let end = loop {
            // The read takes a buffer from the thread's spares each time it is polled and gives it
            // back when it would wait, so a connection holds a buffer only while data is there.
            // `biased`: data that has arrived is echoed even while shutting down; a connection
            // ends on shutdown only when it would have to wait.
            let read = poll_fn(|cx| {
                let mut buf = Buffer::take();
                let mut dst = ReadBuf::new(&mut buf);
                match Pin::new(&mut *stream).poll_read(cx, &mut dst) {
                    Poll::Ready(Ok(())) => {
                        let n = dst.filled().len();
                        Poll::Ready(Ok((buf, n)))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            });
            let (buf, n) = tokio::select! {
                biased;
                read = read => read?,
                () = &mut cancelled => break EchoEnd::Shutdown,
            };
            if n == 0 {
                break EchoEnd::PeerClosed;
            }
            activity.touch();
            // A peer that stops reading stalls the write; the sweep counts that as idle too.
            stream.write_all(&buf[..n]).await?;
            stream.flush().await?;
            stats.record_echo(n);
            conn.bytes += n as u64;
            conn.messages += 1;
        };
        // The peer may already be gone; that is not an error worth reporting.
        let _ = stream.shutdown().await;
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn echoes_exactly_and_half_closes() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let stats = EchoStats::default();
        let token = Latch::new();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut conn = ConnStats::default();
        let activity = Activity::unwatched();
        let echo = echo_stream(&mut server, &stats, &mut conn, &activity, &token);
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
}
