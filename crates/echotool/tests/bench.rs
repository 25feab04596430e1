//! `echotool bench`: the side-by-side comparison, against its embedded servers and against
//! external ones that echo, corrupt, stall or do not exist.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::*;

fn bench(args: &[&str]) -> Outcome {
    let mut cmd = echotool();
    cmd.arg("bench").args(args);
    run(cmd, b"")
}

fn json_of(out: &Outcome) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            out.stderr
        )
    })
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("echotool-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_default_run_compares_tcp_udp_tls_and_quic_in_every_scenario() {
    // The defaults, shortened so the suite stays quick.
    let out = bench(&["--duration", "300ms", "--warmup", "100ms", "--json"]);
    assert!(out.status.success(), "{}", out.stderr);
    let report = json_of(&out);
    let rows: Vec<(String, String)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap().into(),
                r["scenario"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("tcp", "latency"),
        ("tcp", "throughput"),
        ("tcp", "setup"),
        ("tcp", "first-echo"),
        ("udp", "latency"),
        ("udp", "throughput"),
        ("tls", "latency"),
        ("tls", "throughput"),
        ("tls", "setup/full"),
        ("tls", "first-echo/full"),
        ("tls", "setup/resumed"),
        ("tls", "first-echo/resumed"),
        ("quic", "latency"),
        ("quic", "throughput"),
        ("quic", "setup/1-rtt"),
        ("quic", "first-echo/1-rtt"),
        ("quic", "setup/0-rtt"),
        ("quic", "first-echo/0-rtt"),
        // One client endpoint for every connection, as real QUIC clients connect.
        ("quic", "setup/1-rtt-shared"),
        ("quic", "first-echo/1-rtt-shared"),
        ("quic", "setup/0-rtt-shared"),
        ("quic", "first-echo/0-rtt-shared"),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), s.to_string()))
    .collect();
    assert_eq!(rows, want);
    for row in report["rows"].as_array().unwrap() {
        let f = &row["median"];
        assert!(f["messages"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(f["mismatches"], 0, "{row}");
        assert_eq!(f["errors"], 0, "{row}");
        assert!(f["rtt_us"]["p50"].as_f64().unwrap() > 0.0, "{row}");
    }
    // Fresh set-ups never resume; resumed ones always do (TLS tickets, QUIC 0-RTT).
    for row in report["rows"].as_array().unwrap() {
        let scenario = row["scenario"].as_str().unwrap();
        let done = row["median"]["messages"].as_u64().unwrap();
        let resumed = row["median"]["resumed"].as_u64().unwrap();
        let variant = scenario.trim_end_matches("-shared");
        if variant.ends_with("/resumed") || variant.ends_with("/0-rtt") {
            assert_eq!(resumed, done, "{row}");
        } else {
            assert_eq!(resumed, 0, "{row}");
        }
    }
    for server in report["servers"].as_array().unwrap() {
        assert_eq!(server["errors"], 0, "{server}");
        assert_eq!(server["failed_handshakes"], 0, "{server}");
    }
    let (latency, throughput) = (&report["rows"][0], &report["rows"][1]);
    assert_eq!(
        (latency["conns"].as_u64(), latency["size"].as_u64()),
        (Some(1), Some(64))
    );
    assert_eq!(
        (throughput["conns"].as_u64(), throughput["size"].as_u64()),
        (Some(4), Some(16384))
    );
}

#[test]
fn the_table_has_every_column_and_runs_show_their_spread() {
    let out = bench(&[
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--size",
        "64,1K",
        "--runs",
        "3",
        "--duration",
        "200ms",
        "--warmup",
        "50ms",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().contains("3 runs"), "{text}");
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "protocol", "scenario", "conns", "size", "depth", "msgs/s", "MB/s", "p50", "p90",
            "p99", "p99.9", "max", "errors", "mismatch", "lost", "late", "spread"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains("64 B") && rows[1].contains("1 KiB"),
        "{text}"
    );
    assert!(rows.iter().all(|r| r.contains('±')), "{text}");
}

#[test]
fn a_corrupting_server_yields_mismatches_and_exit_status_one() {
    let (_socat, port) = tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:tr a-z A-Z".into(),
        ]
    });
    // 16 KiB messages: tr writes whole chunks, so echoes come back (altered) instead of sitting
    // in its output buffer.
    let url = format!("tcp://127.0.0.1:{port}");
    let out = bench(&[
        "--target",
        &url,
        "--scenario",
        "latency",
        "--size",
        "16K",
        "--duration",
        "500ms",
        "--warmup",
        "0",
        "--csv",
    ]);
    out.assert_error(
        1,
        &[
            "came back altered, bytes differing from what was sent",
            "letters' case",
        ],
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let mismatches: u64 = row[14].parse().unwrap();
    assert!(mismatches > 0, "{csv}");
}

