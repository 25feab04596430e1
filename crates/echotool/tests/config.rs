//! `echotool serve --config`: the example config runs every transport side by side, flags
//! override the file, and every mistake in a file is pointed at by file, line and key, the
//! same by `config check` as by `serve --config`, before anything is bound.

mod common;

use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// The directory of [`config_file`], with `echotool certs` run into its `certs/` once, so
/// that files can say `cert = "certs/server.pem"`.
fn with_certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = config_file("certs.marker", "")
            .parent()
            .unwrap()
            .to_path_buf();
        let mut cmd = echotool();
        cmd.args([
            "certs",
            "--force",
            "--out",
            dir.join("certs").to_str().unwrap(),
        ]);
        let out = run(cmd, b"");
        assert!(out.status.success(), "{}", out.stderr);
        dir
    })
}

/// Writes `text` to a file of its own, so that tests running in parallel never share one.
fn unique_file(text: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    with_certs();
    config_file(
        &format!("case-{}.toml", N.fetch_add(1, Ordering::Relaxed)),
        text,
    )
}

/// `config check FILE` and `serve --config FILE` on the same bad file: both must refuse it
/// with the same error line and exit status 2, and serve must bind nothing.
fn refused_alike(text: &str, needles: &[&str]) -> String {
    let path = unique_file(text);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let mut check = echotool();
    check.args(["config", "check", path.to_str().unwrap()]);
    let checked = run(check, b"");
    let mut serve = echotool();
    serve.args(["serve", "--config", path.to_str().unwrap()]);
    let served = run(serve, b"");
    for out in [&checked, &served] {
        out.assert_error(2, needles);
        assert!(out.stderr.contains(&name), "{text}: {}", out.stderr);
        assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
    }
    assert_eq!(checked.stderr, served.stderr, "the same verdict for {text}");
    checked.stderr
}

