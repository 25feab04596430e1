//! `echotool bench --link`: the emulated link agrees with the textbook (round trips of every
//! handshake at two delays, the loss rate, the rate limit), captures and traces packets, and
//! leaves the host's network exactly as it found it, even when killed.
//!
//! These tests need root (CI runs as root); elsewhere each says so and passes without running.
//! All their traffic stays inside the two namespaces the link makes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Whether this process may make namespaces and TUN devices; says so when it may not.
fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: --link needs root here (CI runs these tests as root)");
    }
    root
}

/// `echotool bench ARGS --json`, which must succeed; its report.
fn bench_json(args: &[&str]) -> Value {
    let mut cmd = echotool();
    cmd.arg("bench").args(args).arg("--json");
    // Measuring takes its time: `--scenario latency,setup` is 11 rows (4 latency, TCP's set-up,
    // TLS's 2 and QUIC's 4 set-up variants) of warm-up plus duration each, 11 s of a debug
    // build at 1 s a row (19 to 20 s at 1.5 s, which the default patience of 20 s cut off).
    let out = run_within(cmd, b"", Duration::from_secs(60));
    assert!(out.status.success(), "{args:?}: {}", out.stderr);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr))
}

/// The row for `protocol` and `scenario`.
fn row<'a>(report: &'a Value, protocol: &str, scenario: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == protocol && r["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no {protocol} {scenario} row"))
}

/// The host namespace's links, addresses, routes and named namespaces, as `ip` shows them.
fn host_network() -> String {
    let mut all = String::new();
    for args in [
        &["-o", "link"][..],
        &["-o", "addr"],
        &["route"],
        &["-6", "route"],
        &["netns", "list"],
    ] {
        let out = Command::new("ip").args(args).output().expect("ip");
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

#[test]
fn round_trips_agree_with_the_textbook_at_two_delays() {
    if !root() {
        return;
    }
    // Round trips a first echo (or a set-up) takes, by protocol and row.
    let textbook = [
        ("tcp", "latency", 1.0),
        ("udp", "latency", 1.0),
        ("tls", "latency", 1.0),
        ("quic", "latency", 1.0),
        ("tcp", "setup", 1.0),
        ("tcp", "first-echo", 2.0),
        ("tls", "setup/full", 2.0),
        ("tls", "first-echo/full", 3.0),
        ("tls", "setup/resumed", 2.0),
        ("tls", "first-echo/resumed", 3.0),
        ("quic", "setup/1-rtt", 1.0),
        ("quic", "first-echo/1-rtt", 2.0),
        ("quic", "first-echo/0-rtt", 1.0),
    ];
    // Each row's own time (CPU, the forwarder's hops) at zero delay, under the same load as
    // the runs with delay: a debug build's QUIC handshake on a busy machine takes milliseconds
    // that no round trip explains. It is allowed on top, once; one round trip more than the
    // textbook (10 or 30 ms) still fails.
    let mut own = std::collections::HashMap::new();
    for delay_ms in [0.0, 5.0, 15.0] {
        let spec = format!("delay={delay_ms}ms");
        let report = bench_json(&[
            "--link",
            &spec,
            "--scenario",
            "latency,setup",
            // At 15 ms each way the slowest row (TLS's full first echo, three round trips)
            // still takes 8 samples for its median; every other row more.
            "--duration",
            "800ms",
            "--warmup",
            "200ms",
        ]);
        let rtt_us = 2.0 * delay_ms * 1000.0;
        for (protocol, scenario, rtts) in textbook {
            let p50 = row(&report, protocol, scenario)["median"]["rtt_us"]["p50"]
                .as_f64()
                .unwrap_or_else(|| panic!("{protocol} {scenario} has a p50 at {spec}"));
            if delay_ms == 0.0 {
                own.insert((protocol, scenario), p50);
                continue;
            }
            let theory = rtts * rtt_us;
            let ceiling = theory * 1.1 + 2000.0 + own[&(protocol, scenario)];
            assert!(
                p50 >= theory && p50 <= ceiling,
                "{protocol} {scenario} at {spec}: p50 {p50:.0} µs, textbook {theory:.0} µs \
                 (allowed up to {ceiling:.0}, its own time at zero delay included)"
            );
        }
    }
}

#[test]
fn a_loss_rate_of_p_loses_one_minus_one_minus_p_squared_of_round_trips() {
    if !root() {
        return;
    }
    let report = bench_json(&[
        "--link",
        "loss=10%",
        "--proto",
        "udp",
        "--scenario",
        "latency",
        "--rate",
        "1000",
        "--duration",
        "3s",
        "--warmup",
        "0",
        "--timeout",
        "200ms",
    ]);
    let f = &row(&report, "udp", "latency")["median"];
    let sent = (f["scheduled"].as_u64().unwrap() - f["unsent"].as_u64().unwrap()) as f64;
    let lost = f["lost"].as_f64().unwrap();
    let expected = 1.0 - 0.9f64 * 0.9;
    // Four standard deviations of a binomial proportion over `sent` trials.
    let slack = 4.0 * (expected * (1.0 - expected) / sent).sqrt();
    let measured = lost / sent;
    assert!(
        (measured - expected).abs() <= slack,
        "lost {lost} of {sent}: {measured:.4}, expected {expected:.4} ± {slack:.4}"
    );
    assert_eq!(f["mismatches"], 0);
}

#[test]
fn throughput_at_a_rate_reaches_85_percent_of_it_and_never_exceeds_it() {
    if !root() {
        return;
    }
    let report = bench_json(&[
        "--link",
        "rate=20mbit",
        "--proto",
        "tcp,quic",
        "--scenario",
        "throughput",
        "--conns",
        "1",
        "--duration",
        "3s",
        "--warmup",
        "1s",
    ]);
    for protocol in ["tcp", "quic"] {
        let mbit = row(&report, protocol, "throughput")["median"]["mb_per_sec"]
            .as_f64()
            .unwrap()
            * 8.0;
        assert!(
            (17.0..=20.0).contains(&mbit),
            "{protocol}: {mbit:.2} Mbit/s of payload at rate=20mbit"
        );
    }
}

#[test]
fn the_host_network_is_untouched_by_a_run_and_by_a_killed_run() {
    if !root() {
        return;
    }
    let before = host_network();
    bench_json(&[
        "--link",
        "delay=1ms",
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--duration",
        "200ms",
        "--warmup",
        "0",
    ]);
    assert_eq!(host_network(), before, "after a normal run");
    let mut cmd = echotool();
    cmd.args([
        "-v",
        "bench",
        "--link",
        "delay=1ms",
        "--proto",
        "tcp",
        "--duration",
        "1h",
    ]);
    let mut running = Running::spawn(cmd);
    running.wait_for_line("measuring tcp latency");
    running.signal(9);
    let (status, _) = running.wait();
    assert_eq!(status.code(), None, "killed by SIGKILL");
    assert_eq!(host_network(), before, "after a SIGKILLed run");
}

/// The packets of a pcapng file (the Enhanced Packet Blocks' data), read independently of
/// the link crate, in the byte order its section header declares.
fn pcapng_packets(bytes: &[u8]) -> Vec<&[u8]> {
    let big = bytes.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d][..]);
    let word = |at: usize| {
        let raw: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    };
    let mut packets = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let (kind, len) = (word(at), word(at + 4) as usize);
        assert!(
            len >= 12 && at + len <= bytes.len(),
            "a well-formed block at {at}"
        );
        if kind == 6 {
            let captured = word(at + 20) as usize;
            packets.push(&bytes[at + 28..at + 28 + captured]);
        }
        at += len;
    }
    packets
}

