//! TLS: `echotool certs`, `serve --proto tls` and `connect --proto tls` against each other and
//! against openssl s_client, socat and ncat; every setup mistake explained.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use echotool_secure::certs::{BundleOptions, generate_bundle, write_bundle};

/// `echotool certs --out DIR` into a new temporary directory.
fn certs(tag: &str) -> TempDir {
    TempDir::new(&format!("tls-{tag}")).with_certs()
}

fn tls_server(dir: &TempDir, extra: &[&str]) -> Server {
    let (cert, key) = (dir.file("server.pem"), dir.file("server-key.pem"));
    let mut args = vec!["--proto", "tls", "-l", ":0", "--cert", &cert, "--key", &key];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn certs_writes_a_verifiable_bundle_with_private_keys_and_refuses_to_overwrite() {
    require("openssl");
    let dir = TempDir::new("bundle");
    let out_dir = dir.0.display().to_string();
    let mut cmd = echotool();
    cmd.args([
        "certs",
        "--out",
        &out_dir,
        "--san",
        "10.9.8.7",
        "--san",
        "echo.example",
    ]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        "client.pem",
        "client-key.pem",
    ] {
        assert!(stdout.contains(name), "{stdout}");
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.0.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let want = if name.ends_with("-key.pem") {
            0o600
        } else {
            0o644
        };
        assert_eq!(mode, want, "{name}");
    }
    let verify = sh(
        &format!(
            "openssl verify -CAfile {0}/ca.pem {0}/server.pem {0}/client.pem",
            out_dir
        ),
        b"",
    );
    assert!(verify.status.success(), "{}", verify.stderr);
    let text = sh(
        &format!("openssl x509 -noout -ext subjectAltName -in {out_dir}/server.pem"),
        b"",
    );
    let sans = String::from_utf8_lossy(&text.stdout);
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "IP Address:10.9.8.7",
        "DNS:echo.example",
    ] {
        assert!(sans.contains(name), "{name} missing: {sans}");
    }
    let before = std::fs::read(dir.0.join("ca.pem")).unwrap();
    let mut again = echotool();
    again.args(["certs", "--out", &out_dir]);
    run(again, b"").assert_error(1, &["already exist", "--force"]);
    assert_eq!(
        std::fs::read(dir.0.join("ca.pem")).unwrap(),
        before,
        "nothing overwritten"
    );
}

#[test]
fn echotool_to_echotool_with_generated_certs_lines_and_a_mebibyte() {
    let dir = certs("pair");
    let server = tls_server(&dir, &[]);
    let ca = dir.file("ca.pem");
    let url = format!("tls://localhost:{}", server.port());
    let lines = connect(&["--mode", "lines", "--ca", &ca, &url], b"one\ntwo\n");
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, b"one\ntwo\n");
    let data = random_bytes(1 << 20, 7);
    let piped = connect(&["--ca", &ca, server.url()], &data);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);
    let v = connect(&["-v", "--ca", &ca, "-m", "hi", &url], b"");
    assert!(
        v.stderr
            .contains("TLS version TLS 1.3, cipher suite TLS13_"),
        "{}",
        v.stderr
    );
    // Both ends prefer the post-quantum hybrid, as rustls does by default.
    assert!(
        v.stderr.contains("key exchange X25519MLKEM768"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("subject O=echotool, CN=localhost"),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("sha256:"), "{}", v.stderr);
}

#[test]
fn an_ephemeral_certificate_prints_its_fingerprint_pin_connects_and_insecure_warns() {
    let mut server = Server::start(&["--proto", "tls", "-l", ":0"]);
    let fp = server.proc.wait_for_line("certificate: ephemeral");
    assert!(fp.contains("sha256:"), "{fp}");
    let how = server.proc.wait_for_line("connect with:");
    let fingerprint = fp.rsplit(' ').next().unwrap().to_string();
    let command = format!(
        "echotool connect --proto tls --pin {fingerprint} 127.0.0.1:{}",
        server.port()
    );
    assert!(how.ends_with(&command), "{how}");
    let pinned = connect(&["--pin", &fingerprint, "-m", "pinned", server.url()], b"");
    assert_eq!(pinned.stdout, b"pinned\n", "{}", pinned.stderr);
    assert!(!pinned.stderr.contains("WARN"), "{}", pinned.stderr);
    let other = format!("sha256:{}", "ab".repeat(32));
    connect(&["--pin", &other, "-m", "x", server.url()], b"").assert_error(
        1,
        &[
            "has the fingerprint sha256:",
            "not the one given with --pin",
        ],
    );
    let verified = connect(&["-m", "hi", server.url()], b"");
    verified.assert_error(1, &["not issued by a CA this client trusts", "--insecure"]);
    let out = connect(&["--insecure", "-m", "hi", server.url()], b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"hi\n");
    assert!(
        out.stderr
            .contains("--insecure: the server's certificate is not verified"),
        "{}",
        out.stderr
    );
    let data = random_bytes(1 << 20, 8);
    let piped = connect(&["--insecure", server.url()], &data);
    assert_same_bytes(&piped.stdout, &data);
}

