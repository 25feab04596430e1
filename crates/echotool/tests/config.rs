//! `echotool serve --config`: the example config runs every transport side by side, flags
//! override the file, and every mistake in a file is pointed at by file, line and key.

mod common;

use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use common::*;

const EXAMPLE: &str = include_str!("../../../config/echotool.toml");

/// Writes `text` to a fresh file and returns its path.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("echotool-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn serve_config(path: &Path, extra: &[&str], listeners: usize) -> Server {
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start_n(&args, listeners)
}

fn check(text: &str) -> Outcome {
    let path = config_file("check.toml", text);
    let mut cmd = echotool();
    cmd.args(["config", "check", path.to_str().unwrap()]);
    run(cmd, b"")
}

#[test]
fn the_example_config_echoes_on_all_five_endpoints() {
    require("socat");
    require("openssl");
    // The example as shipped, on free ports so tests can run in parallel.
    let text = EXAMPLE
        .replace(":5555\"", ":0\"")
        .replace(":5556\"", ":0\"");
    let path = config_file("example.toml", &text);
    let mut server = serve_config(&path, &[], 5);
    let urls = server.urls.clone();
    assert!(urls[0].starts_with("tcp://127.0.0.1:"), "{urls:?}");
    assert!(urls[1].starts_with("tcp6://[::1]:"), "{urls:?}");
    assert!(urls[2].starts_with("udp://127.0.0.1:"), "{urls:?}");
    assert!(urls[3].starts_with("tls://127.0.0.1:"), "{urls:?}");
    assert!(urls[4].starts_with("quic://127.0.0.1:"), "{urls:?}");
    let port = |i: usize| urls[i].rsplit(':').next().unwrap().to_string();

    let tcp = sh(
        &format!("socat -t 5 - TCP:127.0.0.1:{}", port(0)),
        b"over tcp\n",
    );
    assert_eq!(tcp.stdout, b"over tcp\n", "{}", tcp.stderr);
    let tcp6 = connect(&["-m", "over tcp6", &urls[1]], b"");
    assert_eq!(tcp6.stdout, b"over tcp6\n", "{}", tcp6.stderr);
    let udp = sh(
        &format!("socat -t 2 - UDP:127.0.0.1:{}", port(2)),
        b"over udp\n",
    );
    assert_eq!(udp.stdout, b"over udp\n", "{}", udp.stderr);

    let pin_line = server
        .proc
        .line_with("connect with: echotool connect --proto tls");
    let pin = pin_line
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap();
    let tls = connect(&["--pin", pin, "-m", "over tls", &urls[3]], b"");
    assert_eq!(tls.stdout, b"over tls\n", "{}", tls.stderr);
    let quic_line = server
        .proc
        .wait_for_line("connect with: echotool connect --proto quic");
    let quic_pin = quic_line
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap();
    let quic = connect(&["--pin", quic_pin, "-m", "over quic", &urls[4]], b"");
    assert_eq!(quic.stdout, b"over quic\n", "{}", quic.stderr);
    let (line, stderr) = s_client_echo(port(3).parse().unwrap(), &[], "over openssl");
    assert_eq!(line, "over openssl\n", "{stderr}");

    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("summary ")).count(),
        5,
        "{lines:?}"
    );
}

