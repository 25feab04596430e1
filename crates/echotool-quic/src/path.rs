//! Settings chosen by path: what is right on loopback is wrong on a real network.
//!
//! quinn starts every path at a 1 200-byte packet and discovers up to 1 452, which suits the
//! Internet. On loopback (MTU 65 536, nothing in between that could drop a big datagram) that
//! makes QUIC encrypt, frame, send and acknowledge a packet per ~1.4 KiB, where TLS over TCP
//! hands the kernel 16 KiB records. On a loopback path only, a client starts at
//! [`LOOPBACK_MTU`] and a server discovers it (quinn #1457: a larger initial MTU made quinn
//! beat TCP on loopback). The
//! choice is made per connection from the peer's address, never for other paths, where a
//! datagram too big for the path would be lost and black-hole detection would have to undo it.
//!
//! On a loopback path each side also asks the other to acknowledge less often
//! ([`LOOPBACK_ACK_THRESHOLD`], quinn's implementation of the QUIC ack-frequency draft;
//! a peer that does not implement it ignores the request): a round trip there lasts
//! microseconds, and an ACK-only packet costs as much user-space work as a data packet.
//!
//! Every endpoint (client and server) also says it can *receive* datagrams up to
//! [`LOOPBACK_MTU`] (the `max_udp_payload_size` transport parameter). That is a promise about
//! this host's own socket, true on every path, and it changes nothing on a real network: a peer
//! still sends no more than its own path MTU discovery found.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The UDP payload a loopback connection starts with and keeps (no discovery above it).
///
/// Big enough that a 16 KiB echo takes two packets instead of twelve; small enough that
/// quinn's receive buffers (this size × 64 GRO segments × 32 datagrams per endpoint, most of
/// it never touched) stay modest, and that a GSO batch (at most 64 KiB) still holds several.
pub(crate) const LOOPBACK_MTU: u16 = 9_000;

/// quinn's smallest MTU and where its discovery starts: what every QUIC path must carry.
const MIN_MTU: u16 = 1_200;

/// On loopback, ack-eliciting packets a peer may receive before it must acknowledge them
/// (quinn's default asks for an ACK every other packet).
///
/// Measured with `echotool bench --scenario throughput` (4 connections × 16 KiB × 2 in
/// flight): QUIC bulk went from 86-98 to 286-298 MB/s, at load 20 on 2 cores
/// (benches/results/quic-perf.md). Data sent back piggybacks its ACK anyway; the threshold
/// only spares the ACK-only packets, and [`LOOPBACK_MAX_ACK_DELAY`] bounds the wait.
pub(crate) const LOOPBACK_ACK_THRESHOLD: u32 = 8;

/// On loopback, the longest a peer may hold an ACK back below [`LOOPBACK_ACK_THRESHOLD`]:
/// far below quinn's 25 ms default, so that loss detection and the congestion window are
/// told within a millisecond.
pub(crate) const LOOPBACK_MAX_ACK_DELAY: Duration = Duration::from_millis(1);

/// Whether `ip` is this host (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The endpoint configuration of every endpoint: quinn's defaults, receiving datagrams up to
/// [`LOOPBACK_MTU`].
pub(crate) fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    // LOOPBACK_MTU lies within the range quinn accepts (1 200 ..= 65 527).
    let _ = config.max_udp_payload_size(LOOPBACK_MTU);
    config
}

/// Which end of a connection a configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Starts at [`LOOPBACK_MTU`] on loopback.
    Client,
    /// Starts at quinn's 1 200 bytes and discovers up to [`LOOPBACK_MTU`] on loopback.
    Server,
}

/// Tunes `transport` for a loopback path: packets of up to [`LOOPBACK_MTU`], an ACK per
/// [`LOOPBACK_ACK_THRESHOLD`] packets asked of the peer.
///
/// The client starts there. The server must not: before the client's address is validated it
/// may send no more than three times what it received (RFC 9000 §8.1), and the patched
/// quinn-proto reserves a whole datagram of the current MTU against that budget, so a 9 000-byte
/// MTU against one 1 200-byte Initial held the server's first flight back until the client's
/// probe timeout (a second) had sent two more. The server discovers the size instead, a few
/// round trips of microseconds after the handshake. `min_mtu` stays at quinn's 1 200, so that
/// if the path is not what its address says (a firewall rule on `lo`, say), black-hole
/// detection still falls back.
///
/// The discovery probes [`LOOPBACK_MTU`] at once, in one probe, instead of quinn's binary
/// search from 1 200 (about ten probes of 5 000 to 9 000 bytes, each sealed, sent, opened and
/// acknowledged): on a path that carries 9 000 bytes, as loopback does, the search only costs.
/// It cost every short connection: QUIC set-ups with the search ran at 1 250 to 1 330 a second
/// against 1 660 to 2 030 without the server's tuning (4 at a time, shared client endpoint). A
/// peer that receives less than that (quinn's default 1 472) gets no probe and stays at 1 200.
pub(crate) fn tune_for_loopback(transport: &mut quinn::TransportConfig, side: Side) {
    let mut discovery = quinn::MtuDiscoveryConfig::default();
    discovery
        .upper_bound(LOOPBACK_MTU)
        .minimum_change(LOOPBACK_MTU - MIN_MTU);
    if side == Side::Client {
        transport.initial_mtu(LOOPBACK_MTU);
    }
    transport.mtu_discovery_config(Some(discovery));
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(LOOPBACK_ACK_THRESHOLD.into())
        .max_ack_delay(Some(LOOPBACK_MAX_ACK_DELAY));
    transport.ack_frequency_config(Some(acks));
}

/// `transport`, tuned for loopback when `ip` is a loopback address.
pub(crate) fn for_peer(
    mut transport: quinn::TransportConfig,
    ip: IpAddr,
    side: Side,
) -> Arc<quinn::TransportConfig> {
    if is_loopback(ip) {
        tune_for_loopback(&mut transport, side);
    }
    Arc::new(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_told_by_address() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["198.18.0.1", "2001:2::1", "::ffff:198.18.0.1", "0.0.0.0"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn endpoints_receive_loopback_sized_datagrams() {
        assert_eq!(
            endpoint_config().get_max_udp_payload_size(),
            u64::from(LOOPBACK_MTU)
        );
    }
}
