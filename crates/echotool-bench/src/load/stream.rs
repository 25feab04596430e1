//! Load over one byte stream: one future owns the stream and drives both directions.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use echotool_core::BoxStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::{Drive, SPIN, Window};
use crate::payload::Payload;
use crate::tally::Tally;

/// Echo over one byte stream until the window closes.
///
/// One future owns the stream and does both directions by polling it directly: no split
/// lock, no channel, no second task per connection, so the client costs little more per
/// message than the two system calls it needs (it must not be the bottleneck it measures).
pub async fn stream_echo(stream: BoxStream, drive: Drive, window: Window) -> Tally {
    let mut driver = StreamDriver::new(stream, drive, window);
    if let Some(rate) = drive.rate {
        driver.tally.scheduled = window.scheduled(rate);
    }
    std::future::poll_fn(|cx| driver.poll(cx)).await;
    if driver.tally.errors == 0 {
        // An orderly end (a close_notify, a FIN), and the server's end in turn,
        // so the server does not count an abrupt close as an error.
        let close = async {
            driver.stream.shutdown().await?;
            let mut rest = [0u8; 256];
            while driver.stream.read(&mut rest).await? > 0 {}
            Ok::<_, io::Error>(())
        };
        let _ = tokio::time::timeout(drive.echo_timeout, close).await;
    }
    driver.tally
}

/// A message on its way.
struct InFlight {
    seq: u64,
    /// The moment its latency counts from (scheduled, or when its slot freed).
    stamp: Instant,
    /// The moment it was queued for writing; its echo timeout counts from here.
    left: Instant,
}

