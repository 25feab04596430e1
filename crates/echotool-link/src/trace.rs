//! The trace: one line per packet for a timeline of who sent what when, with the protocol
//! details that explain round trips (TCP flags and relative sequence numbers, TLS record types,
//! QUIC packet types), and drops marked.
//!
//! ```text
//!     0.000000 → TCP 198.18.0.2:40102 > 198.18.0.1:7 [SYN] seq=0 win=64240 len=0
//!     0.020151 ← TCP 198.18.0.1:7 > 198.18.0.2:40102 [SYN,ACK] seq=0 ack=1 win=65160 len=0
//!     0.040302 → TCP 198.18.0.2:40102 > 198.18.0.1:7 [ACK,PSH] seq=1 ack=1 win=502 len=517 TLS handshake
//!     0.040310 → UDP 198.18.0.2:51000 > 198.18.0.1:4433 len=1200 QUIC Initial DROPPED (loss)
//! ```
//!
//! Times are seconds since the link started, at delivery (or drop). `→` is client to server.
//! Relative sequence numbers count from each side's SYN; a flow whose SYN was not seen shows
//! raw numbers. QUIC is recognised from long headers (version 1 and 2); a short-header
//! (1-RTT) packet is named only on a flow that carried a long header before. Parsing IP, TCP
//! and UDP uses `etherparse` (IPv6 extension headers and malformed packets handled there).
//!
//! [`crate::Link::trace_next_flow`] narrows the trace to one flow: the first client packet of a
//! flow the link has not seen before picks the flow, and only its packets are traced.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use crate::Recorder;
use crate::shaper::{Direction, DropReason, Nanos};

/// A flow seen from the client: transport, client address, server address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// TCP (6) or UDP (17).
    pub protocol: u8,
    /// The client side's address and port.
    pub client: SocketAddr,
    /// The server side's address and port.
    pub server: SocketAddr,
}

/// Which packets the trace shows.
#[derive(Debug, Default)]
pub(crate) struct FlowFilter {
    state: Mutex<FilterState>,
}

#[derive(Debug, Default)]
struct FilterState {
    /// Every flow seen so far, to tell a new one.
    seen: HashSet<FlowKey>,
    /// Waiting for the next new flow.
    armed: bool,
    /// The flow being traced; `None` with `armed` false traces everything.
    only: Option<FlowKey>,
}

impl FlowFilter {
    /// Picks the next new flow.
    pub(crate) fn arm(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.armed = true;
        state.only = None;
    }

    /// Whether a packet of `flow` (or a packet of no flow) going `dir` is traced.
    fn admits(&self, dir: Direction, flow: Option<FlowKey>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(flow) = flow else {
            return !state.armed && state.only.is_none();
        };
        // A flow is new when its client speaks first; server packets never start one.
        let new = dir == Direction::Up && state.seen.insert(flow);
        if state.armed && new {
            state.armed = false;
            state.only = Some(flow);
        }
        if state.armed {
            return false;
        }
        state.only.is_none_or(|only| only == flow)
    }
}

/// Writes trace lines.
pub(crate) struct Tracer {
    out: BufWriter<Box<dyn Write + Send>>,
    filter: Arc<FlowFilter>,
    /// Initial sequence numbers per flow and direction, for relative numbers.
    isn: HashMap<(FlowKey, Direction), u32>,
    /// Flows that carried a QUIC long header, where short headers are QUIC too.
    quic: HashSet<FlowKey>,
    /// Set after the first write error: the trace stops rather than fail the link.
    failed: bool,
}

impl Tracer {
    /// A tracer writing to `out`, showing what `filter` admits.
    pub(crate) fn new(out: Box<dyn Write + Send>, filter: Arc<FlowFilter>) -> Tracer {
        Tracer {
            out: BufWriter::new(out),
            filter,
            isn: HashMap::new(),
            quic: HashSet::new(),
            failed: false,
        }
    }

