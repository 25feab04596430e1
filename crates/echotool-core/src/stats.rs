//! Counters kept by every server: per listener, shared by all its connections.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Kind;

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
    /// Connections or datagrams that ended in an error (reset, timeout, failed handshake, ...).
    pub errors: AtomicU64,
    /// Connections refused at the connection limit.
    pub refused: AtomicU64,
    /// Datagrams dropped on purpose (reflection guard, rate limit).
    pub dropped: AtomicU64,
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
            dropped: self.dropped.load(Relaxed),
        }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// See [`EchoStats::dropped`].
    pub dropped: u64,
}

impl fmt::Display for StatsSnapshot {
    /// Streams: `3 connections, 120 messages, 4096 bytes in, 4096 bytes out, 0 errors`.
    /// Datagrams: `120 datagrams in, 118 out, 4096 bytes in, 4000 bytes out, 2 dropped, 0 errors`.
    /// Refused and dropped counts follow when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Stream => write!(
                f,
                "{} connections, {} messages, {} bytes in, {} bytes out, {} errors",
                self.connections, self.messages, self.bytes_in, self.bytes_out, self.errors
            )?,
            Kind::Datagram => write!(
                f,
                "{} datagrams in, {} out, {} bytes in, {} bytes out, {} errors",
                self.received, self.messages, self.bytes_in, self.bytes_out, self.errors
            )?,
        }
        if self.refused > 0 {
            write!(f, ", {} refused", self.refused)?;
        }
        if self.dropped > 0 {
            write!(f, ", {} dropped", self.dropped)?;
        }
        Ok(())
    }
}