/// The state of one stream connection under load.
struct StreamDriver {
    stream: BoxStream,
    payload: Payload,
    drive: Drive,
    window: Window,
    tally: Tally,
    /// Every message sent and not yet echoed: sequence number, the time it counts from, and
    /// the time it really left (timeouts count from there).
    in_flight: VecDeque<InFlight>,
    /// Closed loop: free slots, each with the moment it was freed.
    free: VecDeque<Instant>,
    /// Open loop: when the next message is due, and the timer that waits for it.
    due: Instant,
    /// The message being written and how much of it has gone out (`out.len()`: none).
    out: Vec<u8>,
    out_sent: usize,
    /// Written but not yet flushed (an encrypting stream may hold written data until flushed).
    unflushed: bool,
    /// The echo being read and how much of it has arrived.
    echo: Vec<u8>,
    echo_got: usize,
    next_seq: u64,
    /// No more messages will be sent (window closed, or the stream failed).
    sending_done: bool,
    /// Wakes the driver for the next scheduled send, the end of the window, or an echo
    /// that is overdue.
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl StreamDriver {
    fn new(stream: BoxStream, drive: Drive, window: Window) -> Self {
        let size = drive.size.max(1);
        let now = Instant::now();
        let closed_loop = drive.rate.is_none();
        StreamDriver {
            stream,
            payload: Payload::new(drive.size),
            drive,
            window,
            tally: Tally::default(),
            in_flight: VecDeque::new(),
            free: if closed_loop {
                std::iter::repeat_n(now, drive.depth.max(1)).collect()
            } else {
                VecDeque::new()
            },
            due: now,
            out: vec![0; size],
            out_sent: size,
            unflushed: false,
            echo: vec![0; size],
            echo_got: 0,
            next_seq: 0,
            sending_done: false,
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// Advances sending and receiving as far as possible; ready once every sent message has
    /// been echoed (or the connection failed) after the window closed.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut progress = false;
            match self.poll_send(cx) {
                Ok(p) => progress |= p,
                Err(err) => return self.fail(err),
            }
            match self.poll_receive(cx) {
                Ok(p) => progress |= p,
                Err(err) => return self.fail(err),
            }
            if self.sending_done && self.in_flight.is_empty() && self.out_sent == self.out.len() {
                return Poll::Ready(());
            }
            if !progress {
                return self.poll_timer(cx);
            }
        }
    }

    /// Starts the next message when its slot or time has come, and writes what is pending.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if self.out_sent == self.out.len() {
                if self.unflushed {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(err)) => return Err(err),
                        Poll::Pending => return Ok(progress),
                    }
                }
                let Some(stamp) = self.next_stamp() else {
                    return Ok(progress);
                };
                self.payload.fill(self.next_seq, &mut self.out);
                self.in_flight.push_back(InFlight {
                    seq: self.next_seq,
                    stamp,
                    left: Instant::now(),
                });
                self.next_seq += 1;
                self.out_sent = 0;
            }
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.out_sent..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Ready(Ok(n)) => {
                    self.out_sent += n;
                    self.unflushed = true;
                    progress = true;
                }
                Poll::Pending => return Ok(progress),
            }
        }
    }

    /// The time the next message counts from, if it may be sent now.
    fn next_stamp(&mut self) -> Option<Instant> {
        if self.sending_done {
            return None;
        }
        let stamp = match self.drive.rate {
            None => *self.free.front()?,
            Some(rate) => {
                if self.due > Instant::now() {
                    return None;
                }
                let at = self.due;
                self.due += Duration::from_secs_f64(1.0 / rate);
                at
            }
        };
        if stamp >= self.window.end || Instant::now() >= self.window.end {
            if let Some(rate) = self.drive.rate {
                // Behind schedule when the window closed: the rest never goes out.
                self.tally.unsent += self.window.unsent_from(stamp, rate);
            }
            self.sending_done = true;
            return None;
        }
        if self.drive.rate.is_none() {
            self.free.pop_front();
        }
        Some(stamp)
    }

    /// Reads echoes; each complete one is checked, timed and frees its slot.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        while !self.in_flight.is_empty() {
            let mut dst = ReadBuf::new(&mut self.echo[self.echo_got..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut dst) {
                Poll::Ready(Ok(())) => {
                    let n = dst.filled().len();
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection with echoes outstanding",
                        ));
                    }
                    self.echo_got += n;
                    progress = true;
                }
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => return Ok(progress),
            }
            if self.echo_got < self.echo.len() {
                continue;
            }
            self.echo_got = 0;
            let sent = self.in_flight.pop_front().expect("checked non-empty");
            let now = Instant::now();
            if !self.payload.matches(sent.seq, &self.echo) {
                self.tally
                    .mismatch(&self.payload.make(sent.seq), &self.echo);
            } else if self.window.contains(sent.stamp) {
                self.tally.record(now - sent.stamp, self.echo.len());
            }
            if self.drive.rate.is_none() {
                self.free.push_back(now);
            }
        }
        Ok(progress)
    }

    /// Arms the timer for what must happen without I/O: the oldest echo becoming overdue,
    /// and (open loop, nothing being written) the next scheduled send or the window's end.
    /// Everything else wakes the driver through the stream.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        let mut wake = None;
        if let Some(oldest) = self.in_flight.front() {
            let overdue = oldest.left + self.drive.echo_timeout;
            if now >= overdue {
                // The server stalled or vanished.
                let silence = echotool_core::duration::display(self.drive.echo_timeout);
                let stalled = format!("no echo within {silence}");
                return self.fail(io::Error::new(io::ErrorKind::TimedOut, stalled));
            }
            wake = Some(overdue);
        }
        if self.drive.rate.is_some() && !self.sending_done && self.out_sent == self.out.len() {
            let next = self.due.min(self.window.end);
            if next.saturating_duration_since(now) < SPIN {
                // tokio's timer has millisecond granularity; a message sent late by the timer
                // would be counted late against the server. Spin through the last stretch.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let next = next - SPIN;
            wake = Some(wake.map_or(next, |w: Instant| w.min(next)));
        }
        let Some(wake) = wake else {
            return Poll::Pending;
        };
        self.timer.as_mut().reset(wake);
        match self.timer.as_mut().poll(cx) {
            // Already due: go round again.
            Poll::Ready(()) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The connection failed or stalled: one error (the first one kept, in words), nothing
    /// more from it.
    fn fail(&mut self, err: io::Error) -> Poll<()> {
        self.tally.error(&err);
        self.in_flight.clear();
        self.sending_done = true;
        self.out_sent = self.out.len();
        Poll::Ready(())
    }
}