#[test]
fn udp_to_a_port_where_nothing_listens_is_all_lost_and_ends() {
    let port = free_udp_port();
    let url = format!("udp://127.0.0.1:{port}");
    let out = bench(&[
        "--target",
        &url,
        "--duration",
        "500ms",
        "--warmup",
        "0",
        "--timeout",
        "200ms",
        "--json",
    ]);
    out.assert_error(
        1,
        &[
            "nothing was measured by udp://127.0.0.1:",
            "datagrams were lost; is an echo server listening there?",
        ],
    );
    let report = json_of(&out);
    let latency = &report["rows"][0];
    assert_eq!(latency["scenario"], "latency");
    assert!(latency["median"]["lost"].as_u64().unwrap() > 0, "{latency}");
    assert_eq!(latency["median"]["mismatches"], 0, "lost is not altered");
}

/// A TCP echo server that stalls for 200 ms once, after the first 100 KB.
fn stalling_server() -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stalled = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let flag = stalled.clone();
    thread::spawn(move || {
        // Bounded: a handful of connections at most in this test.
        for conn in listener.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            let (flag, seen) = (flag.clone(), seen.clone());
            thread::spawn(move || {
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if seen.fetch_add(n as u64, Ordering::Relaxed) > 100_000
                        && !flag.swap(true, Ordering::Relaxed)
                    {
                        thread::sleep(Duration::from_millis(200));
                    }
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, stalled)
}

#[test]
fn open_loop_rate_shows_a_stall_in_the_tail_and_json_and_svg_are_complete() {
    let (port, stalled) = stalling_server();
    let url = format!("tcp://127.0.0.1:{port}");
    let json = temp("stall.json");
    let svg = temp("stall.svg");
    let out = bench(&[
        "--target",
        &url,
        "--scenario",
        "latency",
        "--rate",
        "2000",
        "--duration",
        "2s",
        "--warmup",
        "0",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(stalled.load(Ordering::Relaxed), "the server stalled");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let row = &report["rows"][0];
    let p999 = row["median"]["rtt_us"]["p999"].as_f64().unwrap();
    // Every message scheduled during the 200 ms stall waited for it: far more than 0.1 %.
    assert!(
        p999 >= 100_000.0,
        "p99.9 {p999} µs should show the 200 ms stall"
    );
    assert_eq!(row["rate"], 2000.0);
    for key in [
        "echotool_version",
        "machine",
        "threads",
        "parameters",
        "rows",
        "servers",
    ] {
        assert!(!report[key].is_null(), "{key} missing");
    }
    for key in ["kernel", "cpu_model", "cpus"] {
        assert!(!report["machine"][key].is_null(), "machine.{key} missing");
    }
    for key in [
        "messages",
        "messages_per_sec",
        "mb_per_sec",
        "rtt_us",
        "errors",
        "mismatches",
        "lost",
        "curve",
    ] {
        assert!(!row["median"][key].is_null(), "{key} missing");
    }
    for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(
            row["median"]["rtt_us"][key].is_f64(),
            "rtt_us.{key} missing"
        );
    }
    assert_eq!(report["parameters"]["targets"][0], url.as_str());
    // The SVG is well-formed XML with an <svg> root and a curve in it.
    let check = sh(
        &format!(
            "python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse('{}').getroot(); \
             sys.exit(0 if r.tag.endswith('svg') and len(list(r.iter('{{http://www.w3.org/2000/svg}}polyline'))) > 0 else 1)\"",
            svg.display()
        ),
        b"",
    );
    assert!(check.status.success(), "{}", check.stderr);
}

#[test]
fn target_mode_measures_socat_and_ncat() {
    let (_socat, port) = tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
            "PIPE".into(),
        ]
    });
    let out = bench(&[
        "--target",
        &format!("tcp://127.0.0.1:{port}"),
        "--scenario",
        "latency,throughput",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--json",
    ]);
    assert!(out.status.success(), "socat: {}", out.stderr);
    for row in json_of(&out)["rows"].as_array().unwrap() {
        assert!(row["median"]["messages"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["median"]["mismatches"], 0);
    }

    let (_ncat, port) = tcp_peer("ncat", |port| {
        [
            "-l",
            "-k",
            "127.0.0.1",
            &port.to_string(),
            "--exec",
            "/bin/cat",
        ]
        .map(String::from)
        .to_vec()
    });
    let out = bench(&[
        "--target",
        &format!("tcp://127.0.0.1:{port}"),
        "--scenario",
        "latency",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--json",
    ]);
    assert!(out.status.success(), "ncat: {}", out.stderr);
    let rows = json_of(&out)["rows"].clone();
    assert!(
        rows[0]["median"]["messages"].as_u64().unwrap() > 0,
        "{rows}"
    );
    assert_eq!(rows[0]["median"]["mismatches"], 0);
}

#[test]
fn a_target_name_is_resolved_once_before_measuring() {
    let socat = || {
        tcp_peer("socat", |port| {
            vec![
                format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
                "PIPE".into(),
            ]
        })
    };
    let ((_one, port), (_two, other)) = (socat(), socat());
    // Two targets, one name: resolved once for both.
    let targets = format!("tcp://localhost:{port},tcp://localhost:{other}");
    let args = [
        "--target",
        &targets,
        "--scenario",
        "setup",
        "--duration",
        "300ms",
    ];
    let out = bench(&[&args[..], &["--warmup", "0", "--json"]].concat());
    assert!(out.status.success(), "{}", out.stderr);
    let report = json_of(&out);
    assert_eq!(
        report["parameters"]["resolved"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let resolved = &report["parameters"]["resolved"][0];
    assert_eq!(resolved["name"], "localhost", "{report}");
    let addresses = resolved["addresses"].as_array().unwrap();
    assert!(addresses.iter().any(|a| a == "127.0.0.1"), "{resolved}");
    assert!(resolved["took_us"].as_f64().unwrap() > 0.0, "{resolved}");
    for row in report["rows"].as_array().unwrap() {
        assert!(row["median"]["messages"].as_u64().unwrap() > 0, "{row}");
    }
    assert_eq!(report["rows"].as_array().unwrap().len(), 4, "{report}");

    // The table's header says so, with what the name resolved to.
    let out = bench(&[&args[..], &["--warmup", "0"]].concat());
    assert!(out.status.success(), "{}", out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("resolved once, before measuring: localhost → ")
            && table.contains("127.0.0.1"),
        "{table}"
    );
}

#[test]
fn variant_measures_only_the_set_up_variants_named() {
    let out = bench(&[
        "--proto",
        "tcp,quic",
        "--scenario",
        "setup",
        "--variant",
        "0-rtt-shared",
        "--duration",
        "300ms",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let report = json_of(&out);
    let rows = row_names(&report);
    // TCP has no variants and is measured as usual; QUIC only in the one named.
    assert_eq!(
        rows,
        [
            "tcp setup",
            "tcp first-echo",
            "quic setup/0-rtt-shared",
            "quic first-echo/0-rtt-shared"
        ],
        "{report}"
    );
    assert_eq!(report["parameters"]["variants"][0], "0-rtt-shared");
    for row in report["rows"].as_array().unwrap() {
        assert!(row["median"]["messages"].as_u64().unwrap() > 0, "{row}");
    }
}

#[test]
fn bad_bench_flags_are_explained() {
    bench(&["--scenario", "fastest"]).assert_error(2, &["'fastest' is not a scenario"]);
    bench(&["--proto", "carrier-pigeon", "--duration", "100ms"])
        .assert_error(2, &["unknown protocol 'carrier-pigeon'"]);
    bench(&["--target", "tcp://127.0.0.1:1", "--proto", "udp"])
        .assert_error(2, &["cannot be used with"]);
    bench(&["--size", "0"]).assert_error(2, &["--size must be at least 1 byte"]);
    bench(&[
        "--proto",
        "tls",
        "--scenario",
        "setup",
        "--variant",
        "0-rtt",
    ])
    .assert_error(
        2,
        &["no protocol measured has a set-up variant '0-rtt': tls has full, resumed"],
    );
    bench(&[
        "--proto",
        "quic",
        "--scenario",
        "latency",
        "--variant",
        "0-rtt",
    ])
    .assert_error(2, &["--variant picks among the set-up scenario's variants"]);
}

/// Runs `echotool bench ARGS` in the background with its stderr captured.
fn bench_running(args: &[&str]) -> Running {
    let mut cmd = echotool();
    cmd.arg("bench").args(args);
    Running::spawn(cmd)
}

#[test]
fn an_overloaded_embedded_server_is_overload_not_corruption() {
    // Far beyond what one client core can send: the rate is not reached, datagrams may be lost
    // or late, and nothing is called altered.
    let out = bench(&[
        "--proto",
        "udp,tcp",
        "--scenario",
        "latency",
        "--rate",
        "10000000",
        "--duration",
        "500ms",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(!out.stderr.contains("altered"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--rate 10 000 000 not reached"),
        "{}",
        out.stderr
    );
    for row in json_of(&out)["rows"].as_array().unwrap() {
        let f = &row["median"];
        assert_eq!(f["mismatches"], 0, "{row}");
        assert!(f["messages"].as_u64().unwrap() > 0, "{row}");
        let sent = f["sent_per_sec"].as_f64().unwrap();
        assert!(sent > 0.0 && sent < 10_000_000.0, "{row}");
        assert!(f["unsent"].as_u64().unwrap() > 0, "{row}");
    }
}

#[test]
fn a_rate_that_never_reaches_the_window_says_so_instead_of_blaming_the_server() {
    let out = bench(&[
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--rate",
        "1000000000",
        "--duration",
        "300ms",
        "--warmup",
        "200ms",
    ]);
    out.assert_error(1, &["the client could not send at --rate 1 000 000 000"]);
    assert!(!out.stderr.contains("listening"), "{}", out.stderr);
}

#[test]
fn late_datagram_echoes_are_late_not_mismatched() {
    // A UDP echo that holds back every tenth datagram for 300 ms; the bench waits 100 ms.
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let url = format!("udp://{}", peer.local_addr().unwrap());
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // Bounded: the bench sends at 200/s for about a second.
        for i in 0..2_000u32 {
            let Ok((n, from)) = peer.recv_from(&mut buf) else {
                return;
            };
            let (data, peer) = (buf[..n].to_vec(), peer.try_clone().unwrap());
            if i % 10 == 9 {
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(300));
                    let _ = peer.send_to(&data, from);
                });
            } else {
                let _ = peer.send_to(&data, from);
            }
        }
    });
    let out = bench(&[
        "--target",
        &url,
        "--scenario",
        "latency",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "0",
        "--timeout",
        "100ms",
        "--json",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let row = &json_of(&out)["rows"][0]["median"];
    assert_eq!(row["mismatches"], 0, "{row}");
    assert!(row["lost"].as_u64().unwrap() >= 15, "{row}");
    assert!(row["late"].as_u64().unwrap() >= 10, "{row}");
    assert!(
        out.stderr.contains("came back later (late, not corrupted)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_datagram_larger_than_udp_carries_is_refused_before_the_run() {
    let out = bench(&["--proto", "udp", "--size", "70000", "--duration", "30s"]);
    out.assert_error(
        2,
        &[
            "a 70000-byte message is too large for udp",
            "at most 65507 bytes",
        ],
    );
}

#[test]
fn thin_samples_are_flagged() {
    let (_socat, port) = tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
            "PIPE".into(),
        ]
    });
    let out = bench(&[
        "--target",
        &format!("tcp://127.0.0.1:{port}"),
        "--scenario",
        "latency",
        "--rate",
        "50",
        "--duration",
        "500ms",
        "--warmup",
        "0",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("only 25 samples"), "{table}");
    assert!(
        out.stderr.contains("only 25 latencies measured, too few"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_output_paths_are_refused_before_the_run() {
    for (args, needle) in [
        (
            &["--json", "/nonexistent/x.json"][..],
            "--json /nonexistent/x.json: cannot write there (no such directory)",
        ),
        (
            &["--csv", "/nonexistent/x.csv"][..],
            "--csv /nonexistent/x.csv",
        ),
        (
            &["--plot", "/nonexistent/x.svg"][..],
            "--plot /nonexistent/x.svg",
        ),
        (&["--plot", "x.png"][..], "--plot writes SVG"),
        (
            &["--json", "-", "--csv", "-"][..],
            "cannot both go to standard output",
        ),
    ] {
        let mut all = vec!["--duration", "1h"];
        all.extend_from_slice(args);
        bench(&all).assert_error(2, &[needle]);
    }
}

#[test]
fn an_interrupted_run_reports_what_finished_and_exits_130() {
    let json = temp("interrupted.json");
    let mut running = bench_running(&[
        "-v",
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--runs",
        "3",
        "--duration",
        "2s",
        "--warmup",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    running.wait_for_line("measured tcp latency 64 B, run 1/3");
    running.signal(libc_sigint());
    let (status, lines) = running.wait();
    assert_eq!(status.code(), Some(130), "{lines:#?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["interrupted"], "SIGINT");
    let row = &report["rows"][0];
    let runs = row["runs"].as_array().unwrap().len();
    assert!((1..3).contains(&runs), "{row}");
    assert_eq!(row["interrupted"], true);
    assert!(row["median"]["messages"].as_u64().unwrap() > 0);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the run was interrupted (SIGINT)")),
        "{lines:#?}"
    );
}

#[test]
fn sigterm_exits_143_and_a_second_signal_quits_at_once() {
    let mut running = bench_running(&[
        "-v",
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--duration",
        "1h",
        "--warmup",
        "0",
    ]);
    running.wait_for_line("measuring tcp latency");
    running.signal(15);
    let (status, _) = running.wait();
    assert_eq!(status.code(), Some(143));

    let mut running = bench_running(&[
        "-v",
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--duration",
        "1h",
        "--warmup",
        "0",
    ]);
    running.wait_for_line("measuring tcp latency");
    running.signal(libc_sigint());
    running.signal(libc_sigint());
    let (status, _) = running.wait();
    assert_eq!(status.code(), Some(130));
}

fn libc_sigint() -> i32 {
    2
}
