//! QUIC: echotool to echotool (streams, datagrams, many streams, mutual authentication, pins)
//! and against aioquic, an independent QUIC implementation, in both directions.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/quic_echo.py");

/// `echotool certs` into a fresh directory, removed when dropped.
fn certs() -> TempDir {
    TempDir::new("quic").with_certs()
}

/// The aioquic client against `host:port`, trusting the CA in `dir` for the name localhost,
/// with `extra` flags and `input` on stdin.
fn aioquic_client(dir: &TempDir, host: &str, port: &str, extra: &[&str], input: &[u8]) -> Outcome {
    require_python_module("aioquic");
    let ca = dir.file("ca.pem");
    let mut client = python();
    client
        .args([
            PEER,
            "client",
            host,
            port,
            "--ca",
            &ca,
            "--server-name",
            "localhost",
        ])
        .args(extra);
    run(client, input)
}

/// A QUIC server on `listen` with the certificate in `dir`, plus `extra` flags.
fn quic_server(dir: &TempDir, listen: &str, extra: &[&str]) -> Server {
    let (cert, key) = (dir.file("server.pem"), dir.file("server-key.pem"));
    let mut args = vec![
        "--proto", "quic", "-l", listen, "--cert", &cert, "--key", &key,
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A QUIC server with an ephemeral certificate, and the pin it printed.
fn ephemeral(listen: &str) -> (Server, String) {
    let mut server = Server::start(&["--proto", "quic", "-l", listen]);
    let line = server.proc.wait_for_line("connect with:");
    let pin = line
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("echotool connect --proto quic --pin"),
        "{line}"
    );
    (server, pin)
}

#[test]
fn seesaw_and_a_mebibyte_over_ipv4_and_ipv6() {
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let (server, pin) = ephemeral(listen);
        let lines = connect(
            &["--pin", &pin, "--mode", "lines", server.url()],
            b"one\ntwo\n",
        );
        assert!(lines.status.success(), "{listen}: {}", lines.stderr);
        assert_eq!(lines.stdout, b"one\ntwo\n");
        let data = random_bytes(1 << 20, 11);
        let piped = connect(&["--pin", &pin, server.url()], &data);
        assert!(piped.status.success(), "{listen}: {}", piped.stderr);
        assert_same_bytes(&piped.stdout, &data);
    }
}

#[test]
fn datagrams_are_echoed_as_datagrams() {
    let (server, pin) = ephemeral(":0");
    let lines = connect(
        &["--pin", &pin, "--datagram", "--mode", "lines", server.url()],
        b"first\nsecond\n",
    );
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, b"first\nsecond\n");
    let data = random_bytes(100_000, 12);
    let piped = connect(
        &["--pin", &pin, "--datagram", "--size", "1000", server.url()],
        &data,
    );
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);
    let v = connect(
        &["-v", "--pin", &pin, "--datagram", "-m", "x", server.url()],
        b"",
    );
    // What was negotiated, as for TLS: both ends prefer the post-quantum hybrid.
    assert!(
        v.stderr
            .contains("QUIC v1 with TLS 1.3, cipher suite TLS13_"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr
            .contains("key exchange X25519MLKEM768, ALPN echo, 1-RTT handshake"),
        "{}",
        v.stderr
    );
    let (status, lines) = server.stop();
    assert!(status.success());
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary quic://"))
        .unwrap();
    assert!(summary.contains(" 0 errors"), "{summary}");
}

