//! WebSocket, ws:// and wss://, against implementations that are not ours: Python's
//! `websockets` as the client of `echotool serve` and as the server of `echotool connect`,
//! curl for the plain HTTP requests a listener refuses or answers with its page, and headless
//! Chromium typing a line into that page.

mod common;

use common::*;

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");

/// Python's websockets as a client: every case of the protocol the server must get right,
/// one line of output per case, the whole run bounded.
const CHECKS: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

url, ca, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
kw = dict(compression=None, proxy=None, max_size=None, open_timeout=10)
if url.startswith("wss://"):
    kw.update(ssl=ssl.create_default_context(cafile=ca), server_hostname="localhost")

async def expect_1009(message, how):
    async with connect(url, **kw) as ws:
        try:
            await ws.send(message)
            await ws.recv()
            raise SystemExit(f"{how}: echoed, not refused")
        except ConnectionClosed as e:
            assert e.rcvd is not None, f"{how}: closed without a close frame"
            print(f"{how}: close {e.rcvd.code} {e.rcvd.reason}")

async def main():
    async with connect(url, **kw) as ws:
        await ws.send("héllo ✓")
        r = await ws.recv()
        assert isinstance(r, str) and r == "héllo ✓", repr(r)
        print("text stays text")
        await ws.send(b"\x00\xff\x80")
        r = await ws.recv()
        assert isinstance(r, bytes) and r == b"\x00\xff\x80", repr(r)
        print("binary stays binary")
        await asyncio.wait_for(await ws.ping(b"are you there"), 5)
        print("ping answered with pong")
        await ws.send(["frag", "mented ", "ünï", "code"])
        r = await ws.recv()
        assert r == "fragmented ünïcode", repr(r)
        await ws.send([b"ab", b"cd", b"ef"])
        r = await ws.recv()
        assert r == b"abcdef", repr(r)
        print("fragments reassembled, type kept")
        await ws.send(b"z" * limit)
        assert await ws.recv() == b"z" * limit
        print("a message of exactly the limit echoed")
        await ws.close(4001, "bye")
        print(f"close echoed: {ws.protocol.close_rcvd.code}")
    await expect_1009(b"x" * (limit + 1), "one frame above the limit")
    await expect_1009([b"y" * 1024] * (limit // 1024 + 1), "fragments above the limit")

asyncio.run(asyncio.wait_for(main(), 30))
"#;

/// Runs [`CHECKS`] against `url` and returns its lines.
fn python_checks(url: &str, ca: &str, limit: usize) -> String {
    require_python_module("websockets");
    let mut cmd = python();
    cmd.args(["-c", CHECKS, url, ca, &limit.to_string()]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    String::from_utf8(out.stdout).unwrap()
}

const EXPECTED_CHECKS: &str = "text stays text\n\
    binary stays binary\n\
    ping answered with pong\n\
    fragments reassembled, type kept\n\
    a message of exactly the limit echoed\n\
    close echoed: 4001\n\
    one frame above the limit: close 1009 max length: 65536\n\
    fragments above the limit: close 1009 max length: 65536\n";

#[test]
fn python_websockets_gets_every_message_back_with_its_type_from_echotool_ws() {
    let server = Server::start(&["--proto", "ws", "--ws-max-message", "64K", "-v", "-l", ":0"]);
    assert!(
        server.url().starts_with("ws://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert_eq!(python_checks(server.url(), "", 65536), EXPECTED_CHECKS);
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:#?}");
    let summary = summary_line(&lines);
    // The two oversized messages are the connections' errors; nothing else failed.
    assert!(summary.contains("2 errors"), "{summary}");
    assert!(
        lines.iter().any(|l| l.contains("upgraded to WebSocket")),
        "-v logs the upgrade: {lines:#?}"
    );
}

#[test]
fn python_websockets_gets_the_same_from_echotool_wss_with_the_tls_certificates() {
    let certs = TempDir::new("ws").with_certs();
    let (cert, key) = (certs.file("server.pem"), certs.file("server-key.pem"));
    let server = Server::start(&[
        "--proto",
        "wss",
        "--cert",
        &cert,
        "--key",
        &key,
        "--ws-max-message",
        "64K",
        "-l",
        "127.0.0.1:0/echo",
    ]);
    let url = server.url().replace("127.0.0.1", "localhost");
    assert!(
        url.starts_with("wss://localhost:") && url.ends_with("/echo"),
        "{url}"
    );
    assert_eq!(
        python_checks(&url, &certs.file("ca.pem"), 65536),
        EXPECTED_CHECKS
    );
    server.stop();
}

/// Python's websockets as the server (`tests/peers/ws_echo.py`).
fn python_server(extra: &[&str]) -> Running {
    require_python_module("websockets");
    let mut cmd = python();
    cmd.arg(format!("{PEERS}/ws_echo.py"))
        .arg("server")
        .args(extra);
    Running::spawn(cmd)
}

fn listening(peer: &mut Running) -> String {
    peer.listening_urls(1).remove(0)
}

#[test]
fn echotool_connect_talks_to_python_websockets_over_ws_and_wss() {
    let mut peer = python_server(&[]);
    let url = listening(&mut peer);
    // Typed lines go as text; the peer echoes each with its type, and the client checks it.
    let lines = connect(&["--mode", "lines", &url], "one\ntwo ✓\n".as_bytes());
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, "one\ntwo ✓\n".as_bytes());
    // Bytes that are not UTF-8 go as binary messages, piped.
    let data = random_bytes(200_000, 18);
    let piped = connect(&["--mode", "pipe", &url], &data);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);

    let certs = TempDir::new("ws").with_certs();
    let (cert, key) = (certs.file("server.pem"), certs.file("server-key.pem"));
    let mut secure = python_server(&["--cert", &cert, "--key", &key]);
    let url = listening(&mut secure).replace("127.0.0.1", "localhost");
    let ca = certs.file("ca.pem");
    let v = connect(&["-v", "--ca", &ca, "-m", "hi", &url], b"");
    assert!(v.status.success(), "{}", v.stderr);
    assert_eq!(v.stdout, b"hi\n");
    assert!(v.stderr.contains("TLS version TLS 1.3"), "{}", v.stderr);
    assert!(
        v.stderr.contains("WebSocket upgrade of / accepted"),
        "{}",
        v.stderr
    );
    // Not trusted: the words of tls, not of WebSocket. (A generous timeout: the first TLS
    // handshake of a process seeds aws-lc's generator, which is slow on a busy machine.)
    connect(&["--timeout", "15s", "-m", "hi", &url], b"")
        .assert_error(1, &["not issued by a CA this client trusts"]);
}

/// curl's status line, headers and body for `args` (a URL among them).
fn curl(args: &[&str]) -> (u16, String, String) {
    require("curl");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--noproxy", "*", "-D", "-"])
        .args(args);
    let out = run(cmd, b"");
    assert!(out.status.success(), "curl: {}", out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_string(), body.to_string())
}

#[test]
fn plain_http_gets_the_page_at_the_path_and_a_4xx_that_says_what_to_do_elsewhere() {
    let server = Server::start(&["--proto", "ws", "-l", "127.0.0.1:0/echo"]);
    let base = format!("http://{}", server.addr().trim_end_matches("/echo"));
    let (code, _, body) = curl(&[&format!("{base}/echo")]);
    assert_eq!(code, 200);
    assert!(body.contains("<title>echotool</title>"), "{body}");
    let (code, _, body) = curl(&[&format!("{base}/")]);
    assert_eq!(code, 404);
    assert_eq!(
        body,
        "nothing at /: the WebSocket echo is at /echo; open that in a browser for the page, \
         or connect a WebSocket client to it\n"
    );
    let (code, head, body) = curl(&["-X", "POST", "-d", "x", &format!("{base}/echo")]);
    assert_eq!(code, 405);
    assert!(head.contains("Allow: GET"), "{head}");
    assert!(body.starts_with("POST is not served here"), "{body}");
    // echotool's own client reads the refusal out.
    let nowhere = format!("ws://{}/nowhere", base.trim_start_matches("http://"));
    connect(&["-m", "hi", &nowhere], b"").assert_error(
        1,
        &["the server answered HTTP 404 Not Found: nothing at /nowhere"],
    );
    let (status, lines) = server.stop();
    assert!(status.success());
    let summary = summary_line(&lines);
    assert!(summary.contains("3 failed handshakes"), "{summary}");
}

#[test]
fn chromium_types_a_line_into_the_page_and_reads_its_echo_and_round_trip_time() {
    require_python_module("websockets");
    assert!(
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .any(|p| std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))),
        "chromium is not installed; run the test suite with scripts/test.sh, which installs it"
    );
    let server = Server::start(&["--proto", "ws", "-l", ":0"]);
    let mut cmd = python();
    cmd.arg(format!("{PEERS}/browser.py"))
        .arg(format!("http://{}/", server.addr()))
        .args([
            "--line",
            "hello from chromium",
            "--expect",
            "← hello from chromium",
        ])
        .args([
            "--ready",
            "document.getElementById('state').textContent === 'open'",
            "--timeout",
            "15",
        ]);
    let out = run(cmd, b"");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}; {}",
            String::from_utf8_lossy(&out.stdout),
            out.stderr
        )
    });
    assert_eq!(result["ok"], true, "{result:#}");
    let shown = result["output"].as_str().unwrap();
    let echo = shown
        .lines()
        .find(|l| l.starts_with("← hello from chromium"))
        .unwrap_or_else(|| panic!("no echo in {shown:?}"));
    let rtt: f64 = echo
        .trim_start_matches("← hello from chromium")
        .trim()
        .trim_end_matches("ms")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("no round-trip time in {echo:?}: {e}"));
    assert!(rtt > 0.0 && rtt < 15_000.0, "{echo}");
    server.stop();
}

#[test]
fn bench_measures_ws_and_wss_and_names_the_round_trips_of_their_setups() {
    let mut cmd = echotool();
    cmd.args([
        "bench",
        "--proto",
        "ws,wss",
        "--scenario",
        "latency,setup",
        "--duration",
        "1s",
        "--warmup",
        "100ms",
        "--json",
    ]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = row_names(&report);
    for want in [
        "ws latency",
        "ws setup/tcp+upgrade",
        "wss latency",
        "wss setup/tls+upgrade",
        "wss setup/resumed+upgrade",
    ] {
        assert!(
            rows.iter().any(|r| r == want),
            "{want} missing in {rows:#?}"
        );
    }
    for row in report["rows"].as_array().unwrap() {
        let f = &row["median"];
        assert!(f["messages"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(
            (&f["errors"], &f["mismatches"]),
            (&0.into(), &0.into()),
            "{row}"
        );
    }
    for server in report["servers"].as_array().unwrap() {
        assert_eq!(server["errors"], 0, "{server}");
        assert_eq!(server["failed_handshakes"], 0, "{server}");
    }
}