/// The transport payload and protocol of a raw IPv4 packet.
fn ipv4_payload(packet: &[u8]) -> Option<(u8, &[u8])> {
    (packet.first()? >> 4 == 4).then_some(())?;
    let header = usize::from(packet[0] & 0x0f) * 4;
    Some((packet[9], packet.get(header..)?))
}

#[test]
fn the_capture_holds_a_tcp_syn_and_a_quic_initial() {
    if !root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("echotool-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("run.pcapng");
    bench_json(&[
        "--link",
        "delay=1ms",
        "--proto",
        "tcp,quic",
        "--scenario",
        "setup",
        "--duration",
        "200ms",
        "--warmup",
        "0",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&pcap).unwrap();
    let packets = pcapng_packets(&bytes);
    let syn = packets
        .iter()
        .filter_map(|p| ipv4_payload(p))
        .any(|(proto, tcp)| proto == 6 && tcp.len() >= 14 && tcp[13] & 0x12 == 0x02);
    assert!(syn, "a TCP SYN among {} packets", packets.len());
    let initial = packets
        .iter()
        .filter_map(|p| ipv4_payload(p))
        .any(|(proto, udp)| {
            let quic = udp.get(8..).unwrap_or_default();
            proto == 17 && quic.len() >= 5 && quic[0] & 0xb0 == 0x80 && quic[1..5] == [0, 0, 0, 1]
        });
    assert!(initial, "a QUIC v1 Initial among {} packets", packets.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_trace_shows_a_full_tls_handshake_packet_by_packet() {
    if !root() {
        return;
    }
    let mut cmd = echotool();
    cmd.args([
        "bench",
        "--link",
        "delay=2ms",
        "--proto",
        "tls",
        "--scenario",
        "setup",
    ]);
    cmd.args(["--duration", "200ms", "--warmup", "0", "--trace"]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let trace: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("trace: tls setup/full"))
        .skip(1)
        .take_while(|l| !l.starts_with("trace: "))
        .collect();
    let has = |needle: &str, arrow: &str| {
        trace
            .iter()
            .any(|l| l.contains(arrow) && l.contains(needle))
    };
    assert!(has("[SYN]", "→") && has("[SYN,ACK]", "←"), "{trace:#?}");
    assert!(has("TLS handshake", "→"), "ClientHello: {trace:#?}");
    assert!(
        has("TLS handshake+change_cipher_spec+application_data", "←"),
        "{trace:#?}"
    );
    assert!(
        has("TLS application_data", "→") && has("[FIN,ACK]", "←"),
        "{trace:#?}"
    );
}

#[test]
fn link_flags_are_explained() {
    let bench = |args: &[&str]| {
        let mut cmd = echotool();
        cmd.arg("bench").args(args);
        run(cmd, b"")
    };
    bench(&["--link", "delay=fast"]).assert_error(2, &["link spec 'delay=fast'"]);
    bench(&["--link", "marsnet"]).assert_error(2, &["not a profile", "4g"]);
    bench(&["--link", "lan", "--target", "tcp://127.0.0.1:7"]).assert_error(
        2,
        &["--link puts an emulated path", "--target is outside it"],
    );
    bench(&["--trace"]).assert_error(2, &["--link"]);
}