#[test]
fn config_check_validates_the_example_without_binding() {
    // The example's ports may well be taken; checking must not care.
    let _holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = echotool();
    cmd.args([
        "config",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/echotool.toml"),
    ]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK, 5 listeners: tcp://127.0.0.1:5555, tcp6://[::1]:5555, udp://127.0.0.1:5555, tls://127.0.0.1:5556, quic://127.0.0.1:5556"), "{stdout}");
}

#[test]
fn every_kind_of_config_error_names_file_line_and_key() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[defaults]\nmax-conns = \"many\"\n",
            &[
                "check.toml, line 2, key 'max-conns': found string \"many\", expected a whole number",
            ],
        ),
        (
            "[defaults]\nidle-timeout = \"soon\"\n",
            &["line 2, key 'idle-timeout': found string \"soon\", expected a duration"],
        ),
        (
            "[defaults]\nrecv-buffer = \"lots\"\n",
            &["line 2, key 'recv-buffer': found string \"lots\", expected a size"],
        ),
        (
            "[defaults]\non-limit = \"drop\"\n",
            &["line 2, key 'on-limit'", "expected \"wait\" or \"refuse\""],
        ),
        (
            "[defaults]\nnodelay = \"yes\"\n",
            &["line 2, key 'nodelay': found string \"yes\", expected a boolean"],
        ),
        (
            "[[listener]]\nlisten = \"tcp://:0\"\nmax-conn = 5\n",
            &[
                "line 3, key 'max-conn': unknown key 'max-conn', expected one of",
                "'max-conns'",
            ],
        ),
        (
            "[listeners]\n",
            &["line 1, key 'listeners': unknown key 'listeners'"],
        ),
        (
            "[log]\nlevel = \"loud\"\n",
            &["line 2, key 'level': found 'loud', expected one of 'error'"],
        ),
        (
            "[[listener]]\nlisten = \"sctp://127.0.0.1:0\"\n",
            &["line 2, key 'listen': unknown protocol 'sctp'"],
        ),
        (
            "[[listener]]\nlisten = \"tcp://127.0.0.1:99999\"\n",
            &["line 2, key 'listen'", "is not a valid address"],
        ),
        (
            "[[listener]]\nworkers = 2\n",
            &["line 1, key 'listener'", "has no 'listen' key"],
        ),
        (
            "[defaults]\nlisten = \"tcp://:0\"\n",
            &["line 2, key 'listen'", "belongs in a [[listener]] table"],
        ),
        (
            "[[listener]]\nlisten = \"tls://:0\"\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n",
            &[
                "line 3, key 'cert': cannot read the certificate file",
                "missing.pem: no such file",
            ],
        ),
        ("[[listener]\nlisten = 1\n", &["line 1"]),
        ("", &["no listeners: add a [[listener]] table"]),
    ];
    for (text, needles) in cases {
        let out = check(text);
        out.assert_error(2, needles);
        assert!(out.stderr.contains("check.toml"), "{text}: {}", out.stderr);
    }
    let mut cmd = echotool();
    cmd.args(["serve", "--config", "/nonexistent/echotool.toml"]);
    run(cmd, b"").assert_error(
        2,
        &["/nonexistent/echotool.toml: cannot read the config file: no such file"],
    );
}

#[test]
fn flags_override_the_file() {
    // The file refuses beyond one connection; the flag raises the limit to two.
    let path = config_file(
        "override.toml",
        "[defaults]\nmax-conns = 1\non-limit = \"refuse\"\n[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n",
    );
    let server = serve_config(&path, &["--max-conns", "2"], 1);
    let addr = server.socket_addr();
    let open = |text: &[u8]| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(text).unwrap();
        let mut buf = [0u8; 16];
        let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
        (s, buf[..n].to_vec())
    };
    let (_a, first) = open(b"one");
    let (_b, second) = open(b"two");
    let (_c, third) = open(b"three");
    assert_eq!(first, b"one");
    assert_eq!(second, b"two", "--max-conns 2 overrides max-conns = 1");
    assert_eq!(third, b"", "the file's on-limit = refuse still applies");

    // -l replaces the file's listeners.
    let replaced = serve_config(&path, &["-l", "udp://127.0.0.1:0"], 1);
    assert!(replaced.url().starts_with("udp://"), "{}", replaced.url());
}

#[test]
fn a_listener_that_cannot_bind_stops_the_start_and_is_named() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!(
        "[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n[[listener]]\nlisten = \"udp://127.0.0.1:{port}\"\n"
    );
    let path = config_file("taken.toml", &text);
    let mut cmd = echotool();
    cmd.args(["serve", "--config", path.to_str().unwrap()]);
    let out = run(cmd, b"");
    out.assert_error(
        1,
        &[
            &format!("cannot listen on udp://127.0.0.1:{port}"),
            "already in use",
        ],
    );
    assert!(
        !out.stderr.contains("listening on"),
        "nothing announced: {}",
        out.stderr
    );
}
