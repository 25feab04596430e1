//! Counters kept by every server: per listener, shared by all its connections.
//!
//! The hot path (every echoed message) touches relaxed atomics only. Failed handshakes are
//! counted by cause under a lock: they are rare, and a summary that says *why* connections
//! failed ("2 untrusted certificate, 1 not TLS") is worth far more than the lock costs there.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Kind;
use crate::poison::lock_ignoring_poison;

/// Live counters of one listener. Cheap to update from many connections at once.
#[derive(Debug, Default)]
pub struct EchoStats {
    /// Whether the listener carries streams or datagrams; decides how the summary reads.
    pub kind: Option<Kind>,
    /// Connections accepted so far (stream transports).
    pub connections: AtomicU64,
    /// Connections open right now.
    pub active: AtomicU64,
    /// Messages received: datagrams, or reads for streams.
    pub received: AtomicU64,
    /// Messages echoed: datagrams for datagram transports, read-then-write rounds for streams.
    pub messages: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent back.
    pub bytes_out: AtomicU64,
    /// Connections or datagrams that ended in an error after any handshake (reset, a stream
    /// error, ...). Failed handshakes are counted apart, by cause.
    pub errors: AtomicU64,
    /// Connections refused at the connection limit.
    pub refused: AtomicU64,
    /// Datagrams dropped because they came from the port of an echo-like service (the
    /// reflection guard): answering could start an endless loop between two echo services.
    pub dropped_reflection: AtomicU64,
    /// Datagrams dropped because their source was over the per-source rate limit.
    pub dropped_rate_limit: AtomicU64,
    /// Datagrams dropped because their sender has no address to answer (an unbound Unix
    /// datagram socket).
    pub dropped_unnamed: AtomicU64,
    /// Echoes dropped because the client's socket took nothing for a while (a full Unix
    /// datagram receive queue): waiting longer would hold up every other client.
    pub dropped_stalled: AtomicU64,
    /// Handshakes that failed, by cause ("not TLS", "untrusted certificate", "timed out").
    failed_handshakes: Mutex<BTreeMap<&'static str, u64>>,
}

impl EchoStats {
    /// Counters for a listener of `kind`.
    pub fn new(kind: Kind) -> Self {
        EchoStats {
            kind: Some(kind),
            ..EchoStats::default()
        }
    }

    /// Adds one received message of `bytes` bytes that may not be echoed (datagrams).
    pub fn record_received(&self, bytes: usize) {
        self.received.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    /// Adds one sent message of `bytes` bytes (datagrams).
    pub fn record_sent(&self, bytes: usize) {
        self.messages.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    /// Adds one echoed message of `bytes` bytes, received and sent.
    pub fn record_echo(&self, bytes: usize) {
        let bytes = bytes as u64;
        self.received.fetch_add(1, Relaxed);
        self.messages.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes, Relaxed);
        self.bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Adds one error.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// Adds one failed handshake, counted under its `cause`: a short label that reads well
    /// after a number ("1 not TLS", "2 untrusted certificate").
    pub fn record_failed_handshake(&self, cause: &'static str) {
        let mut causes = lock_ignoring_poison(&self.failed_handshakes);
        *causes.entry(cause).or_default() += 1;
    }

    /// A consistent-enough copy of the counters for printing.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            kind: self.kind.unwrap_or(Kind::Stream),
            connections: self.connections.load(Relaxed),
            active: self.active.load(Relaxed),
            received: self.received.load(Relaxed),
            messages: self.messages.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            errors: self.errors.load(Relaxed),
            refused: self.refused.load(Relaxed),
            dropped_reflection: self.dropped_reflection.load(Relaxed),
            dropped_rate_limit: self.dropped_rate_limit.load(Relaxed),
            dropped_unnamed: self.dropped_unnamed.load(Relaxed),
            dropped_stalled: self.dropped_stalled.load(Relaxed),
            failed_handshakes: self.failed_handshakes_by_cause(),
        }
    }

    /// Failed handshakes by cause, the most frequent first (ties in alphabetical order).
    fn failed_handshakes_by_cause(&self) -> Vec<(&'static str, u64)> {
        let causes = lock_ignoring_poison(&self.failed_handshakes);
        let mut by_count: Vec<(&'static str, u64)> =
            causes.iter().map(|(&cause, &n)| (cause, n)).collect();
        // A stable sort keeps the map's alphabetical order among equal counts.
        by_count.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        by_count
    }

    /// Marks a connection open until the returned guard is dropped.
    pub fn open_connection(&self) -> ActiveGuard<'_> {
        self.connections.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self)
    }
}

/// Decrements [`EchoStats::active`] when dropped.
#[derive(Debug)]
pub struct ActiveGuard<'a>(&'a EchoStats);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// A plain copy of [`EchoStats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`EchoStats::kind`].
    pub kind: Kind,
    /// See [`EchoStats::connections`].
    pub connections: u64,
    /// See [`EchoStats::active`].
    pub active: u64,
    /// See [`EchoStats::received`].
    pub received: u64,
    /// See [`EchoStats::messages`].
    pub messages: u64,
    /// See [`EchoStats::bytes_in`].
    pub bytes_in: u64,
    /// See [`EchoStats::bytes_out`].
    pub bytes_out: u64,
    /// See [`EchoStats::errors`].
    pub errors: u64,
    /// See [`EchoStats::refused`].
    pub refused: u64,
    /// See [`EchoStats::dropped_reflection`].
    pub dropped_reflection: u64,
    /// See [`EchoStats::dropped_rate_limit`].
    pub dropped_rate_limit: u64,
    /// See [`EchoStats::dropped_unnamed`].
    pub dropped_unnamed: u64,
    /// See [`EchoStats::dropped_stalled`].
    pub dropped_stalled: u64,
    /// Failed handshakes by cause, the most frequent first.
    pub failed_handshakes: Vec<(&'static str, u64)>,
}

