//! `echotool serve --metrics ADDR` as Prometheus and Kubernetes see it: the exposition fetched
//! over HTTP and parsed by the reference parser (Python's `prometheus_client`, from the test
//! peers' virtual environment), counters that add up exactly to what real clients did and to the
//! summary, and `/healthz` that is 200 while serving and 503 while draining.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Fetches a URL with Python's urllib (proxies off: loopback only) and, for the metrics, parses
/// the body with prometheus_client's parser for the format asked for. Prints one JSON object:
/// status, content type, body and the parsed families.
const FETCH: &str = r#"
import json, sys, urllib.error, urllib.request
url, mode = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url)
if mode == "openmetrics":
    request.add_header("Accept", "application/openmetrics-text; version=1.0.0")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(request, timeout=10) as response:
        status, headers, body = response.status, response.headers, response.read().decode()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, e.headers, e.read().decode()
out = {"status": status, "content_type": headers.get("Content-Type"), "body": body}
if mode != "plain" and status == 200:
    if mode == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    out["families"] = [
        {"name": f.name, "type": f.type,
         "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
        for f in text_string_to_metric_families(body)
    ]
print(json.dumps(out))
"#;

/// What one fetch returned.
struct Fetched {
    status: u64,
    content_type: String,
    body: String,
    /// The parsed families, for the metrics.
    families: Vec<Value>,
}

impl Fetched {
    /// The value of the sample `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let samples = self
            .families
            .iter()
            .flat_map(|f| f["samples"].as_array().unwrap());
        let mut found = samples.filter(|s| {
            let have = s["labels"].as_object().unwrap();
            s["name"] == name
                && have.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| have.get(*k) == Some(&Value::from(*v)))
        });
        let value = found.next()?["value"].as_f64();
        assert!(
            found.next().is_none(),
            "two {name}{labels:?} in {}",
            self.body
        );
        value
    }

    /// [`Fetched::value`] of one listener's sample, which must be there.
    fn of(&self, name: &str, listener: &str, extra: &[(&str, &str)]) -> f64 {
        let protocol = listener.split_once("://").unwrap().0;
        let mut labels = vec![("listener", listener), ("protocol", protocol)];
        labels.extend_from_slice(extra);
        self.value(name, &labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in {}", self.body))
    }

    /// The type the parser gave the family `name`.
    fn family_type(&self, name: &str) -> &str {
        let family = self.families.iter().find(|f| f["name"] == name);
        family.and_then(|f| f["type"].as_str()).unwrap_or("missing")
    }
}

/// Fetches `url` in `mode`: `plain` (no parsing), `prometheus` or `openmetrics`.
fn fetch(url: &str, mode: &str) -> Fetched {
    let mut cmd = python();
    cmd.args(["-c", FETCH, url, mode]);
    let out = run(cmd, b"");
    assert!(
        out.status.success(),
        "fetching {url} failed; the tests need prometheus_client from scripts/test-peers.txt \
         (run scripts/test.sh, or set ECHOTOOL_TEST_PYTHON to a Python that has it): {}",
        out.stderr
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON from the fetch");
    Fetched {
        status: json["status"].as_u64().unwrap(),
        content_type: json["content_type"].as_str().unwrap_or("").to_string(),
        body: json["body"].as_str().unwrap().to_string(),
        families: json["families"].as_array().cloned().unwrap_or_default(),
    }
}

/// The metrics URL from the server's `metrics on URL` line.
fn metrics_url(proc: &mut Running) -> String {
    let line = proc.wait_for_line("metrics on ");
    let url = line.split("metrics on ").nth(1).unwrap().trim();
    assert!(
        url.starts_with("http://") && url.ends_with("/metrics"),
        "{line}"
    );
    url.to_string()
}

fn healthz(metrics: &str) -> String {
    metrics.replace("/metrics", "/healthz")
}

/// Scrapes until no stream connection is open any more (a client has exited before the server
/// has closed its side), bounded by [`PATIENCE`].
fn scrape_settled(url: &str, streams: &[&str]) -> Fetched {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let scrape = fetch(url, "prometheus");
        let open = |l: &str| scrape.of("echotool_connections_open", l, &[]);
        if streams.iter().all(|l| open(l) == 0.0) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "connections still open after {PATIENCE:?}: {}",
            scrape.body
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `payload` on `stream` and reads its echo back.
fn echo_on(stream: &mut TcpStream, payload: &[u8]) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(payload).unwrap();
    let mut echo = vec![0; payload.len()];
    stream.read_exact(&mut echo).unwrap();
    assert_eq!(echo, payload);
}

/// A plaintext client to a TLS port: its bytes are no TLS record, the handshake fails, and the
/// server closes the connection.
fn plaintext_to(addr: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"hello in plaintext\n").unwrap();
    let mut rest = Vec::new();
    // The server answers with an alert or nothing, then closes: either way this ends.
    let _ = stream.read_to_end(&mut rest);
}

