//! What one load worker measured, and the figures derived from many.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded: a minute, in nanoseconds.
const MAX_NANOS: u64 = 60_000_000_000;

/// Counts and a latency histogram (nanoseconds, three significant digits).
#[derive(Clone, Debug)]
pub struct Tally {
    /// Round-trip (or set-up) times.
    pub latency: Histogram<u64>,
    /// Messages (or set-ups) completed within the measured window.
    pub messages: u64,
    /// Payload bytes echoed within the window.
    pub bytes: u64,
    /// I/O errors, timeouts on streams, failed set-ups.
    pub errors: u64,
    /// Echoes that differed from what was sent.
    pub mismatches: u64,
    /// Datagrams never echoed within the echo timeout.
    pub lost: u64,
    /// Datagram echoes that came after they were counted lost.
    pub late: u64,
    /// Datagram echoes that came twice.
    pub duplicated: u64,
    /// Open loop: messages due in the window.
    pub scheduled: u64,
    /// Open loop: messages due in the window that never went out (the client fell behind).
    pub unsent: u64,
    /// Set-ups that resumed an earlier session.
    pub resumed: u64,
    /// What the first altered echo looked like, and why, for the verdict.
    pub first_mismatch: Option<String>,
    /// The first error, in words, for the verdict.
    pub first_error: Option<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_NANOS, 3).expect("valid histogram bounds"),
            messages: 0,
            bytes: 0,
            errors: 0,
            mismatches: 0,
            lost: 0,
            late: 0,
            duplicated: 0,
            scheduled: 0,
            unsent: 0,
            resumed: 0,
            first_mismatch: None,
            first_error: None,
        }
    }
}

impl Tally {
    /// Records one completed message.
    pub fn record(&mut self, latency: Duration, bytes: usize) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(MAX_NANOS);
        self.latency.saturating_record(nanos.clamp(1, MAX_NANOS));
        self.messages += 1;
        self.bytes += bytes as u64;
    }

    /// Records an error; the first one is kept, in words.
    pub fn error(&mut self, err: &dyn std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(err.to_string());
        }
    }

    /// Records an echo that differs from what was sent; the first one is kept, described.
    pub fn mismatch(&mut self, sent: &[u8], echo: &[u8]) {
        self.mismatches += 1;
        if self.first_mismatch.is_none() {
            let at = sent.iter().zip(echo).position(|(a, b)| a != b);
            let at = at.unwrap_or(sent.len().min(echo.len()));
            let mut text = format!(
                "{} bytes came back for {} sent, first difference at byte {at}: {} where {} was \
                 sent",
                echo.len(),
                sent.len(),
                echotool_core::mismatch::quoted(&echo[at.min(echo.len())..]),
                echotool_core::mismatch::quoted(&sent[at.min(sent.len())..]),
            );
            if let Some(cause) = echotool_core::mismatch::recognise(sent, echo) {
                text = format!("{text}; {cause}");
            }
            self.first_mismatch = Some(text);
        }
    }

    /// Adds another worker's tally.
    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.mismatches += other.mismatches;
        self.lost += other.lost;
        self.late += other.late;
        self.duplicated += other.duplicated;
        self.scheduled += other.scheduled;
        self.unsent += other.unsent;
        self.resumed += other.resumed;
        if self.first_mismatch.is_none() {
            self.first_mismatch.clone_from(&other.first_mismatch);
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Adds another agent's tally, failing (with `what` named) where [`Tally::merge`] would
    /// drop latencies, a histogram from elsewhere with values beyond this one's range, or
    /// overflow, counts from a file that add up beyond 2^64.
    pub fn merge_exactly(&mut self, other: &Tally, what: &str) -> Result<(), crate::BenchError> {
        let fits = self
            .counts()
            .into_iter()
            .zip(other.counts())
            .all(|(a, b)| a.checked_add(b).is_some());
        if !fits {
            return Err(crate::BenchError::Invalid(format!(
                "{what}: its counts are too large to add to the others' (beyond 2^64): was the \
                 file edited?"
            )));
        }
        self.latency.add(&other.latency).map_err(|e| {
            crate::BenchError::Invalid(format!(
                "{what}: its histogram cannot be added ({e:?}): latencies beyond {} s",
                MAX_NANOS / 1_000_000_000
            ))
        })?;
        let mut counts = other.clone();
        counts.latency.reset();
        self.merge(&counts);
        Ok(())
    }

    /// Every count, in one order.
    fn counts(&self) -> [u64; 10] {
        [
            self.messages,
            self.bytes,
            self.errors,
            self.mismatches,
            self.lost,
            self.late,
            self.duplicated,
            self.scheduled,
            self.unsent,
            self.resumed,
        ]
    }

    /// The figures of this tally, measured over `span`.
    pub fn figures(&self, span: Span) -> Figures {
        let secs = span.duration().as_secs_f64().max(1e-9);
        let h = &self.latency;
        let samples = h.len();
        // A percentile exists once at least one sample lies beyond it: p99.9 needs 1000.
        let us = |q: f64| {
            (samples as f64 * (1.0 - q) >= 1.0 - 1e-9)
                .then(|| h.value_at_quantile(q) as f64 / 1000.0)
        };
        let any = samples > 0;
        Figures {
            messages: self.messages,
            bytes: self.bytes,
            span,
            histogram: crate::histogram::encode(h),
            messages_per_sec: self.messages as f64 / secs,
            mb_per_sec: self.bytes as f64 / secs / 1e6,
            rtt_us: Percentiles {
                p50: us(0.50),
                p90: us(0.90),
                p99: us(0.99),
                p999: us(0.999),
                max: any.then(|| h.max() as f64 / 1000.0),
                mean: any.then(|| h.mean() / 1000.0),
            },
            samples,
            errors: self.errors,
            mismatches: self.mismatches,
            lost: self.lost,
            late: self.late,
            duplicated: self.duplicated,
            scheduled: self.scheduled,
            unsent: self.unsent,
            sent_per_sec: (self.scheduled > 0)
                .then(|| self.scheduled.saturating_sub(self.unsent) as f64 / secs),
            resumed: self.resumed,
            first_mismatch: self.first_mismatch.clone(),
            first_error: self.first_error.clone(),
            curve: curve(h),
        }
    }
}