impl StatsSnapshot {
    /// Every datagram dropped on purpose, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_reflection
            + self.dropped_rate_limit
            + self.dropped_unnamed
            + self.dropped_stalled
    }

    /// The reasons datagrams were dropped in words: `1 from a reflection port, 14 over the
    /// rate limit`; empty when none were.
    pub fn dropped_reasons(&self) -> String {
        [
            (self.dropped_reflection, "from a reflection port"),
            (self.dropped_rate_limit, "over the rate limit"),
            (
                self.dropped_unnamed,
                "from a socket with no address to answer",
            ),
            (
                self.dropped_stalled,
                "to a client whose socket took nothing",
            ),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Every failed handshake, whatever its cause.
    pub fn failed_handshakes_total(&self) -> u64 {
        self.failed_handshakes.iter().map(|(_, n)| n).sum()
    }

    /// The causes of failed handshakes in words: `1 untrusted certificate, 1 not TLS`; empty
    /// when there were none.
    pub fn failed_handshake_causes(&self) -> String {
        self.failed_handshakes
            .iter()
            .map(|(cause, n)| format!("{n} {cause}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `1 connection`, `2 connections`.
fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl fmt::Display for StatsSnapshot {
    /// Streams: `3 connections, 120 messages, 4096 bytes in, 4096 bytes out, 0 errors`.
    /// Datagrams: `120 datagrams in, 118 out, 4096 bytes in, 4000 bytes out, 2 dropped, 0 errors`.
    /// Failed handshakes (with their causes), refused and dropped counts (with their reasons)
    /// follow when there are any: `, 2 failed handshakes (1 untrusted certificate, 1 not TLS)`,
    /// `, 3 dropped (1 from a reflection port, 2 over the rate limit)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = format!(
            "{} in, {} out",
            count(self.bytes_in, "byte", "bytes"),
            count(self.bytes_out, "byte", "bytes")
        );
        let errors = count(self.errors, "error", "errors");
        match self.kind {
            Kind::Stream => write!(
                f,
                "{}, {}, {bytes}, {errors}",
                count(self.connections, "connection", "connections"),
                count(self.messages, "message", "messages"),
            )?,
            Kind::Datagram => write!(
                f,
                "{} in, {} out, {bytes}, {errors}",
                count(self.received, "datagram", "datagrams"),
                self.messages,
            )?,
        }
        let failed = self.failed_handshakes_total();
        if failed > 0 {
            write!(
                f,
                ", {} ({})",
                count(failed, "failed handshake", "failed handshakes"),
                self.failed_handshake_causes()
            )?;
        }
        if self.refused > 0 {
            write!(f, ", {} refused", self.refused)?;
        }
        let dropped = self.dropped_total();
        if dropped > 0 {
            write!(f, ", {dropped} dropped ({})", self.dropped_reasons())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_each_reads_in_the_singular() {
        let stats = EchoStats::new(Kind::Stream);
        drop(stats.open_connection());
        stats.record_echo(1);
        stats.record_error();
        assert_eq!(
            stats.snapshot().to_string(),
            "1 connection, 1 message, 1 byte in, 1 byte out, 1 error"
        );
        let datagrams = EchoStats::new(Kind::Datagram);
        datagrams.record_received(1);
        assert_eq!(
            datagrams.snapshot().to_string(),
            "1 datagram in, 0 out, 1 byte in, 0 bytes out, 0 errors"
        );
    }

    #[test]
    fn failed_handshakes_are_counted_by_cause_most_frequent_first() {
        let stats = EchoStats::new(Kind::Stream);
        for cause in ["not TLS", "untrusted certificate", "timed out", "not TLS"] {
            drop(stats.open_connection());
            stats.record_failed_handshake(cause);
        }
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.failed_handshakes_total(), 4);
        assert_eq!(
            snapshot.errors, 0,
            "a failed handshake is not an echo error"
        );
        assert_eq!(
            snapshot.to_string(),
            "4 connections, 0 messages, 0 bytes in, 0 bytes out, 0 errors, 4 failed \
             handshakes (2 not TLS, 1 timed out, 1 untrusted certificate)"
        );
        let one = EchoStats::new(Kind::Stream);
        one.record_failed_handshake("not TLS");
        assert!(
            one.snapshot()
                .to_string()
                .ends_with("0 errors, 1 failed handshake (1 not TLS)")
        );
    }

    #[test]
    fn dropped_datagrams_are_counted_by_reason() {
        let stats = EchoStats::new(Kind::Datagram);
        for _ in 0..3 {
            stats.record_received(2);
        }
        stats.record_sent(2);
        stats.dropped_reflection.fetch_add(1, Relaxed);
        assert!(
            stats
                .snapshot()
                .to_string()
                .ends_with("0 errors, 1 dropped (1 from a reflection port)"),
            "{}",
            stats.snapshot()
        );
        stats.dropped_rate_limit.fetch_add(1, Relaxed);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.dropped_total(), 2);
        assert_eq!(
            snapshot.to_string(),
            "3 datagrams in, 1 out, 6 bytes in, 2 bytes out, 0 errors, 2 dropped (1 from a \
             reflection port, 1 over the rate limit)"
        );
    }
}