#[test]
fn mutual_tls_accepts_a_client_certificate_and_explains_its_absence() {
    let dir = certs("mtls");
    let server = tls_server(&dir, &["--client-ca", &dir.file("ca.pem")]);
    let ca = dir.file("ca.pem");
    let (cert, key) = (dir.file("client.pem"), dir.file("client-key.pem"));
    let ok = connect(
        &[
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-m",
            "mutual",
            server.url(),
        ],
        b"",
    );
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout, b"mutual\n");
    let data = random_bytes(1 << 20, 9);
    let piped = connect(
        &["--ca", &ca, "--cert", &cert, "--key", &key, server.url()],
        &data,
    );
    assert_same_bytes(&piped.stdout, &data);
    for version in ["1.3", "1.2"] {
        let refused = connect(
            &[
                "--ca",
                &ca,
                "--tls-version",
                version,
                "-m",
                "hi",
                server.url(),
            ],
            b"",
        );
        refused.assert_error(
            1,
            &[
                "the server requires a client certificate",
                "--cert and --key",
            ],
        );
    }
    // A client certificate from another CA is not enough.
    let stranger = certs("stranger");
    let (cert, key) = (stranger.file("client.pem"), stranger.file("client-key.pem"));
    let wrong = connect(
        &[
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-m",
            "hi",
            server.url(),
        ],
        b"",
    );
    wrong.assert_error(1, &["rejected this client's certificate"]);
}

#[test]
fn openssl_s_client_verifies_and_echoes() {
    require("openssl");
    let dir = certs("sclient");
    let server = tls_server(&dir, &[]);
    let (line, stderr) = s_client_echo(
        server.port(),
        &["-verify_return_error", "-CAfile", &dir.file("ca.pem")],
        "hello from openssl",
    );
    assert_eq!(line, "hello from openssl\n", "{stderr}");
    assert!(stderr.contains("verify return:1"), "{stderr}");
}