/// Sends one datagram to `addr` from the echo port, 7, when this test may bind it (root);
/// returns whether it did.
fn datagram_from_port_7(addr: &str) -> bool {
    match UdpSocket::bind("127.0.0.1:7") {
        Ok(socket) => {
            socket.send_to(b"loop me", addr).unwrap();
            true
        }
        Err(e) => {
            eprintln!("not sending from port 7: cannot bind 127.0.0.1:7 here ({e})");
            false
        }
    }
}

fn addr_of(url: &str) -> &str {
    url.split_once("://").unwrap().1
}

#[test]
fn every_counter_adds_up_to_what_the_clients_did() {
    let mut server = Server::start_n(
        &[
            "-l",
            "tcp://127.0.0.1:0",
            "-l",
            "udp://127.0.0.1:0",
            "-l",
            "tls://127.0.0.1:0",
            // One UDP socket: datagrams are handled in the order they arrive.
            "--workers",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ],
        3,
    );
    let (tcp, udp, tls) = (
        server.urls[0].clone(),
        server.urls[1].clone(),
        server.urls[2].clone(),
    );
    let metrics = metrics_url(&mut server.proc);
    let health = fetch(&healthz(&metrics), "plain");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // Scraped while a client is connected.
    let mut held = TcpStream::connect(addr_of(&tcp)).unwrap();
    echo_on(&mut held, b"held\n");
    let during = fetch(&metrics, "prometheus");
    assert_eq!(during.status, 200);
    assert!(
        during.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        during.content_type
    );
    assert_eq!(during.of("echotool_connections_open", &tcp, &[]), 1.0);
    assert_eq!(during.of("echotool_messages_total", &tcp, &[]), 1.0);
    drop(held);

    // The clients: 3 + 1 TCP echoes, 2 UDP, 1 TLS, a plaintext client to the TLS port, and
    // a datagram from a reflection port sent before the UDP client's, so its echoes prove the
    // drop was handled.
    let out = connect(&["-m", "hello", "-c", "3", &tcp], b"");
    assert_eq!(out.stdout, b"hello\n".repeat(3), "{}", out.stderr);
    let reflected = datagram_from_port_7(addr_of(&udp));
    let out = connect(&["-m", "ping", "-c", "2", &udp], b"");
    assert_eq!(out.stdout, b"ping\n".repeat(2), "{}", out.stderr);
    let out = connect(&["--insecure", "-m", "secure", &tls], b"");
    assert_eq!(out.stdout, b"secure\n", "{}", out.stderr);
    plaintext_to(addr_of(&tls));

    let s = scrape_settled(&metrics, &[&tcp, &tls]);
    let reflected_bytes = if reflected { 7.0 } else { 0.0 };
    let want = [
        ("echotool_connections_accepted_total", &tcp, 2.0),
        ("echotool_messages_total", &tcp, 4.0),
        ("echotool_received_bytes_total", &tcp, 5.0 + 18.0),
        ("echotool_sent_bytes_total", &tcp, 5.0 + 18.0),
        ("echotool_errors_total", &tcp, 0.0),
        ("echotool_connections_refused_total", &tcp, 0.0),
        ("echotool_messages_total", &udp, 2.0),
        (
            "echotool_received_bytes_total",
            &udp,
            10.0 + reflected_bytes,
        ),
        ("echotool_sent_bytes_total", &udp, 10.0),
        ("echotool_errors_total", &udp, 0.0),
        ("echotool_connections_accepted_total", &tls, 2.0),
        ("echotool_messages_total", &tls, 1.0),
        ("echotool_received_bytes_total", &tls, 7.0),
        ("echotool_sent_bytes_total", &tls, 7.0),
        ("echotool_errors_total", &tls, 0.0),
    ];
    for (name, listener, value) in want {
        assert_eq!(s.of(name, listener, &[]), value, "{name} of {listener}");
    }
    let failed = [("cause", "not TLS")];
    assert_eq!(s.of("echotool_handshakes_failed_total", &tls, &failed), 1.0);
    let dropped = |reason| {
        s.of(
            "echotool_datagrams_dropped_total",
            &udp,
            &[("reason", reason)],
        )
    };
    assert_eq!(dropped("reflection"), if reflected { 1.0 } else { 0.0 });
    assert_eq!(dropped("rate_limit"), 0.0);
    // Datagram listeners have no connections, stream listeners drop no datagrams.
    assert_eq!(
        s.value(
            "echotool_connections_open",
            &[("listener", &udp), ("protocol", "udp")]
        ),
        None
    );
    assert_eq!(s.family_type("echotool_messages"), "counter");
    assert_eq!(s.family_type("echotool_connections_open"), "gauge");
    let build = s
        .families
        .iter()
        .find(|f| f["name"] == "echotool_build_info");
    let build = &build.expect("build info")["samples"][0];
    assert_eq!(build["labels"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build["value"], 1.0);
    for label in ["rustls", "quinn", "target"] {
        assert!(
            !build["labels"][label].as_str().unwrap().is_empty(),
            "{label}"
        );
    }

    // The same numbers in OpenMetrics, through its stricter parser.
    let open = fetch(&metrics, "openmetrics");
    assert!(
        open.content_type
            .starts_with("application/openmetrics-text")
    );
    assert!(open.body.ends_with("# EOF\n"));
    assert_eq!(open.of("echotool_messages_total", &tcp, &[]), 4.0);
    assert_eq!(open.family_type("echotool_build"), "info");

    // And the summary says the same.
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:#?}");
    let summary = |url: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("summary {url}:")));
        line.unwrap_or_else(|| panic!("no summary of {url} in {lines:#?}"))
            .clone()
    };
    assert!(
        summary(&tcp).ends_with(": 2 connections, 4 messages, 23 bytes in, 23 bytes out, 0 errors"),
        "{}",
        summary(&tcp)
    );
    assert!(
        summary(&tls).ends_with(
            ": 2 connections, 1 message, 7 bytes in, 7 bytes out, 0 errors, 1 failed handshake \
             (1 not TLS)"
        ),
        "{}",
        summary(&tls)
    );
    let udp_want = match reflected {
        true => {
            ": 3 datagrams in, 2 out, 17 bytes in, 10 bytes out, 0 errors, 1 dropped (1 from \
                 a reflection port)"
        }
        false => ": 2 datagrams in, 2 out, 10 bytes in, 10 bytes out, 0 errors",
    };
    assert!(summary(&udp).ends_with(udp_want), "{}", summary(&udp));
}