/// Latency percentiles in microseconds; a percentile is absent until at least one sample lies
/// beyond it (p50 needs 2 samples, p99 100, p99.9 1000), since below that it is only the
/// largest sample under another name.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Arithmetic mean.
    pub mean: Option<f64>,
}

/// When a run measured, by the wall clock (seconds since the Unix epoch), so that runs of
/// different machines can be put on one time line and merged.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Span {
    /// The start of the measured window.
    pub start_unix: f64,
    /// Its end.
    pub end_unix: f64,
}

impl Span {
    /// A span of `length` starting now, for tests and figures without a clock of their own.
    pub fn lasting(length: Duration) -> Span {
        let start = crate::clock::unix_now();
        Span {
            start_unix: start,
            end_unix: start + length.as_secs_f64(),
        }
    }

    /// How long it lasted.
    pub fn duration(&self) -> Duration {
        Duration::try_from_secs_f64((self.end_unix - self.start_unix).max(0.0)).unwrap_or_default()
    }
}

/// The figures of one run of one scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Figures {
    /// Messages (or set-ups) completed in the measured window.
    pub messages: u64,
    /// Payload bytes echoed in the window (one direction).
    pub bytes: u64,
    /// When the window was, by the wall clock.
    pub span: Span,
    /// Every latency measured, exactly: HdrHistogram V2 compressed, base64 (see
    /// [`crate::histogram`]). Merging reports adds these.
    pub histogram: String,
    /// Messages (or set-ups) per second.
    pub messages_per_sec: f64,
    /// Echoed payload, megabytes (10^6) per second, one direction.
    pub mb_per_sec: f64,
    /// Round-trip (or set-up) time percentiles, microseconds.
    pub rtt_us: Percentiles,
    /// Latencies measured (the percentiles rest on this many).
    pub samples: u64,
    /// Errors (failed connections, stream timeouts, I/O errors).
    pub errors: u64,
    /// Echoes that differed from what was sent: bytes altered.
    pub mismatches: u64,
    /// Datagrams not echoed within the echo timeout.
    pub lost: u64,
    /// Datagram echoes that came after they were counted lost.
    pub late: u64,
    /// Datagram echoes that came twice.
    pub duplicated: u64,
    /// Open loop: messages due in the window.
    pub scheduled: u64,
    /// Open loop: messages due in the window that the client never sent (it fell behind).
    pub unsent: u64,
    /// Open loop: messages actually sent per second in the window.
    pub sent_per_sec: Option<f64>,
    /// Set-ups that resumed an earlier session (session tickets, 0-RTT).
    pub resumed: u64,
    /// The first altered echo, described.
    pub first_mismatch: Option<String>,
    /// The first error, in words.
    pub first_error: Option<String>,
    /// The latency distribution: (percentile, microseconds) pairs for plotting.
    pub curve: Vec<(f64, f64)>,
}

