//! Bad input gets one `error: ...` line saying what was wrong and what to do, and an exit
//! status: 2 for a mistake on the command line, 1 for a failure while running.

mod common;

use std::process::Command;

use common::*;

#[test]
fn port_in_use() {
    let server = Server::start(&["-l", ":0"]);
    let mut cmd = echotool();
    cmd.args(["serve", "-l", &server.addr()]);
    let out = run(cmd, b"");
    out.assert_error(
        1,
        &[
            "cannot listen on tcp://127.0.0.1:",
            "already in use",
            "port 0",
        ],
    );
}

#[test]
fn permission_denied_on_a_privileged_port() {
    // As root every port is allowed, so drop to nobody; the binary is copied somewhere nobody
    // can run it from.
    let mut cmd = if unsafe_geteuid_is_root() {
        let dir = std::env::temp_dir().join(format!("echotool-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("echotool");
        std::fs::copy(env!("CARGO_BIN_EXE_echotool"), &bin).unwrap();
        let open = |p: &std::path::Path, mode| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        open(&dir, 0o755);
        open(&bin, 0o755);
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        cmd
    } else {
        echotool()
    };
    cmd.args(["serve", "-l", "127.0.0.1:1"]);
    let out = run(cmd, b"");
    if unsafe_geteuid_is_root() {
        // The copy is as big as the debug binary: leave nothing behind in /tmp.
        let dir = std::env::temp_dir().join(format!("echotool-perm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
    }
    out.assert_error(
        1,
        &[
            "cannot listen on tcp://127.0.0.1:1",
            "permission denied",
            "1024",
        ],
    );
}

fn unsafe_geteuid_is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

#[test]
fn unknown_protocol() {
    let mut cmd = echotool();
    cmd.args(["serve", "--proto", "carrier-pigeon"]);
    run(cmd, b"").assert_error(2, &["unknown protocol 'carrier-pigeon'", "tcp, tcp4, tcp6"]);
    connect(&["sctp://127.0.0.1:1"], b"").assert_error(2, &["unknown protocol 'sctp'"]);
}

#[test]
fn malformed_addresses() {
    for bad in [
        "127.0.0.1:99999",
        "::1:5555x",
        "[::1",
        "a b:1",
        "tcp://h/path",
    ] {
        let out = connect(&[bad], b"");
        out.assert_error(2, &["is not a valid address", "expected HOST:PORT"]);
        let mut cmd = echotool();
        cmd.args(["serve", "-l", bad]);
        run(cmd, b"").assert_error(2, &["is not a valid address"]);
    }
}

#[test]
fn connection_refused() {
    let port = free_tcp_port();
    let out = connect(&[&format!("127.0.0.1:{port}")], b"hi\n");
    out.assert_error(
        1,
        &[
            "could not connect to tcp://127.0.0.1:",
            "connection refused",
            "echotool serve",
        ],
    );
}

#[test]
fn name_that_does_not_resolve() {
    // .invalid never resolves (RFC 2606), and the resolver answers without the network.
    let out = connect(&["no-such-host.invalid:5555"], b"hi\n");
    out.assert_error(
        1,
        &[
            "could not resolve 'no-such-host.invalid'",
            "check the spelling",
        ],
    );
}

#[test]
fn bad_timeout_value() {
    let out = connect(&["--timeout", "soon"], b"");
    out.assert_error(2, &["'soon' is not a duration", "250ms"]);
}

#[test]
fn a_bad_server_name_or_ca_file_is_refused_in_the_same_words_before_any_dial() {
    // Nothing listens on the port: over every TLS-based transport the options are checked
    // before a socket is dialled, so the answer is about them, not "connection refused".
    let port = free_tcp_port();
    let target = format!("127.0.0.1:{port}");
    for proto in ["tls", "wss", "quic"] {
        let cases: [(&[&str], &[&str]); 2] = [
            (
                &["--insecure", "--server-name", "bad name"],
                &["'bad name' is not a valid TLS server name", "--server-name"],
            ),
            (
                &["--ca", "/nonexistent/ca.pem"],
                &["cannot read the CA certificate file /nonexistent/ca.pem"],
            ),
        ];
        for (flags, want) in cases {
            let mut args = vec!["--proto", proto, "-m", "x"];
            args.extend_from_slice(flags);
            args.push(&target);
            let out = connect(&args, b"");
            out.assert_error(1, want);
            assert!(!out.stderr.contains("refused"), "{proto}: {}", out.stderr);
        }
    }
}
