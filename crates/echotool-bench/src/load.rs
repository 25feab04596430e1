//! The load generators: echo over a stream, echo over datagrams, and connection set-up.
//!
//! Every message carries a sequence number and is checked byte for byte when it comes back.
//! Latency is measured per message from the moment it was sent, or, in open-loop mode
//! (`--rate`), from the moment it was *scheduled* to be sent: a server that stalls delays
//! every message scheduled during the stall, and the tail shows it (no coordinated omission).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use echotool_core::{BoxStream, Channel, ClientOptions, DatagramSocket, HostPort, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::payload::Payload;
use crate::tally::Tally;

/// How close to a scheduled send (open loop) the client stops trusting tokio's timer, whose
/// granularity is a millisecond, and yields until the moment instead: a message sent late
/// by the timer would have its lateness counted against the server.
const SPIN: Duration = Duration::from_micros(1500);

/// When measuring starts and ends; before is warm-up, after is draining.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Messages sent before this are warm-up.
    pub start: Instant,
    /// No message is sent after this.
    pub end: Instant,
}

impl Window {
    /// A window that opens after `warmup` and lasts `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + duration,
        }
    }

    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// How one connection is driven.
#[derive(Clone, Copy, Debug)]
pub struct Drive {
    /// Message size.
    pub size: usize,
    /// Messages in flight (closed loop).
    pub depth: usize,
    /// Open loop: this connection's messages per second.
    pub rate: Option<f64>,
    /// How long an echo may take.
    pub echo_timeout: Duration,
}

/// The sender's side of pacing: a fixed schedule (open loop), or slots that echoes free
/// (closed loop), each carrying the moment it was freed.
///
/// A closed-loop message counts from when its slot freed, not from when the writer got round
/// to sending it: otherwise the client's own delay between an echo and the next send would
/// fall outside every round trip, and latency would stop agreeing with throughput
/// (Little's law: connections x depth = messages/s x mean round trip).
struct Schedule {
    freed: mpsc::UnboundedReceiver<Instant>,
    interval: Option<Duration>,
    next: Instant,
}

/// The receiver's side of pacing: frees slots as echoes arrive (closed loop only).
struct Slots {
    freed: mpsc::UnboundedSender<Instant>,
    closed_loop: bool,
}