/// Percentile points from 0 to 99.999, dense in the tail, for a log-scale percentile axis.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut nines = 0.0f64;
    while nines <= 5.0 + 1e-9 {
        let q = 1.0 - 10f64.powf(-nines);
        points.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
        nines += 0.1;
    }
    points.push((100.0, h.max() as f64 / 1000.0));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_rates_and_curves_add_up() {
        let mut tally = Tally::default();
        for us in 1..=1000u64 {
            tally.record(Duration::from_micros(us), 64);
        }
        let f = tally.figures(Span::lasting(Duration::from_secs(2)));
        assert_eq!((f.messages, f.samples), (1000, 1000));
        assert!((f.messages_per_sec - 500.0).abs() < 1e-9);
        assert!((f.mb_per_sec - 1000.0 * 64.0 / 2.0 / 1e6).abs() < 1e-12);
        // Three significant digits: within 0.1 % of the exact value.
        let near = |got: Option<f64>, want: f64| {
            let got = got.expect("enough samples");
            assert!((got - want).abs() <= want * 0.001 + 1e-9, "{got} vs {want}");
        };
        near(f.rtt_us.p50, 500.0);
        near(f.rtt_us.p90, 900.0);
        near(f.rtt_us.p99, 990.0);
        near(f.rtt_us.p999, 999.0);
        near(f.rtt_us.max, 1000.0);
        near(f.rtt_us.mean, 500.5);
        assert!(
            f.curve
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(f.curve.last(), Some(&(100.0, f.rtt_us.max.unwrap())));
    }

    #[test]
    fn a_percentile_needs_a_sample_beyond_it() {
        let mut tally = Tally::default();
        for _ in 0..99 {
            tally.record(Duration::from_micros(10), 1);
        }
        let f = tally.figures(Span::lasting(Duration::from_secs(1)));
        assert!(f.rtt_us.p90.is_some() && f.rtt_us.p99.is_none() && f.rtt_us.p999.is_none());
        tally.record(Duration::from_micros(10), 1);
        assert!(
            tally
                .figures(Span::lasting(Duration::from_secs(1)))
                .rtt_us
                .p99
                .is_some(),
            "100 samples"
        );
        assert!(
            Tally::default()
                .figures(Span::lasting(Duration::from_secs(1)))
                .curve
                .is_empty()
        );
    }

    #[test]
    fn merging_adds_histograms_and_counts_and_keeps_the_first_words() {
        let (mut a, mut b) = (Tally::default(), Tally::default());
        a.record(Duration::from_micros(100), 10);
        b.record(Duration::from_micros(300), 10);
        b.error(&"connection reset");
        b.mismatch(b"abc", b"abd");
        a.merge(&b);
        assert_eq!((a.messages, a.bytes, a.errors, a.mismatches), (2, 20, 1, 1));
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.first_error.as_deref(), Some("connection reset"));
        let mismatch = a.first_mismatch.unwrap();
        assert!(
            mismatch.contains("first difference at byte 2"),
            "{mismatch}"
        );
    }
}