/// `config check FILE` accepts the file.
fn accepted(text: &str) -> String {
    let path = unique_file(text);
    let mut cmd = echotool();
    cmd.args(["config", "check", path.to_str().unwrap()]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{text}: {}", out.stderr);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `echotool serve ARGS`, expected to be refused with exit status 2 before binding anything.
fn serve_refused(args: &[&str], needles: &[&str]) {
    let mut cmd = echotool();
    cmd.arg("serve").args(args);
    let out = run(cmd, b"");
    out.assert_error(2, needles);
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
}

#[test]
fn the_example_config_echoes_on_all_seven_endpoints() {
    require("socat");
    require("openssl");
    // The example as shipped, on free ports so tests can run in parallel.
    let text = EXAMPLE
        .replace(":5555\"", ":0\"")
        .replace(":5556\"", ":0\"")
        .replace(":5557/echo\"", ":0/echo\"")
        .replace(":5558\"", ":0\"");
    let path = config_file("example.toml", &text);
    let mut server = serve_config(&path, &[], 7);
    let urls = server.urls.clone();
    assert!(urls[0].starts_with("tcp://127.0.0.1:"), "{urls:?}");
    assert!(urls[1].starts_with("tcp6://[::1]:"), "{urls:?}");
    assert!(urls[2].starts_with("udp://127.0.0.1:"), "{urls:?}");
    assert!(urls[3].starts_with("tls://127.0.0.1:"), "{urls:?}");
    assert!(urls[4].starts_with("quic://127.0.0.1:"), "{urls:?}");
    assert!(urls[5].starts_with("ws://127.0.0.1:"), "{urls:?}");
    assert!(urls[5].ends_with("/echo"), "{urls:?}");
    assert!(urls[6].starts_with("wss://127.0.0.1:"), "{urls:?}");
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
        .line_with("connect with: echotool connect --proto quic");
    let quic_pin = quic_line
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap();
    let quic = connect(&["--pin", quic_pin, "-m", "over quic", &urls[4]], b"");
    assert_eq!(quic.stdout, b"over quic\n", "{}", quic.stderr);
    let (line, stderr) = s_client_echo(port(3).parse().unwrap(), &[], "over openssl");
    assert_eq!(line, "over openssl\n", "{stderr}");
    let ws = connect(&["-m", "over ws", &urls[5]], b"");
    assert_eq!(ws.stdout, b"over ws\n", "{}", ws.stderr);

    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("summary ")).count(),
        7,
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
    assert!(stdout.contains("OK, 7 listeners: tcp://127.0.0.1:5555, tcp6://[::1]:5555, udp://127.0.0.1:5555, tls://127.0.0.1:5556, quic://127.0.0.1:5556, ws://127.0.0.1:5557/echo, wss://127.0.0.1:5558"), "{stdout}");
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

#[test]
fn listeners_that_cannot_bind_side_by_side_are_refused_before_binding() {
    // Each case: the file, the line of the later listener, its URL, the earlier one's URL and
    // line, and why.
    let cases: &[(&str, &[&str])] = &[
        (
            "[[listener]]\nlisten = \"tcp://127.0.0.1:5555\"\n\n[[listener]]\nlisten = \"127.0.0.1:5555\"\n",
            &[
                "line 5, key 'listen': tcp://127.0.0.1:5555 conflicts with tcp://127.0.0.1:5555 on line 2",
                "both need TCP port 5555 on 127.0.0.1",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tcp://0.0.0.0:5555\"\n[[listener]]\nlisten = \"tcp://127.0.0.1:5555\"\n",
            &[
                "line 4, key 'listen': tcp://127.0.0.1:5555 conflicts with tcp://0.0.0.0:5555 on line 2",
                "0.0.0.0 includes 127.0.0.1",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tcp://[::]:5555\"\n[[listener]]\nlisten = \"tls://127.0.0.1:5555\"\n",
            &[
                "line 4, key 'listen': tls://127.0.0.1:5555 conflicts with tcp://[::]:5555 on line 2",
                "[::] includes 127.0.0.1",
            ],
        ),
        (
            "[[listener]]\nlisten = \"udp://[::]:5555\"\n[[listener]]\nlisten = \"quic://127.0.0.1:5555\"\n",
            &[
                "quic://127.0.0.1:5555 conflicts with udp://[::]:5555 on line 2",
                "both need UDP port 5555",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tcp6://[::]:5555\"\n[[listener]]\nlisten = \"tcp://[::1]:5555\"\n",
            &[
                "tcp://[::1]:5555 conflicts with tcp6://[::]:5555 on line 2",
                "[::] includes [::1]",
            ],
        ),
        (
            "[[listener]]\nlisten = \"udp://localhost:5555\"\n[[listener]]\nlisten = \"udp://localhost:5555\"\n",
            &["both need UDP port 5555 on localhost"],
        ),
    ];
    for (text, needles) in cases {
        refused_alike(text, needles);
    }
    // Different kinds of socket, IPv6-only wildcards, different addresses and port 0 are fine.
    let fine = accepted(
        "[[listener]]\nlisten = \"tcp://0.0.0.0:5555\"\n[[listener]]\nlisten = \"udp://0.0.0.0:5555\"\n\
         [[listener]]\nlisten = \"tcp6://[::]:5555\"\n[[listener]]\nlisten = \"quic://127.0.0.1:5556\"\n\
         [[listener]]\nlisten = \"tls://127.0.0.1:5556\"\n[[listener]]\nlisten = \"tcp://127.0.0.2:5556\"\n\
         [[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n",
    );
    assert!(fine.contains("OK, 8 listeners"), "{fine}");
}

#[test]
fn listeners_that_share_a_port_number_lawfully_all_bind() {
    // TCP and UDP on one number, and IPv4 and IPv6 loopback on one number: serve binds them all.
    let port = free_tcp_port();
    let path = unique_file(&format!(
        "[[listener]]\nlisten = \"tcp://127.0.0.1:{port}\"\n[[listener]]\nlisten = \"udp://127.0.0.1:{port}\"\n\
         [[listener]]\nlisten = \"tcp6://[::1]:{port}\"\n"
    ));
    let server = serve_config(&path, &[], 3);
    assert_eq!(
        server.urls,
        [
            format!("tcp://127.0.0.1:{port}"),
            format!("udp://127.0.0.1:{port}"),
            format!("tcp6://[::1]:{port}"),
        ]
    );
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
}

#[test]
fn conflicting_listen_flags_are_refused_before_binding() {
    let port = free_tcp_port().to_string();
    let (tcp, tls) = (
        format!("tcp://127.0.0.1:{port}"),
        format!("tls://127.0.0.1:{port}"),
    );
    serve_refused(
        &["-l", &tcp, "-l", &tls],
        &[&format!(
            "{tls} conflicts with {tcp}: both need TCP port {port} on 127.0.0.1; give one of them another port"
        )],
    );
}

#[test]
fn a_port_held_by_another_process_fails_the_start_naming_file_and_line() {
    require("socat");
    let (_holder, port) = tcp_peer("socat", |p| {
        vec![
            format!("TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:cat".into(),
        ]
    });
    let path = unique_file(&format!(
        "# the first listener binds, the second cannot\n[[listener]]\nlisten = \"udp://127.0.0.1:0\"\n\n\
         [[listener]]\nlisten = \"tcp://127.0.0.1:{port}\"\n"
    ));
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut cmd = echotool();
    cmd.args(["serve", "--config", path.to_str().unwrap()]);
    let out = run(cmd, b"");
    out.assert_error(
        1,
        &[&format!(
            "{name}, line 6, key 'listen': cannot listen on tcp://127.0.0.1:{port}: the address is already in use"
        )],
    );
    assert!(!out.stderr.contains("listening on"), "{}", out.stderr);
    // config check binds nothing, so the held port does not concern it.
    let mut cmd = echotool();
    cmd.args(["config", "check", path.to_str().unwrap()]);
    assert!(run(cmd, b"").status.success());
}

#[test]
fn certificate_files_that_cannot_be_read_are_caught_whatever_the_protocol() {
    refused_alike(
        "[defaults]\ncert = \"missing.pem\"\n\n[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n",
        &[
            "line 2, key 'cert': cannot read the certificate file",
            "missing.pem: no such file",
        ],
    );
    refused_alike(
        "[defaults]\nclient-ca = \"certs\"\n[[listener]]\nlisten = \"udp://127.0.0.1:0\"\n",
        &[
            "line 2, key 'client-ca': cannot read the CA certificate file",
            "it is a directory",
        ],
    );
    refused_alike(
        "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\ncert = \"certs/server.pem\"\nkey = \"certs/nokey.pem\"\n",
        &[
            "line 4, key 'key': cannot read the private key file",
            "nokey.pem: no such file",
        ],
    );
}

#[test]
fn keys_that_do_nothing_for_their_listener_are_errors_at_their_line() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[listener]]\nlisten = \"tcp://127.0.0.1:5555\"\ncert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"\n",
            &[
                "line 3, key 'cert': this key does nothing for a tcp listener (only tls, quic and wss listeners read it)",
                "use listen = \"tls://127.0.0.1:5555\", or remove the key",
            ],
        ),
        (
            "[[listener]]\nlisten = \"udp://127.0.0.1:0\"\nalpn = [\"echo\"]\n",
            &[
                "line 3, key 'alpn': this key does nothing for a udp listener",
                "use listen = \"quic://127.0.0.1:0\"",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\nworkers = 2\n",
            &[
                "line 3, key 'workers': this key does nothing for a tcp listener (only udp listeners read it)",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\nudp-rate-limit = 100\n",
            &["line 3, key 'udp-rate-limit': this key does nothing for a tls listener"],
        ),
        (
            "[[listener]]\nlisten = \"udp://127.0.0.1:0\"\nnodelay = false\n",
            &["line 3, key 'nodelay': this key does nothing for a udp listener"],
        ),
        (
            "[[listener]]\nlisten = \"quic://127.0.0.1:0\"\nbacklog = 10\n",
            &["line 3, key 'backlog': this key does nothing for a quic listener"],
        ),
        (
            "[[listener]]\nlisten = \"tcp6://[::1]:0\"\nhandshake-timeout = \"5s\"\n",
            &["line 3, key 'handshake-timeout': this key does nothing for a tcp6 listener"],
        ),
        (
            "[[listener]]\nlisten = \"udp://127.0.0.1:0\"\nidle-timeout = 5\n",
            &["line 3, key 'idle-timeout': this key does nothing for a udp listener"],
        ),
    ];
    for (text, needles) in cases {
        refused_alike(text, needles);
    }
    // In [defaults] the same keys apply where they fit and are skipped elsewhere.
    let out = accepted(
        "[defaults]\ncert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"\nworkers = 2\n\
         nodelay = false\nbacklog = 64\n\
         [[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n[[listener]]\nlisten = \"udp://127.0.0.1:0\"\n",
    );
    assert!(out.contains("OK, 2 listeners"), "{out}");
}

#[test]
fn defaults_that_fit_some_listeners_are_used_by_them_and_skipped_by_the_rest() {
    let path = unique_file(
        "[defaults]\ncert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"\nworkers = 1\n\
         [[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n[[listener]]\nlisten = \"tls://127.0.0.1:0\"\n\
         [[listener]]\nlisten = \"udp://127.0.0.1:0\"\n",
    );
    let mut server = serve_config(&path, &[], 3);
    // The TLS listener serves the file's certificate, not a throwaway one.
    assert!(
        !server.proc.seen.iter().any(|l| l.contains("ephemeral")),
        "{:?}",
        server.proc.seen
    );
    let ca = with_certs().join("certs/ca.pem");
    let tls = connect(
        &[
            "--ca",
            ca.to_str().unwrap(),
            "-m",
            "from defaults",
            &server.urls[1],
        ],
        b"",
    );
    assert_eq!(tls.stdout, b"from defaults\n", "{}", tls.stderr);
    let tcp = connect(&["-m", "plain", &server.urls[0]], b"");
    assert_eq!(tcp.stdout, b"plain\n", "{}", tcp.stderr);
    let _ = server.proc.line_with("listening on udp://");
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
}

#[test]
fn flags_that_no_listener_reads_are_refused() {
    serve_refused(
        &[
            "--proto",
            "tcp",
            "-l",
            "127.0.0.1:5555",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ],
        &[
            "--cert does nothing for tcp://127.0.0.1:5555 (only tls, quic and wss listeners read it): did you mean --proto tls?",
        ],
    );
    serve_refused(
        &["-l", "udp://127.0.0.1:0", "--nagle"],
        &[
            "--nagle does nothing for udp://127.0.0.1:0",
            "did you mean tcp://127.0.0.1:0?",
        ],
    );
    serve_refused(
        &["-l", "127.0.0.1:0", "--workers", "2"],
        &[
            "--workers does nothing for tcp://127.0.0.1:0 (only udp listeners read it): did you mean --proto udp?",
        ],
    );
    serve_refused(
        &["--proto", "udp", "--handshake-timeout", "5s"],
        &[
            "--handshake-timeout does nothing for udp://127.0.0.1:5555",
            "did you mean --proto quic?",
        ],
    );
    let path = unique_file("[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n");
    serve_refused(
        &["--config", path.to_str().unwrap(), "--udp-rate-limit", "10"],
        &[
            "--udp-rate-limit does nothing for tcp://127.0.0.1:0",
            "did you mean udp://127.0.0.1:0?",
        ],
    );
    // A flag some listener reads is fine, even when others do not read it.
    let server = Server::start_n(
        &[
            "-l",
            "tcp://127.0.0.1:0",
            "-l",
            "udp://127.0.0.1:0",
            "--workers",
            "1",
        ],
        2,
    );
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
}

#[test]
fn a_key_and_its_flag_accept_the_same_values() {
    // (key = value in a file, the flag and its value, what both expect)
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "workers = 0",
            &["--workers", "0"],
            "a whole number from 1 to 1024",
        ),
        (
            "workers = 1025",
            &["--workers", "1025"],
            "a whole number from 1 to 1024",
        ),
        (
            "max-conns = 0",
            &["--max-conns", "0"],
            "a whole number from 1 to 1048576",
        ),
        (
            "udp-rate-limit = 0",
            &["--udp-rate-limit", "0"],
            "a whole number from 1 to 4294967295",
        ),
        (
            "backlog = 0",
            &["--backlog", "0"],
            "a whole number from 1 to 65535",
        ),
        (
            "recv-buffer = 0",
            &["--recv-buffer", "0"],
            "a size from 1 byte to 1G",
        ),
        (
            "send-buffer = \"0K\"",
            &["--send-buffer", "0K"],
            "a size from 1 byte to 1G",
        ),
        (
            "send-buffer = \"2G\"",
            &["--send-buffer", "2G"],
            "a size from 1 byte to 1G",
        ),
        (
            "handshake-timeout = 0",
            &["--handshake-timeout", "0"],
            "a duration of at least 1ms",
        ),
        (
            "alpn = [\"\"]",
            &["--alpn", ""],
            "protocol names of 1 to 255 bytes",
        ),
    ];
    for (line, flag, expected) in cases {
        let key = line.split(" =").next().unwrap();
        let value = line.split("= ").nth(1).unwrap();
        refused_alike(
            &format!(
                "[defaults]\ndrain-timeout = 5\n{line}\n[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n"
            ),
            &[&format!(
                "line 3, key '{key}': found {value}, expected {expected}"
            )],
        );
        let mut cmd = echotool();
        cmd.args(["serve", "-l", "127.0.0.1:0"]).args(*flag);
        run(cmd, b"").assert_error(
            2,
            &[
                &format!("for '{}", flag[0]),
                &format!("expected {expected}"),
            ],
        );
    }
    // The same value in a listener's own table is pointed at there.
    refused_alike(
        "[[listener]]\nlisten = \"udp://127.0.0.1:0\"\n\nworkers = 0\n",
        &["line 4, key 'workers': found 0, expected a whole number from 1 to 1024"],
    );
}

#[test]
fn a_setting_a_transport_refuses_is_pointed_at_where_it_is_written() {
    let cases: &[(&str, &[&str])] = &[
        // A key that does not belong to the certificate, in the listener's table...
        (
            "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\ncert = \"certs/server.pem\"\nkey = \"certs/client-key.pem\"\n",
            &[
                "line 4, key 'key': the private key in",
                "does not belong to the certificate",
            ],
        ),
        // ...or in [defaults].
        (
            "[defaults]\nkey = \"certs/client-key.pem\"\n\n[[listener]]\nlisten = \"quic://127.0.0.1:0\"\ncert = \"certs/server.pem\"\n",
            &["line 2, key 'key': the private key in"],
        ),
        (
            "[[listener]]\nlisten = \"quic://127.0.0.1:0\"\nalpn = [\"echo\"]\ntls-version = \"1.2\"\n",
            &["line 4, key 'tls-version'", "QUIC always runs TLS 1.3"],
        ),
        (
            "[defaults]\ntls-version = \"1.2\"\n[[listener]]\nlisten = \"tls://127.0.0.1:0\"\n[[listener]]\nlisten = \"quic://127.0.0.1:0\"\n",
            &["line 2, key 'tls-version'", "QUIC always runs TLS 1.3"],
        ),
        (
            "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\nclient-ca = \"certs/server-key.pem\"\n",
            &[
                "line 3, key 'client-ca'",
                "holds a private key, not a CA certificate",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\ncert = \"certs/server-key.pem\"\nkey = \"certs/server-key.pem\"\n",
            &[
                "line 3, key 'cert'",
                "holds a private key, not a certificate",
            ],
        ),
        (
            "[[listener]]\nlisten = \"tls://127.0.0.1:0\"\n\ncert = \"certs/server.pem\"\n",
            &["line 4, key 'cert'", "without --key"],
        ),
    ];
    for (text, needles) in cases {
        refused_alike(text, needles);
    }
}