fn pacing(drive: &Drive) -> (Schedule, Slots) {
    let (tx, rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let closed_loop = drive.rate.is_none();
    if closed_loop {
        for _ in 0..drive.depth.max(1) {
            let _ = tx.send(now);
        }
    }
    (
        Schedule {
            freed: rx,
            interval: drive.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: now,
        },
        Slots {
            freed: tx,
            closed_loop,
        },
    )
}

impl Schedule {
    /// Waits for the next send; returns the time the message counts from, or `None` once the
    /// window has closed.
    async fn next(&mut self, window: &Window) -> Option<Instant> {
        let stamp = match self.interval {
            Some(interval) => {
                let at = self.next;
                self.next += interval;
                // Only wait when ahead of schedule; behind it, catch up at once. The timer has
                // millisecond granularity, so the last stretch is spun (see `SPIN`).
                if at > Instant::now() + SPIN {
                    tokio::time::sleep_until(at - SPIN).await;
                }
                while at > Instant::now() {
                    tokio::task::yield_now().await;
                }
                at
            }
            None => self.freed.recv().await?,
        };
        (stamp < window.end).then_some(stamp)
    }
}

impl Slots {
    fn release(&self, n: usize) {
        if self.closed_loop {
            let now = Instant::now();
            for _ in 0..n {
                let _ = self.freed.send(now);
            }
        }
    }
}

/// Echo over one byte stream until the window closes.
///
/// One future owns the stream and does both directions by polling it directly: no split
/// lock, no channel, no second task per connection, so the client costs little more per
/// message than the two system calls it needs (it must not be the bottleneck it measures).
pub async fn stream_echo(stream: BoxStream, drive: Drive, window: Window) -> Tally {
    let mut driver = StreamDriver::new(stream, drive, window);
    std::future::poll_fn(|cx| driver.poll(cx)).await;
    if driver.tally.errors == 0 {
        // An orderly end (TLS close_notify, TCP FIN, QUIC FIN), and the server's end in turn,
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

/// The state of one stream connection under load.
struct StreamDriver {
    stream: BoxStream,
    payload: Payload,
    drive: Drive,
    window: Window,
    tally: Tally,
    /// Sequence number and counted-from time of every message sent and not yet echoed.
    in_flight: VecDeque<(u64, Instant)>,
    /// Closed loop: free slots, each with the moment it was freed.
    free: VecDeque<Instant>,
    /// Open loop: when the next message is due, and the timer that waits for it.
    due: Instant,
    /// The message being written and how much of it has gone out (`out.len()`: none).
    out: Vec<u8>,
    out_sent: usize,
    /// Written but not yet flushed (TLS may hold written data until flushed).
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
        let size = payload_len(drive.size);
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
                Err(()) => return self.fail(),
            }
            match self.poll_receive(cx) {
                Ok(p) => progress |= p,
                Err(()) => return self.fail(),
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
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut progress = false;
        loop {
            if self.out_sent == self.out.len() {
                if self.unflushed {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(_)) => return Err(()),
                        Poll::Pending => return Ok(progress),
                    }
                }
                let Some(stamp) = self.next_stamp() else {
                    return Ok(progress);
                };
                self.payload.fill(self.next_seq, &mut self.out);
                self.in_flight.push_back((self.next_seq, stamp));
                self.next_seq += 1;
                self.out_sent = 0;
            }
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.out_sent..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
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
            self.sending_done = true;
            return None;
        }
        if self.drive.rate.is_none() {
            self.free.pop_front();
        }
        Some(stamp)
    }

    /// Reads echoes; each complete one is checked, timed and frees its slot.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut progress = false;
        while !self.in_flight.is_empty() {
            let mut dst = ReadBuf::new(&mut self.echo[self.echo_got..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut dst) {
                Poll::Ready(Ok(())) => {
                    let n = dst.filled().len();
                    if n == 0 {
                        return Err(());
                    }
                    self.echo_got += n;
                    progress = true;
                }
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => return Ok(progress),
            }
            if self.echo_got < self.echo.len() {
                continue;
            }
            self.echo_got = 0;
            let (seq, sent) = self.in_flight.pop_front().expect("checked non-empty");
            let now = Instant::now();
            if !self.payload.matches(seq, &self.echo) {
                self.tally.mismatches += 1;
            } else if self.window.contains(sent) {
                self.tally.record(now - sent, self.echo.len());
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
        if let Some((_, sent)) = self.in_flight.front() {
            let overdue = *sent + self.drive.echo_timeout;
            if now >= overdue {
                // The server stalled or vanished.
                return self.fail();
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

    /// The connection failed or stalled: one error, nothing more from it.
    fn fail(&mut self) -> Poll<()> {
        self.tally.errors += 1;
        self.in_flight.clear();
        self.sending_done = true;
        self.out_sent = self.out.len();
        Poll::Ready(())
    }
}

/// A lock that ignores poisoning: a panicked load task already failed the run.
fn take<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn payload_len(size: usize) -> usize {
    size.max(1)
}

/// Echo over one datagram socket until the window closes; unanswered datagrams are lost after
/// the echo timeout.
pub async fn datagram_echo(socket: Box<dyn DatagramSocket>, drive: Drive, window: Window) -> Tally {
    let size = drive.size.max(crate::payload::SEQ_BYTES);
    let payload = Payload::new(size);
    let socket: Arc<dyn DatagramSocket> = Arc::from(socket);
    let pending: Mutex<BTreeMap<u64, Instant>> = Mutex::new(BTreeMap::new());
    let (mut schedule, slots) = pacing(&drive);
    let done = AtomicBool::new(false);
    let errors = Mutex::new(0u64);
    let mut tally = Tally::default();
    let writer = async {
        let mut buf = vec![0u8; size];
        let mut seq = 0u64;
        while let Some(stamp) = schedule.next(&window).await {
            payload.fill(seq, &mut buf);
            take(&pending).insert(seq, stamp);
            if let Err(e) = socket.send(&buf).await {
                // Refused means an ICMP error came back for an earlier datagram: that one is
                // lost, which the timeout will count; anything else is an error.
                if e.kind() != io::ErrorKind::ConnectionRefused {
                    *take(&errors) += 1;
                }
            }
            seq += 1;
        }
        done.store(true, Ordering::Release);
    };
    let reader = async {
        let mut buf = vec![0u8; 65_536];
        loop {
            let oldest = take(&pending).values().next().copied();
            if oldest.is_none() && done.load(Ordering::Acquire) {
                break;
            }
            let deadline = match oldest {
                Some(sent) => sent.max(Instant::now() - drive.echo_timeout) + drive.echo_timeout,
                None => Instant::now() + Duration::from_millis(20),
            };
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    let now = Instant::now();
                    let echo = &buf[..n];
                    let sent = Payload::seq_of(echo)
                        .and_then(|seq| take(&pending).remove(&seq).map(|sent| (seq, sent)));
                    match sent {
                        Some((seq, sent)) => {
                            if !payload.matches(seq, echo) {
                                tally.mismatches += 1;
                            } else if window.contains(sent) {
                                tally.record(now - sent, n);
                            }
                            slots.release(1);
                        }
                        // Not in flight: altered, duplicated, or late after being counted lost.
                        None => tally.mismatches += 1,
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    // Nothing listening: the datagrams will time out as lost. Pause briefly
                    // so a stream of ICMP errors does not spin.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(Err(_)) => tally.errors += 1,
                Err(_) => {
                    let cutoff = Instant::now() - drive.echo_timeout;
                    // Send times grow with sequence numbers, so the expired are a prefix.
                    let expired: Vec<(u64, Instant)> = {
                        let mut map = take(&pending);
                        let mut gone = Vec::new();
                        while let Some(entry) = map.first_entry() {
                            if *entry.get() > cutoff {
                                break;
                            }
                            gone.push(entry.remove_entry());
                        }
                        gone
                    };
                    tally.lost +=
                        expired.iter().filter(|(_, s)| window.contains(*s)).count() as u64;
                    slots.release(expired.len());
                }
            }
        }
    };
    tokio::join!(writer, reader);
    tally.errors += *take(&errors);
    tally
}

/// Connection set-up, one after another until the window closes: dial (with any handshake),
/// one echo, orderly close. Returns the set-up times and the times to the first echo.
pub async fn setup(
    transport: Arc<dyn Transport>,
    addr: HostPort,
    client: ClientOptions,
    drive: Drive,
    window: Window,
) -> (Tally, Tally) {
    let payload = Payload::new(drive.size.max(crate::payload::SEQ_BYTES));
    let (mut connected, mut first_echo) = (Tally::default(), Tally::default());
    let mut seq = 0u64;
    if client.resume {
        // Resumption needs a session to resume: one connection first, outside the window.
        if let Ok(Ok(conn)) =
            tokio::time::timeout(drive.echo_timeout * 5, transport.dial(&addr, &client)).await
        {
            let _ = tokio::time::timeout(
                drive.echo_timeout,
                one_echo(conn.channel, &payload.make(u64::MAX)),
            )
            .await;
        }
    }
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            break;
        }
        let measured = window.contains(t0);
        let dial =
            tokio::time::timeout(drive.echo_timeout * 5, transport.dial(&addr, &client)).await;
        let Ok(Ok(conn)) = dial else {
            if measured {
                connected.errors += 1;
            }
            // A refusing target would otherwise be hammered in a tight loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let t1 = Instant::now();
        if measured && conn.resumed {
            connected.resumed += 1;
            first_echo.resumed += 1;
        }
        let msg = payload.make(seq);
        let echoed = tokio::time::timeout(drive.echo_timeout, one_echo(conn.channel, &msg)).await;
        match echoed {
            Ok(Ok((echo, t2))) if payload.matches(seq, &echo) && measured => {
                connected.record(t1 - t0, 0);
                first_echo.record(t2 - t0, msg.len());
            }
            Ok(Ok((echo, _))) if !payload.matches(seq, &echo) => first_echo.mismatches += 1,
            Ok(Ok(_)) => {}
            _ if measured => first_echo.errors += 1,
            _ => {}
        }
        seq += 1;
    }
    (connected, first_echo)
}

/// Sends one message and reads its echo (returning it and when it arrived), then closes in an
/// orderly way (TLS close_notify, TCP FIN) so the server does not count an abrupt end as an
/// error.
async fn one_echo(channel: Channel, msg: &[u8]) -> io::Result<(Vec<u8>, Instant)> {
    let mut echo = vec![0u8; msg.len()];
    let arrived;
    match channel {
        Channel::Stream(mut stream) => {
            stream.write_all(msg).await?;
            stream.read_exact(&mut echo).await?;
            arrived = Instant::now();
            stream.shutdown().await?;
            // Wait for the server's end too, so its close is not a reset.
            let mut rest = [0u8; 64];
            while stream.read(&mut rest).await? > 0 {}
        }
        Channel::Datagram(socket) => {
            socket.send(msg).await?;
            let n = socket.recv(&mut echo).await?;
            arrived = Instant::now();
            echo.truncate(n);
        }
    }
    Ok((echo, arrived))
}
