//! Unit tests of the trace: lines for TCP, TLS and QUIC packets built by etherparse, and the
//! flow filter.

use std::io;

use etherparse::PacketBuilder;

use super::*;

/// A writer whose bytes the test can read after the tracer is done with it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const CLIENT: [u8; 4] = [198, 18, 0, 2];
const SERVER: [u8; 4] = [198, 18, 0, 1];

fn tcp(up: bool, port: u16, seq: u32, ack: Option<u32>, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if up {
        (CLIENT, SERVER, port, 7)
    } else {
        (SERVER, CLIENT, 7, port)
    };
    let mut builder = PacketBuilder::ipv4(src, dst, 64).tcp(sp, dp, seq, 1000);
    if syn {
        builder = builder.syn();
    }
    if let Some(ack) = ack {
        builder = builder.ack(ack);
    }
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT, SERVER, 64)
        .udp(port, 4433)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn run(packets: &[(Direction, Vec<u8>, Option<DropReason>)], arm_before: Option<usize>) -> String {
    let out = Shared::default();
    let filter = Arc::new(FlowFilter::default());
    let mut tracer = Tracer::new(Box::new(out.clone()), Arc::clone(&filter));
    for (i, (dir, packet, dropped)) in packets.iter().enumerate() {
        if arm_before == Some(i) {
            filter.arm();
        }
        tracer.record(*dir, i as u64 * 1_000_000, packet, *dropped);
    }
    tracer.flush();
    drop(tracer);
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

/// A QUIC v1 Initial long header with empty token and a 4-byte payload.
fn quic_initial() -> Vec<u8> {
    let mut p = vec![0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 4];
    p.extend_from_slice(&[9, 9, 9, 9]);
    p
}

#[test]
fn tcp_handshake_with_relative_numbers_and_tls() {
    let hello = [22, 3, 1, 0, 2, 1, 0];
    let text = run(
        &[
            (Direction::Up, tcp(true, 40000, 1000, None, true, &[]), None),
            (
                Direction::Down,
                tcp(false, 40000, 5000, Some(1001), true, &[]),
                None,
            ),
            (
                Direction::Up,
                tcp(true, 40000, 1001, Some(5001), false, &hello),
                Some(DropReason::Loss),
            ),
        ],
        None,
    );
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0]
            .contains("0.000000 → TCP 198.18.0.2:40000 > 198.18.0.1:7 [SYN] seq=0 win=1000 len=0"),
        "{text}"
    );
    assert!(
        lines[1].contains("← TCP 198.18.0.1:7 > 198.18.0.2:40000 [SYN,ACK] seq=0 ack=1"),
        "{text}"
    );
    assert!(
        lines[2].contains("[ACK] seq=1 ack=1 win=1000 len=7 TLS handshake DROPPED (loss)"),
        "{text}"
    );
}

#[test]
fn tls_record_types() {
    assert_eq!(
        tls_records(&[23, 3, 3, 0, 1, 0]).as_deref(),
        Some("application_data")
    );
    let ccs_then_hs = [20, 3, 3, 0, 1, 1, 22, 3, 3, 0, 0];
    assert_eq!(
        tls_records(&ccs_then_hs).as_deref(),
        Some("change_cipher_spec+handshake")
    );
    assert_eq!(
        tls_records(&[21, 3, 3, 0, 2, 2, 40]).as_deref(),
        Some("alert")
    );
    assert_eq!(tls_records(b"GET / HTTP/1.1"), None);
    assert_eq!(tls_records(&[22, 3]), None);
}

#[test]
fn quic_packet_types() {
    assert_eq!(
        quic_types(&quic_initial(), false).as_deref(),
        Some("Initial")
    );
    let mut coalesced = quic_initial();
    // A Handshake packet (type 2) with a 1-byte payload, then a short header.
    coalesced.extend_from_slice(&[0xe0, 0, 0, 0, 1, 0, 0, 1, 7, 0x40, 1, 2]);
    assert_eq!(
        quic_types(&coalesced, false).as_deref(),
        Some("Initial+Handshake+1-RTT")
    );
    assert_eq!(quic_types(&[0x40, 1, 2, 3], true).as_deref(), Some("1-RTT"));
    assert_eq!(quic_types(&[0x40, 1, 2, 3], false), None);
    assert_eq!(quic_types(b"hello", false), None);
    assert_eq!(
        quic_types(&[0xc0, 0, 0, 0, 0, 0], false).as_deref(),
        Some("Version Negotiation")
    );
}

#[test]
fn udp_flow_becomes_quic() {
    let text = run(
        &[
            (Direction::Up, udp(5000, &quic_initial()), None),
            (Direction::Up, udp(5000, &[0x41, 1, 2]), None),
            (Direction::Up, udp(5001, &[0x41, 1, 2]), None),
        ],
        None,
    );
    let lines: Vec<_> = text.lines().collect();
    assert!(lines[0].ends_with("len=21 QUIC Initial"), "{text}");
    assert!(lines[1].ends_with("len=3 QUIC 1-RTT"), "{text}");
    assert!(lines[2].ends_with("len=3"), "{text}");
}

#[test]
fn filter_follows_the_next_new_flow() {
    let old = tcp(true, 40000, 1, None, true, &[]);
    let new = tcp(true, 40001, 1, None, true, &[]);
    let reply = tcp(false, 40001, 9, Some(2), true, &[]);
    let text = run(
        &[
            (Direction::Up, old.clone(), None),
            (Direction::Up, old.clone(), None), // armed: an old flow does not count
            (Direction::Down, reply.clone(), None), // nor a new flow's server packet first
            (Direction::Up, new.clone(), None),
            (Direction::Down, reply, None),
            (Direction::Up, old, None),
        ],
        Some(1),
    );
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains(":40000"), "{text}");
    assert!(
        lines[1].contains("→") && lines[1].contains(":40001"),
        "{text}"
    );
    assert!(
        lines[2].contains("←") && lines[2].contains(":40001"),
        "{text}"
    );
}
