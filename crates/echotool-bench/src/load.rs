//! The load generators: echo over a stream, echo over datagrams, and connection set-up.
//!
//! Every message carries a sequence number and is checked byte for byte when it comes back.
//! Latency is measured per message from the moment it was sent, or, in open-loop mode
//! (`--rate`), from the moment it was *scheduled* to be sent: a server that stalls delays
//! every message scheduled during the stall, and the tail shows it (no coordinated omission).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use echotool_core::{BoxStream, Channel, ClientOptions, DatagramSocket, HostPort, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::payload::Payload;
use crate::tally::Tally;

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
                // Only sleep when ahead of schedule; behind it, catch up at once.
                if at > Instant::now() {
                    tokio::time::sleep_until(at).await;
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
pub async fn stream_echo(stream: BoxStream, drive: Drive, window: Window) -> Tally {
    let payload = Payload::new(drive.size);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let (mut schedule, slots) = pacing(&drive);
    let mut tally = Tally::default();
    let writer = async move {
        let mut buf = vec![0u8; payload_len(drive.size)];
        let payload = Payload::new(drive.size);
        let mut seq = 0u64;
        while let Some(stamp) = schedule.next(&window).await {
            payload.fill(seq, &mut buf);
            if tx.send((seq, stamp)).is_err() || wr.write_all(&buf).await.is_err() {
                break;
            }
            seq += 1;
        }
        let _ = wr.shutdown().await;
    };
    let reader = async {
        let mut buf = vec![0u8; payload_len(drive.size)];
        while let Some((seq, sent)) = rx.recv().await {
            match tokio::time::timeout(drive.echo_timeout, rd.read_exact(&mut buf)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    tally.errors += 1;
                    return;
                }
            }
            let now = Instant::now();
            if !payload.matches(seq, &buf) {
                tally.mismatches += 1;
            } else if window.contains(sent) {
                tally.record(now - sent, buf.len());
            }
            slots.release(1);
        }
    };
    tokio::join!(writer, reader);
    tally
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
