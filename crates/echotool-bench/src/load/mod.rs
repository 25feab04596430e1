//! The load generators: echo over a stream, echo over datagrams, and connection set-up.
//!
//! Every message carries a sequence number and is checked byte for byte when it comes back.
//! Latency is measured per message from the moment it was sent, or, in open-loop mode
//! (`--rate`), from the moment it was *scheduled* to be sent: a server that stalls delays
//! every message scheduled during the stall, and the tail shows it (no coordinated omission).
//! Timeouts, on the other hand, count from when a message really left: a client that fell
//! behind its schedule must not blame the server for its own lateness.

mod datagram;
mod pacing;
mod setup;
mod stream;

use std::time::Duration;

use tokio::time::Instant;

pub use datagram::datagram_echo;
pub(crate) use setup::BeforeFirstDial;
pub use setup::setup;
pub use stream::stream_echo;

/// How close to a scheduled send (open loop) the client stops trusting tokio's timer, whose
/// granularity is a millisecond, and yields until the moment instead: a message sent late
/// by the timer would have its lateness counted against the server.
const SPIN: Duration = Duration::from_micros(1500);

/// Closes a stream in order (a close_notify, a FIN) and waits for the server's end too, so
/// that the server does not count an abrupt end (a reset) as an error.
pub(crate) async fn close(mut stream: echotool_core::BoxStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.shutdown().await?;
    let mut rest = [0u8; 64];
    while stream.read(&mut rest).await? > 0 {}
    Ok(())
}

/// When measuring starts and ends; before is warm-up, after is draining.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Messages sent before this are warm-up.
    pub start: Instant,
    /// No message is sent after this.
    pub end: Instant,
    /// The start by the wall clock, seconds since the Unix epoch.
    start_unix: f64,
}

impl Window {
    /// A window that opens after `warmup` and lasts `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + duration,
            start_unix: crate::clock::unix_now() + warmup.as_secs_f64(),
        }
    }

    /// The window by the wall clock.
    pub fn span(&self) -> crate::Span {
        let length = (self.end - self.start).as_secs_f64();
        crate::Span {
            start_unix: self.start_unix,
            end_unix: self.start_unix + length,
        }
    }

    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// Open loop: messages due within the window at `rate` per second.
    fn scheduled(&self, rate: f64) -> u64 {
        slots(self.start, self.end, rate)
    }

    /// Open loop: messages due within the window from `next` on, which will never be sent
    /// because sending stopped (the window closed while the schedule lagged behind).
    fn unsent_from(&self, next: Instant, rate: f64) -> u64 {
        slots(next.max(self.start), self.end, rate)
    }
}

/// Schedule slots at `rate` per second in `[from, to)`.
fn slots(from: Instant, to: Instant, rate: f64) -> u64 {
    (to.saturating_duration_since(from).as_secs_f64() * rate).ceil() as u64
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
    /// How long an echo may take, from when its message left.
    pub echo_timeout: Duration,
    /// How long connecting may take (set-up).
    pub connect_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_schedule_arithmetic() {
        let window = Window::after(Duration::ZERO, Duration::from_secs(2));
        assert_eq!(window.scheduled(1000.0), 2000);
        assert_eq!(window.unsent_from(window.start, 1000.0), 2000);
        let half = window.start + Duration::from_secs(1);
        assert_eq!(window.unsent_from(half, 1000.0), 1000);
        assert_eq!(window.unsent_from(window.end, 1000.0), 0);
        let before = window
            .start
            .checked_sub(Duration::from_millis(1))
            .unwrap_or(window.start);
        assert_eq!(
            window.unsent_from(before, 1000.0),
            2000,
            "counted from the window"
        );
    }
}