    /// The line for one packet, without time and arrow; `None` if the filter hides it.
    fn describe(&mut self, dir: Direction, packet: &[u8]) -> Option<String> {
        let Ok(sliced) = SlicedPacket::from_ip(packet) else {
            return self
                .filter
                .admits(dir, None)
                .then(|| format!("unparsed {} bytes", packet.len()));
        };
        let (src, dst) = match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
            ),
            _ => return Some(format!("non-IP {} bytes", packet.len())),
        };
        match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let (s, d) = (
                    SocketAddr::new(src, tcp.source_port()),
                    SocketAddr::new(dst, tcp.destination_port()),
                );
                let flow = flow_key(6, dir, s, d);
                if !self.filter.admits(dir, Some(flow)) {
                    return None;
                }
                Some(self.describe_tcp(dir, flow, s, d, tcp))
            }
            Some(TransportSlice::Udp(udp)) => {
                let (s, d) = (
                    SocketAddr::new(src, udp.source_port()),
                    SocketAddr::new(dst, udp.destination_port()),
                );
                let flow = flow_key(17, dir, s, d);
                if !self.filter.admits(dir, Some(flow)) {
                    return None;
                }
                let payload = udp.payload();
                let mut line = format!("UDP {s} > {d} len={}", payload.len());
                if let Some(quic) = quic_types(payload, self.quic.contains(&flow)) {
                    self.quic.insert(flow);
                    let _ = write!(line, " QUIC {quic}");
                }
                Some(line)
            }
            other => {
                if !self.filter.admits(dir, None) {
                    return None;
                }
                let kind = match other {
                    Some(TransportSlice::Icmpv4(_)) => "ICMP",
                    Some(TransportSlice::Icmpv6(_)) => "ICMPv6",
                    _ => "IP",
                };
                Some(format!("{kind} {src} > {dst} {} bytes", packet.len()))
            }
        }
    }

    fn describe_tcp(
        &mut self,
        dir: Direction,
        flow: FlowKey,
        src: SocketAddr,
        dst: SocketAddr,
        tcp: &etherparse::TcpSlice<'_>,
    ) -> String {
        if tcp.syn() {
            self.isn.insert((flow, dir), tcp.sequence_number());
        }
        let other = match dir {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        };
        let relative = |isn: Option<&u32>, n: u32| isn.map_or(n, |i| n.wrapping_sub(*i));
        let seq = relative(self.isn.get(&(flow, dir)), tcp.sequence_number());
        let mut line = format!("TCP {src} > {dst} [{}] seq={seq}", tcp_flags(tcp));
        if tcp.ack() {
            let ack = relative(self.isn.get(&(flow, other)), tcp.acknowledgment_number());
            let _ = write!(line, " ack={ack}");
        }
        let payload = tcp.payload();
        let _ = write!(line, " win={} len={}", tcp.window_size(), payload.len());
        if let Some(records) = tls_records(payload) {
            let _ = write!(line, " TLS {records}");
        }
        line
    }
}