#[test]
fn many_streams_and_many_connections_at_once() {
    require_python_module("aioquic");
    let dir = certs();
    let server = quic_server(&dir, ":0", &[]);
    let port = server.port().to_string();
    // 16 streams on one connection, each a full copy, from an independent implementation.
    let data = random_bytes(64 * 1024, 13);
    let out = aioquic_client(&dir, "127.0.0.1", &port, &["--streams", "16"], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert_same_bytes(&out.stdout, &data);
    // 20 echotool clients at once.
    let url = format!("quic://localhost:{port}");
    let ca = dir.file("ca.pem");
    let clients: Vec<_> = (0..20u64)
        .map(|i| {
            let (url, ca) = (url.clone(), ca.clone());
            thread::spawn(move || {
                let data = random_bytes(32 * 1024, 100 + i);
                let out = connect(&["--ca", &ca, &url], &data);
                assert!(out.status.success(), "{}", out.stderr);
                assert_same_bytes(&out.stdout, &data);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn mutual_authentication_and_its_refusal() {
    let dir = certs();
    let server = quic_server(&dir, ":0", &["--client-ca", &dir.file("ca.pem")]);
    let url = format!("quic://localhost:{}", server.port());
    let ca = dir.file("ca.pem");
    let ok = connect(
        &[
            "--ca",
            &ca,
            "--cert",
            &dir.file("client.pem"),
            "--key",
            &dir.file("client-key.pem"),
            "-m",
            "mutual",
            &url,
        ],
        b"",
    );
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout, b"mutual\n");
    connect(&["--ca", &ca, "-m", "x", &url], b"").assert_error(
        1,
        &[
            "the server requires a client certificate",
            "--cert and --key",
        ],
    );
}

#[test]
fn pins_right_and_wrong() {
    let (server, pin) = ephemeral(":0");
    let ok = connect(&["--pin", &pin, "-m", "pinned", server.url()], b"");
    assert_eq!(ok.stdout, b"pinned\n", "{}", ok.stderr);
    let wrong = format!("sha256:{}", "cd".repeat(32));
    connect(&["--pin", &wrong, "-m", "x", server.url()], b"").assert_error(
        1,
        &[
            "has the fingerprint sha256:",
            "not the one given with --pin",
        ],
    );
    connect(&["-m", "x", server.url()], b"")
        .assert_error(1, &["not issued by a CA this client trusts"]);
}

#[test]
fn aioquic_client_against_echotool_serve() {
    require_python_module("aioquic");
    let dir = certs();
    for (listen, host) in [(":0", "127.0.0.1"), ("[::1]:0", "::1")] {
        let server = quic_server(&dir, listen, &[]);
        let port = server.port().to_string();
        let data = random_bytes(1 << 20, 14);
        let out = aioquic_client(&dir, host, &port, &[], &data);
        assert!(out.status.success(), "{host}: {}", out.stderr);
        assert_same_bytes(&out.stdout, &data);
        let out = aioquic_client(
            &dir,
            host,
            &port,
            &["--datagram"],
            b"dgram one\ndgram two\n",
        );
        assert!(out.status.success(), "{host}: {}", out.stderr);
        assert_eq!(out.stdout, b"dgram one\ndgram two\n");
    }
}

#[test]
fn echotool_connect_against_an_aioquic_server() {
    require_python_module("aioquic");
    let dir = certs();
    let mut peer = python();
    peer.args([
        PEER,
        "server",
        "--port",
        "0",
        "--cert",
        &dir.file("server.pem"),
        "--key",
        &dir.file("server-key.pem"),
    ]);
    let mut proc = Running::spawn(peer);
    let line = proc.wait_for_line("listening on quic://");
    let port = line.rsplit(':').next().unwrap().trim().to_string();
    let url = format!("quic://localhost:{port}");
    let ca = dir.file("ca.pem");
    let data = random_bytes(1 << 20, 15);
    let out = connect(&["--ca", &ca, &url], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert_same_bytes(&out.stdout, &data);
    let lines = connect(
        &["--ca", &ca, "--mode", "lines", &url],
        b"to aioquic\nand back\n",
    );
    assert_eq!(lines.stdout, b"to aioquic\nand back\n", "{}", lines.stderr);
    // aioquic cannot split a datagram over packets: keep them small.
    let dgrams = connect(
        &["--ca", &ca, "--datagram", "--size", "1000", &url],
        &random_bytes(20_000, 16),
    );
    assert!(dgrams.status.success(), "{}", dgrams.stderr);
    assert_eq!(dgrams.stdout.len(), 20_000);
}

#[test]
fn a_closed_port_is_refused_at_once_and_a_silent_one_times_out() {
    // Nothing listens: the kernel answers with a port unreachable, and that is the verdict.
    let port = free_udp_port();
    let started = Instant::now();
    connect(
        &[
            "--proto",
            "quic",
            "--insecure",
            "-m",
            "x",
            &format!("127.0.0.1:{port}"),
        ],
        b"",
    )
    .assert_error(
        1,
        &[
            &format!("could not connect to quic://127.0.0.1:{port}: connection refused"),
            "is a server listening there?",
        ],
    );
    let took = started.elapsed();
    assert!(took < Duration::from_millis(900), "refused after {took:?}");

    // Something holds the port, reads, and never answers (a firewall that drops, a server
    // that hangs): only the timeout can tell.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut datagrams = 0;
            // Bounded: PATIENCE in 50 ms reads.
            for _ in 0..PATIENCE.as_millis() / 50 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                if silent.recv(&mut buf).is_ok() {
                    datagrams += 1;
                }
            }
            datagrams
        })
    };
    let started = Instant::now();
    connect(
        &[
            "--proto",
            "quic",
            "--insecure",
            "--timeout",
            "1s",
            "-m",
            "x",
            &addr.to_string(),
        ],
        b"",
    )
    .assert_error(
        1,
        &[
            &format!("no QUIC connection to quic://{addr}"),
            "within 1 s",
            "nothing answered and nothing refused",
            &format!("UDP port {}", addr.port()),
            "firewall",
        ],
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "before the timeout"
    );
    done.store(true, Ordering::Relaxed);
    assert!(
        reader.join().unwrap() > 0,
        "the silent peer saw the handshake"
    );
}

#[test]
fn an_alpn_mismatch_is_explained() {
    let (server, pin) = ephemeral(":0");
    connect(
        &["--pin", &pin, "--alpn", "h3", "-m", "x", server.url()],
        b"",
    )
    .assert_error(1, &["ALPN", "--alpn"]);
}

#[test]
fn openssl_self_signed_ca_certificates_trusted_by_name_work_both_ways() {
    let dir = certs();
    let (cert, key) = openssl_self_signed(
        &dir,
        "self",
        "localhost",
        Some("DNS:localhost,IP:127.0.0.1"),
    );
    let (client, client_key) = openssl_self_signed(&dir, "self-client", "echo client", None);
    let server = Server::start(&[
        "--proto",
        "quic",
        "-l",
        ":0",
        "--cert",
        &cert,
        "--key",
        &key,
        "--client-ca",
        &client,
    ]);
    let url = format!("quic://localhost:{}", server.port());
    let ok = connect(
        &[
            "--ca",
            &cert,
            "--cert",
            &client,
            "--key",
            &client_key,
            "-m",
            "both self-signed",
            &url,
        ],
        b"",
    );
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout, b"both self-signed\n");
    let (stranger, stranger_key) = openssl_self_signed(&dir, "stranger", "localhost", None);
    connect(
        &[
            "--ca",
            &stranger,
            "--cert",
            &client,
            "--key",
            &client_key,
            "-m",
            "x",
            &url,
        ],
        b"",
    )
    .assert_error(1, &["CA:TRUE", "not one of the certificates in"]);
    connect(
        &[
            "--ca",
            &cert,
            "--cert",
            &stranger,
            "--key",
            &stranger_key,
            "-m",
            "x",
            &url,
        ],
        b"",
    )
    .assert_error(1, &["the server rejected this client's certificate"]);
}

#[test]
fn the_summary_counts_failed_handshakes_by_cause() {
    let dir = certs();
    let ca = dir.file("ca.pem");
    let server = quic_server(&dir, ":0", &["--client-ca", &ca]);
    let url = format!("quic://localhost:{}", server.port());
    connect(&["-m", "x", &url], b"").assert_error(1, &["not issued by a CA this client trusts"]);
    connect(&["--ca", &ca, "-m", "x", &url], b"")
        .assert_error(1, &["the server requires a client certificate"]);
    let (cert, key) = (dir.file("client.pem"), dir.file("client-key.pem"));
    let ok = connect(
        &[
            "--ca", &ca, "--cert", &cert, "--key", &key, "-m", "ok", &url,
        ],
        b"",
    );
    assert_eq!(ok.stdout, b"ok\n", "{}", ok.stderr);
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:#?}");
    let summary = summary_line(&lines);
    assert!(
        summary.ends_with(
            "3 connections, 1 message, 3 bytes in, 3 bytes out, 0 errors, 2 failed handshakes \
             (1 no client certificate, 1 untrusted certificate)"
        ),
        "{summary}"
    );
}

#[test]
fn quic_listens_from_a_url_next_to_other_transports() {
    let server = Server::start_n(&["-l", "tcp://127.0.0.1:0", "-l", "quic://127.0.0.1:0"], 2);
    assert!(
        server.urls[1].starts_with("quic://127.0.0.1:"),
        "{:?}",
        server.urls
    );
}

#[test]
fn sslkeylogfile_is_honoured_with_a_warning_on_both_sides() {
    for proto in ["tls", "quic"] {
        let dir = certs();
        let (server_log, client_log) = (dir.join("server-keys.log"), dir.join("client-keys.log"));
        let mut cmd = echotool();
        cmd.env("SSLKEYLOGFILE", &server_log).args([
            "serve",
            "--proto",
            proto,
            "-l",
            ":0",
            "--cert",
            &dir.file("server.pem"),
            "--key",
            &dir.file("server-key.pem"),
        ]);
        let mut server = Running::spawn(cmd);
        server.wait_for_line("SSLKEYLOGFILE is set");
        let url = server.listening_urls(1)[0].replace("127.0.0.1", "localhost");
        let mut client = echotool();
        client.env("SSLKEYLOGFILE", &client_log).args([
            "connect",
            "--ca",
            &dir.file("ca.pem"),
            "-m",
            "secret",
            &url,
        ]);
        let out = run(client, b"");
        assert_eq!(out.stdout, b"secret\n", "{proto}: {}", out.stderr);
        assert_eq!(
            out.stderr.matches("SSLKEYLOGFILE is set").count(),
            1,
            "{proto}: {}",
            out.stderr
        );
        for log in [&client_log, &server_log] {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            assert!(
                text.contains("CLIENT_TRAFFIC_SECRET_0"),
                "{proto}: {} has {text:?}",
                log.display()
            );
        }
    }
}

/// RFC 9000 §8.1: before a client's address is validated, the server sends at most three times
/// what it received from it, probes included, or QUIC amplifies spoofed traffic. One real
/// client Initial (aioquic's) from an address that never answers, as a spoofed source would:
/// quinn 0.11.19 as published sent 1 200 + 222 at once and two 1 200-byte probes a second
/// later, 3 822 bytes (3.19×); vendor/quinn-proto carries the fix.
#[test]
fn an_address_that_never_answers_gets_at_most_three_times_what_it_sent() {
    require_python_module("aioquic");
    let dir = certs();
    // The ephemeral self-signed certificate, and a chain from `echotool certs` (a larger first
    // flight), each from two source addresses.
    let (ephemeral, _pin) = ephemeral("127.0.0.1:0");
    let chained = quic_server(&dir, "127.0.0.1:0", &[]);
    let mut runs = Vec::new();
    for server in [&ephemeral, &chained] {
        for source in ["127.0.0.1", "127.0.0.7"] {
            let mut peer = python();
            peer.args([AMPLIFICATION, "127.0.0.1", &server.port().to_string()])
                // The excess, when there was one, came with the first probe, one second in;
                // 2.5 s of silence after the last datagram is past the next probe's time.
                .args(["--source", source, "--quiet", "2.5", "--window", "10"]);
            runs.push((source, thread::spawn(move || run(peer, b""))));
        }
    }
    for (source, run) in runs {
        let out = run.join().unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        let report = String::from_utf8_lossy(&out.stdout);
        let sent = json_number(&report, "\"sent\": ");
        let received = json_number(&report, "\"received\": ");
        assert!(sent >= 1200, "the Initial was {sent} bytes: {report}");
        // The server did answer: the test would pass trivially otherwise.
        assert!(received >= 1200, "from {source}: {report}");
        assert!(
            received <= 3 * sent,
            "from {source}: the server sent {received} bytes for {sent} received ({:.2}×): {}",
            received as f64 / sent as f64,
            report
        );
    }
}

const AMPLIFICATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/peers/quic_amplification.py"
);

/// The number after `key` in the peer's one-line JSON.
fn json_number(json: &str, key: &str) -> u64 {
    let at = json
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + key.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key} in {json}"))
}