/// A client that sends without reading, so that its echo cannot finish and draining waits.
fn hog(addr: &str) -> TcpStream {
    let hog = TcpStream::connect(addr).unwrap();
    let _ = fill_until_the_server_stops_reading(&hog);
    hog
}

#[test]
fn healthz_turns_503_while_draining_and_sigterm_still_exits_zero() {
    // The deployment's command: a config file with its own [metrics], and --metrics over it.
    let dir = std::env::temp_dir().join(format!("echotool-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("echotool.toml");
    std::fs::write(
        &file,
        "[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\ndrain-timeout = \"15s\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut server = Server::start(&[
        "--config",
        file.to_str().unwrap(),
        "--metrics",
        "127.0.0.2:0",
    ]);
    let metrics = metrics_url(&mut server.proc);
    assert!(metrics.starts_with("http://127.0.0.2:"), "{metrics}");
    assert_eq!(fetch(&healthz(&metrics), "plain").status, 200);

    let hog = hog(&server.addr());
    server.proc.signal(libc::SIGTERM);
    server.proc.wait_for_line("finishing in-flight echoes");
    let health = fetch(&healthz(&metrics), "plain");
    assert_eq!((health.status, health.body.as_str()), (503, "stopping\n"));
    let scrape = fetch(&metrics, "prometheus");
    assert_eq!(scrape.status, 200, "scrapes go on while draining");
    assert_eq!(
        scrape.of("echotool_connections_open", server.url(), &[]),
        1.0
    );

    drop(hog);
    let (status, lines) = server.proc.wait();
    assert!(status.success(), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("summary tcp://")),
        "{lines:#?}"
    );
    // Gone with the process.
    assert!(TcpStream::connect(addr_of(&metrics).trim_end_matches("/metrics")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_metrics_line_is_json_with_a_field_of_its_own() {
    let dir = std::env::temp_dir().join(format!("echotool-metrics-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("echotool.toml");
    std::fs::write(
        &file,
        "[[listener]]\nlisten = \"udp://127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = echotool();
    cmd.args(["--log-format", "json", "serve", "--config"])
        .arg(&file);
    let mut proc = Running::spawn(cmd);
    let line = proc.wait_for_line("metrics on ");
    let event: Value = serde_json::from_str(&line).expect("a JSON line");
    let url = event["metrics"]
        .as_str()
        .expect("a metrics field")
        .to_string();
    assert_eq!(event["message"], format!("metrics on {url}"));
    assert_eq!(fetch(&healthz(&url), "plain").status, 200);
    proc.signal(libc::SIGINT);
    let (status, _) = proc.wait();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_metrics_port_in_use_is_refused_before_any_listener_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = echotool();
    cmd.args(["serve", "-l", "127.0.0.1:0", "--metrics", &addr]);
    let out = run(cmd, b"");
    out.assert_error(
        1,
        &[
            &format!("cannot serve metrics on {addr}"),
            "already in use",
            "another port",
        ],
    );
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
}