impl Recorder for Tracer {
    fn record(&mut self, dir: Direction, at: Nanos, packet: &[u8], dropped: Option<DropReason>) {
        if self.failed {
            return;
        }
        let Some(mut line) = self.describe(dir, packet) else {
            return;
        };
        if let Some(reason) = dropped {
            let _ = write!(line, " DROPPED ({})", reason.as_str());
        }
        let secs = at as f64 / 1e9;
        // A line at a time: a trace is read as it happens, and one flow is few packets.
        let written = writeln!(self.out, "{secs:12.6} {} {line}", dir.arrow());
        if let Err(err) = written.and_then(|()| self.out.flush()) {
            eprintln!("link trace: {err}; trace stopped");
            self.failed = true;
        }
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

fn flow_key(protocol: u8, dir: Direction, src: SocketAddr, dst: SocketAddr) -> FlowKey {
    let (client, server) = match dir {
        Direction::Up => (src, dst),
        Direction::Down => (dst, src),
    };
    FlowKey {
        protocol,
        client,
        server,
    }
}

fn tcp_flags(tcp: &etherparse::TcpSlice<'_>) -> String {
    let flags = [
        (tcp.syn(), "SYN"),
        (tcp.fin(), "FIN"),
        (tcp.rst(), "RST"),
        (tcp.ack(), "ACK"),
        (tcp.psh(), "PSH"),
    ];
    let set: Vec<_> = flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    set.join(",")
}

/// The content types of the TLS records that start this TCP payload, joined by `+`, when it
/// starts with one: `handshake`, `change_cipher_spec+handshake`, `application_data`.
pub fn tls_records(mut payload: &[u8]) -> Option<String> {
    let mut types = Vec::new();
    while payload.len() >= 5 {
        let name = match payload[0] {
            20 => "change_cipher_spec",
            21 => "alert",
            22 => "handshake",
            23 => "application_data",
            _ => break,
        };
        // TLS 1.0 to 1.3 all put 3.x in the record header.
        if payload[1] != 3 || payload[2] > 4 {
            break;
        }
        if types.last() != Some(&name) {
            types.push(name);
        }
        let len = usize::from(u16::from_be_bytes([payload[3], payload[4]]));
        payload = payload.get(5 + len..).unwrap_or_default();
    }
    (!types.is_empty()).then(|| types.join("+"))
}

/// The QUIC packet types in a UDP payload (coalesced packets joined by `+`), when it looks
/// like QUIC: a long header of a known version, or a short header on a flow known to be QUIC.
pub fn quic_types(payload: &[u8], known_quic: bool) -> Option<String> {
    let mut types = Vec::new();
    let mut rest = payload;
    while let Some(&first) = rest.first() {
        if first & 0x80 == 0 {
            // Short header: runs to the end of the datagram.
            if known_quic || !types.is_empty() {
                types.push("1-RTT");
            }
            break;
        }
        let Some((name, len)) = quic_long(rest) else {
            break;
        };
        types.push(name);
        rest = rest.get(len..).unwrap_or_default();
    }
    (!types.is_empty()).then(|| types.join("+"))
}

/// One long-header packet: its type and its length in the datagram.
fn quic_long(packet: &[u8]) -> Option<(&'static str, usize)> {
    let version = u32::from_be_bytes(packet.get(1..5)?.try_into().ok()?);
    if version == 0 {
        return Some(("Version Negotiation", packet.len()));
    }
    // The fixed bit is not checked: peers that grease it (RFC 9287, as quinn does) clear it,
    // and the version already says this is QUIC.
    let kind = (packet[0] >> 4) & 3;
    let name = match (version, kind) {
        (1, 0) | (0x6b33_43cf, 1) => "Initial",
        (1, 1) | (0x6b33_43cf, 2) => "0-RTT",
        (1, 2) | (0x6b33_43cf, 3) => "Handshake",
        (1, 3) | (0x6b33_43cf, 0) => "Retry",
        _ => return None,
    };
    if name == "Retry" {
        return Some((name, packet.len()));
    }
    let mut at = 5;
    for _ in 0..2 {
        let cid_len = usize::from(*packet.get(at)?);
        at += 1 + cid_len;
    }
    if name == "Initial" {
        let (token_len, size) = varint(packet.get(at..)?)?;
        at += size + usize::try_from(token_len).ok()?;
    }
    let (length, size) = varint(packet.get(at..)?)?;
    let end = at + size + usize::try_from(length).ok()?;
    Some((name, end.min(packet.len())))
}

/// A QUIC variable-length integer and its size in bytes.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let size = 1usize << (first >> 6);
    let raw = bytes.get(..size)?;
    let mut value = u64::from(first & 0x3f);
    for byte in &raw[1..] {
        value = (value << 8) | u64::from(*byte);
    }
    Some((value, size))
}

#[cfg(test)]
mod tests;
