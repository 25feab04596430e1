//! The echo loop for byte streams: read what arrives, write it back, exactly, until the peer
//! half-closes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use crate::admission::Activity;
use crate::latch::{Fired, Latch};
use crate::{BoxStream, EchoStats};

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

/// The echo of a byte stream and its counters, once it has ended.
#[derive(Debug)]
pub struct Echoed {
    /// How the echo ended; an I/O error ends it early.
    pub end: io::Result<EchoEnd>,
    /// What it echoed.
    pub conn: ConnStats,
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
pub fn echo_stream<'a>(
    stream: BoxStream,
    stats: &'a EchoStats,
    activity: Activity,
    shutdown: &Latch,
) -> EchoStream<'a> {
    EchoStream {
        stream,
        stats,
        activity,
        cancelled: shutdown.fired(),
        conn: ConnStats::default(),
        state: State::Reading,
    }
}

/// The future of [`echo_stream`].
///
/// Written by hand, as tokio writes `io::copy`, rather than as an `async` block: every idle
/// connection's task holds this state for its whole life, and a generator keeps every local
/// of every await point side by side, where this keeps one state at a time (issue 19: an idle
/// TCP connection's task went from 512 to 384 bytes with it).
pub struct EchoStream<'a> {
    stream: BoxStream,
    stats: &'a EchoStats,
    activity: Activity,
    cancelled: Fired,
    conn: ConnStats,
    state: State,
}

/// Where an echo is.
enum State {
    /// Waiting for data (holding no buffer) or for shutdown.
    Reading,
    /// Writing back `buf[written..len]`.
    Writing {
        buf: Buffer,
        written: usize,
        len: usize,
    },
    /// Flushing the echo of this many bytes (TLS seals its record here).
    Flushing(usize),
    /// Shutting the write side down after the loop ended.
    Closing(EchoEnd),
    /// Returned its result.
    Done,
}

impl EchoStream<'_> {
    /// Ends the echo: how, with what it echoed.
    fn finish(&mut self, end: io::Result<EchoEnd>) -> Poll<Echoed> {
        self.state = State::Done;
        Poll::Ready(Echoed {
            end,
            conn: self.conn,
        })
    }
}

impl Future for EchoStream<'_> {
    type Output = Echoed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Echoed> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Reading => {
                    // A buffer from the thread's spares for this poll only: it goes back when
                    // the read would wait, so a connection holds one only while data is there.
                    let mut buf = Buffer::take();
                    let mut dst = ReadBuf::new(&mut buf);
                    match Pin::new(&mut *this.stream).poll_read(cx, &mut dst) {
                        Poll::Ready(Ok(())) => {
                            let len = dst.filled().len();
                            this.state = match len {
                                0 => State::Closing(EchoEnd::PeerClosed),
                                _ => {
                                    this.activity.touch();
                                    State::Writing {
                                        buf,
                                        written: 0,
                                        len,
                                    }
                                }
                            };
                        }
                        Poll::Ready(Err(err)) => return this.finish(Err(err)),
                        // Data first: shutdown ends the loop only when it would have to wait.
                        Poll::Pending => match Pin::new(&mut this.cancelled).poll(cx) {
                            Poll::Ready(()) => this.state = State::Closing(EchoEnd::Shutdown),
                            Poll::Pending => return Poll::Pending,
                        },
                    }
                }
                // A peer that stops reading stalls the write; the sweep counts that as idle too.
                State::Writing { buf, written, len } => {
                    while *written < *len {
                        let rest = &buf[*written..*len];
                        match Pin::new(&mut *this.stream).poll_write(cx, rest) {
                            Poll::Ready(Ok(0)) => {
                                return this.finish(Err(io::ErrorKind::WriteZero.into()));
                            }
                            Poll::Ready(Ok(n)) => *written += n,
                            Poll::Ready(Err(err)) => return this.finish(Err(err)),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    this.state = State::Flushing(*len);
                }
                State::Flushing(len) => {
                    let len = *len;
                    match Pin::new(&mut *this.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(err)) => return this.finish(Err(err)),
                        Poll::Pending => return Poll::Pending,
                    }
                    this.stats.record_echo(len);
                    this.conn.bytes += len as u64;
                    this.conn.messages += 1;
                    this.state = State::Reading;
                }
                State::Closing(end) => {
                    let end = *end;
                    // The peer may already be gone; that is not an error worth reporting.
                    if Pin::new(&mut *this.stream).poll_shutdown(cx).is_pending() {
                        return Poll::Pending;
                    }
                    return this.finish(Ok(end));
                }
                State::Done => panic!("an echo was polled after it ended"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn echoes_exactly_and_half_closes() {
        let (mut client, server) = tokio::io::duplex(1024);
        let stats = EchoStats::default();
        let token = Latch::new();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let echo = echo_stream(Box::new(server), &stats, Activity::unwatched(), &token);
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
        let (echoed, back) = tokio::join!(echo, client_side);
        assert_eq!(echoed.end.unwrap(), EchoEnd::PeerClosed);
        assert_eq!(back, payload);
        let s = stats.snapshot();
        assert_eq!((s.bytes_in, s.bytes_out), (100_000, 100_000));
        assert_eq!(echoed.conn.bytes, 100_000);
    }
}