#[test]
fn echotool_connect_to_socat_and_ncat_tls_servers() {
    let dir = certs("peers");
    let (_socat, port) = tcp_peer("socat", |port| {
        vec![
            format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                dir.file("server.pem"),
                dir.file("server-key.pem")
            ),
            "PIPE".into(),
        ]
    });
    let data = random_bytes(1 << 20, 10);
    let url = format!("tls://localhost:{port}");
    let out = connect(&["--ca", &dir.file("ca.pem"), &url], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert_same_bytes(&out.stdout, &data);

    let (_ncat, port) = tcp_peer("ncat", |port| {
        [
            "--ssl",
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
    let url = format!("tls://127.0.0.1:{port}");
    let lines = connect(
        &["--insecure", "--mode", "lines", &url],
        b"to ncat\nand back\n",
    );
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, b"to ncat\nand back\n");
}

#[test]
fn certificate_problems_are_explained() {
    let dir = certs("problems");
    let server = tls_server(&dir, &[]);
    let port = server.port();
    // Unknown CA: no --ca, so only the system's roots.
    connect(&["-m", "x", &format!("tls://localhost:{port}")], b"")
        .assert_error(1, &["not issued by a CA this client trusts", "--ca"]);
    // Name mismatch.
    connect(
        &[
            "--ca",
            &dir.file("ca.pem"),
            "--server-name",
            "echo.example",
            "-m",
            "x",
            server.url(),
        ],
        b"",
    )
    .assert_error(
        1,
        &[
            "is for localhost, 127.0.0.1, ::1 and not for echo.example",
            "echotool certs --san echo.example",
        ],
    );

    let now = time::OffsetDateTime::now_utc();
    for (tag, from, until, want) in [
        (
            "expired",
            now - time::Duration::days(30),
            now - time::Duration::days(1),
            "expired at",
        ),
        (
            "future",
            now + time::Duration::days(1),
            now + time::Duration::days(30),
            "is not valid before",
        ),
    ] {
        let odd = TempDir::new(tag);
        let bundle = generate_bundle(&BundleOptions {
            extra_sans: vec![],
            not_before: from,
            not_after: until,
        })
        .unwrap();
        write_bundle(&odd.0, &bundle, true).unwrap();
        let server = tls_server(&odd, &[]);
        connect(&["--ca", &odd.file("ca.pem"), "-m", "x", server.url()], b"")
            .assert_error(1, &[want]);
    }
}

#[test]
fn bad_certificate_files_are_explained() {
    let dir = certs("files");
    let serve = |cert: &str, key: &str| {
        let mut cmd = echotool();
        cmd.args([
            "serve", "--proto", "tls", "-l", ":0", "--cert", cert, "--key", key,
        ]);
        run(cmd, b"")
    };
    serve(&dir.file("nope.pem"), &dir.file("server-key.pem")).assert_error(
        1,
        &[
            "cannot read the certificate file",
            "nope.pem: no such file",
            "echotool certs",
        ],
    );
    serve(&dir.file("server-key.pem"), &dir.file("server-key.pem")).assert_error(
        1,
        &["server-key.pem holds a private key, not a certificate"],
    );
    serve(&dir.file("server.pem"), &dir.file("server.pem"))
        .assert_error(1, &["server.pem holds a certificate, not a private key"]);
    serve(&dir.file("server.pem"), &dir.file("client-key.pem")).assert_error(
        1,
        &[
            "private key in",
            "client-key.pem does not belong to the certificate in",
        ],
    );
    let unreadable = dir.0.join("unreadable.pem");
    std::fs::create_dir_all(&unreadable).unwrap();
    serve(
        &unreadable.display().to_string(),
        &dir.file("server-key.pem"),
    )
    .assert_error(1, &["cannot read the certificate file"]);
    connect(
        &["--proto", "tls", "--ca", &dir.file("ca-key.pem"), "-m", "x"],
        b"",
    )
    .assert_error(1, &["ca-key.pem holds a private key, not a CA certificate"]);
    connect(
        &["--proto", "tls", "--pin", "sha256:nothex", "-m", "x"],
        b"",
    )
    .assert_error(1, &["is not a certificate fingerprint"]);
}

#[test]
fn a_plaintext_server_on_the_other_side_is_named() {
    let plain = Server::start(&["-l", ":0"]);
    connect(
        &["--proto", "tls", "--insecure", "-m", "x", &plain.addr()],
        b"",
    )
    .assert_error(
        1,
        &["did not answer in TLS", "plaintext server", "--proto tcp"],
    );
}

#[test]
fn garbage_and_stalled_handshakes_do_not_disturb_other_clients() {
    let dir = certs("garbage");
    let mut cmd = echotool();
    cmd.args([
        "-v",
        "serve",
        "--proto",
        "tls",
        "-l",
        ":0",
        "--handshake-timeout",
        "500ms",
    ])
    .args([
        "--cert",
        &dir.file("server.pem"),
        "--key",
        &dir.file("server-key.pem"),
    ]);
    let mut proc = Running::spawn(cmd);
    let addr = proc.listening_addr();
    // Plaintext on the TLS port: logged and closed.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    proc.wait_for_line("the client did not speak TLS");
    // A client that connects and says nothing is cut at the handshake timeout.
    let silent = TcpStream::connect(&addr).unwrap();
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let started = Instant::now();
    // Meanwhile a real client is served.
    let ok = connect(
        &[
            "--ca",
            &dir.file("ca.pem"),
            "-m",
            "still fine",
            &format!("tls://{addr}"),
        ],
        b"",
    );
    assert_eq!(ok.stdout, b"still fine\n", "{}", ok.stderr);
    proc.wait_for_line("handshake timed out");
    let mut buf = [0u8; 1];
    let n = std::io::Read::read(&mut &silent, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the silent connection was closed");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the timeout"
    );
    drop(plain);
}

#[test]
fn pinned_versions_and_alpn() {
    let dir = certs("versions");
    let server = tls_server(&dir, &["--tls-version", "1.2", "--alpn", "echo"]);
    let ca = dir.file("ca.pem");
    let v = connect(
        &[
            "-v",
            "--ca",
            &ca,
            "--alpn",
            "echo",
            "-m",
            "hi",
            server.url(),
        ],
        b"",
    );
    assert_eq!(v.stdout, b"hi\n", "{}", v.stderr);
    assert!(
        v.stderr.contains("TLS version TLS 1.2") && v.stderr.contains("ALPN echo"),
        "{}",
        v.stderr
    );
    connect(
        &[
            "--ca",
            &ca,
            "--tls-version",
            "1.3",
            "-m",
            "hi",
            server.url(),
        ],
        b"",
    )
    .assert_error(1, &["TLS version", "--tls-version"]);
    connect(
        &["--ca", &ca, "--alpn", "h2", "-m", "hi", server.url()],
        b"",
    )
    .assert_error(1, &["ALPN", "--alpn"]);
}

/// `echotool -v serve --proto tls` with `cert` and `key` and `extra` flags: the process (its
/// debug log on stderr) and its `HOST:PORT`.
fn verbose_tls_server(cert: &str, key: &str, extra: &[&str]) -> (Running, String) {
    let mut cmd = echotool();
    cmd.args([
        "-v", "serve", "--proto", "tls", "-l", ":0", "--cert", cert, "--key", key,
    ])
    .args(extra);
    let mut proc = Running::spawn(cmd);
    let addr = proc.listening_addr();
    (proc, addr)
}

#[test]
fn an_openssl_self_signed_ca_certificate_trusted_by_name_is_accepted_and_nothing_else() {
    let dir = TempDir::new("selfsigned");
    let san = "DNS:localhost,IP:127.0.0.1";
    let (cert, key) = openssl_self_signed(&dir.0, "self", "localhost", Some(san));
    let server = Server::start(&["--proto", "tls", "-l", ":0", "--cert", &cert, "--key", &key]);
    let url = format!("tls://localhost:{}", server.port());
    for target in [url.as_str(), server.url()] {
        let ok = connect(&["--ca", &cert, "-m", "trusted as it is", target], b"");
        assert!(ok.status.success(), "{target}: {}", ok.stderr);
        assert_eq!(ok.stdout, b"trusted as it is\n");
    }
    let (line, stderr) = s_client_echo(
        server.port(),
        &["-verify_return_error", "-CAfile", &cert],
        "and by openssl",
    );
    assert_eq!(line, "and by openssl\n", "{stderr}");
    // Trusted, but not for another name.
    connect(
        &[
            "--ca",
            &cert,
            "--server-name",
            "echo.example",
            "-m",
            "x",
            server.url(),
        ],
        b"",
    )
    .assert_error(1, &["is for localhost, 127.0.0.1 and not for echo.example"]);
    // The same kind of certificate, but not the one in --ca: still refused, and explained.
    let (other, _) = openssl_self_signed(&dir.0, "other", "localhost", Some(san));
    connect(&["--ca", &other, "-m", "x", &url], b"").assert_error(
        1,
        &[
            "is a CA certificate (basic constraints CA:TRUE) used as the server's own",
            &format!("not one of the certificates in {other} (--ca)"),
            "echotool certs",
        ],
    );
    connect(&["-m", "x", &url], b"")
        .assert_error(1, &["CA:TRUE", "among this system's trusted roots"]);
}

#[test]
fn a_self_signed_client_certificate_named_in_client_ca_is_accepted() {
    let dir = certs("selfclient");
    let (client, client_key) = openssl_self_signed(&dir.0, "self-client", "echo client", None);
    let (mut proc, addr) = verbose_tls_server(
        &dir.file("server.pem"),
        &dir.file("server-key.pem"),
        &["--client-ca", &client],
    );
    let url = format!("tls://localhost:{}", addr.rsplit(':').next().unwrap());
    let ca = dir.file("ca.pem");
    let ok = connect(
        &[
            "--ca",
            &ca,
            "--cert",
            &client,
            "--key",
            &client_key,
            "-m",
            "mutual",
            &url,
        ],
        b"",
    );
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout, b"mutual\n");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let (line, stderr) = s_client_echo(
        port,
        &["-CAfile", &ca, "-cert", &client, "-key", &client_key],
        "openssl with its own certificate",
    );
    assert_eq!(line, "openssl with its own certificate\n", "{stderr}");
    // Another self-signed client certificate is refused, and the server says why.
    let (stranger, stranger_key) = openssl_self_signed(&dir.0, "stranger", "echo client", None);
    connect(
        &[
            "--ca",
            &ca,
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
    let failed = proc.wait_for_line("handshake failed");
    assert!(
        failed.contains("cause=\"untrusted certificate\""),
        "{failed}"
    );
    assert!(
        failed.contains("is a CA certificate (basic constraints CA:TRUE) used as the client's own"),
        "{failed}"
    );
}

#[test]
fn the_server_log_names_what_the_client_rejected() {
    // A certificate that is not valid yet: the client's alert says "expired"; the server must
    // not claim it is.
    let now = time::OffsetDateTime::now_utc();
    let future = TempDir::new("notyet");
    let bundle = generate_bundle(&BundleOptions {
        extra_sans: vec![],
        not_before: now + time::Duration::days(1),
        not_after: now + time::Duration::days(30),
    })
    .unwrap();
    write_bundle(&future.0, &bundle, true).unwrap();
    let (mut proc, addr) = verbose_tls_server(
        &future.file("server.pem"),
        &future.file("server-key.pem"),
        &[],
    );
    connect(
        &[
            "--ca",
            &future.file("ca.pem"),
            "-m",
            "x",
            &format!("tls://{addr}"),
        ],
        b"",
    )
    .assert_error(1, &["is not valid before"]);
    let failed = proc.wait_for_line("handshake failed");
    for want in [
        "cause=\"certificate expired or not yet valid\"",
        "as expired or not valid yet",
        "this side's certificate is valid from",
    ] {
        assert!(failed.contains(want), "{want:?} in {failed}");
    }
    assert!(!failed.contains("has expired"), "{failed}");
    drop(proc);

    // A wrong name: rustls clients send bad_certificate, which is not an untrusted CA.
    let dir = certs("wrongname");
    let (mut proc, addr) =
        verbose_tls_server(&dir.file("server.pem"), &dir.file("server-key.pem"), &[]);
    connect(
        &[
            "--ca",
            &dir.file("ca.pem"),
            "--server-name",
            "echo.example",
            "-m",
            "x",
            &format!("tls://{addr}"),
        ],
        b"",
    )
    .assert_error(1, &["not for echo.example"]);
    let failed = proc.wait_for_line("handshake failed");
    assert!(
        failed.contains("cause=\"wrong name or bad certificate\""),
        "{failed}"
    );
    assert!(failed.contains("--server-name"), "{failed}");
    assert!(!failed.contains("trust"), "{failed}");
}

#[test]
fn the_summary_counts_failed_handshakes_by_cause() {
    let dir = certs("causes");
    let mut cmd = echotool();
    cmd.args([
        "--log-format",
        "json",
        "serve",
        "--proto",
        "tls",
        "-l",
        ":0",
    ])
    .args([
        "--cert",
        &dir.file("server.pem"),
        "--key",
        &dir.file("server-key.pem"),
    ]);
    let mut proc = Running::spawn(cmd);
    let line = proc.wait_for_line("listening on");
    let event: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let url = event["listener"].as_str().unwrap().to_string();
    let addr = url.rsplit("://").next().unwrap().to_string();
    // Plaintext on the TLS port: the server closes it.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut rest);
    // A client that does not trust the server's CA.
    connect(&["--proto", "tls", "-m", "x", &addr], b"")
        .assert_error(1, &["not issued by a CA this client trusts"]);
    // And one that is served.
    let ok = connect(
        &[
            "--ca",
            &dir.file("ca.pem"),
            "-m",
            "ok",
            &format!("tls://localhost:{}", addr.rsplit(':').next().unwrap()),
        ],
        b"",
    );
    assert_eq!(ok.stdout, b"ok\n", "{}", ok.stderr);
    proc.signal(libc::SIGINT);
    let (status, lines) = proc.wait();
    assert!(status.success(), "{lines:#?}");
    let summary = lines
        .iter()
        .find(|l| l.contains("\"summary "))
        .unwrap_or_else(|| panic!("no summary in {lines:#?}"));
    let event: serde_json::Value = serde_json::from_str(summary).unwrap();
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with(
            "3 connections, 1 message, 3 bytes in, 3 bytes out, 0 errors, 2 failed handshakes \
             (1 not TLS, 1 untrusted certificate)"
        ),
        "{summary}"
    );
    assert_eq!(event["failed_handshakes"], 2, "{summary}");
    assert_eq!(
        event["failed_handshake_causes"], "1 not TLS, 1 untrusted certificate",
        "{summary}"
    );
}

#[test]
fn a_client_that_leaves_without_close_notify_is_no_error() {
    let dir = certs("noclosenotify");
    let server = tls_server(&dir, &[]);
    // s_client is killed once the echo is back: the server sees the TCP connection end
    // without the TLS close_notify alert.
    let (line, stderr) = s_client_echo(
        server.port(),
        &["-CAfile", &dir.file("ca.pem")],
        "and then gone",
    );
    assert_eq!(line, "and then gone\n", "{stderr}");
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:#?}");
    let summary = summary_line(&lines);
    assert!(
        summary.ends_with("1 connection, 1 message, 14 bytes in, 14 bytes out, 0 errors"),
        "{summary}"
    );
}
