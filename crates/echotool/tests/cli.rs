//! The command line as a user meets it: completions, the manual page, `version`, help that
//! shows the defaults that run, colours only when wanted, addresses that need brackets or
//! scope ids, and flags that would do nothing for the protocol chosen.

mod common;

use common::*;

fn echotool_out(args: &[&str]) -> Outcome {
    let mut cmd = echotool();
    cmd.args(args);
    run(cmd, b"")
}

#[test]
fn completions_for_every_shell_and_a_manual_page() {
    for (shell, marker) in [
        ("bash", "_echotool()"),
        ("zsh", "#compdef echotool"),
        ("fish", "complete -c echotool"),
        ("elvish", "edit:completion:arg-completer[echotool]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = echotool_out(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", out.stderr);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        assert!(text.contains("bench"), "{shell} completes subcommands");
    }
    let bash = String::from_utf8(echotool_out(&["completions", "bash"]).stdout).unwrap();
    let check = sh(&format!("bash -n <<'EOF'\n{bash}\nEOF"), b"");
    assert!(check.status.success(), "bash parses it: {}", check.stderr);

    let out = echotool_out(&["manpage"]);
    assert!(out.status.success(), "{}", out.stderr);
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH echotool"),
        "{page}"
    );
    for sub in ["serve", "connect", "bench", "certs", "config"] {
        assert!(page.contains(sub), "{sub} in the man page");
    }
}

#[test]
fn version_names_the_libraries_and_the_target() {
    let out = echotool_out(&["version"]);
    assert!(out.status.success(), "{}", out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        concat!("echotool ", env!("CARGO_PKG_VERSION")),
        "x86_64",
        "transports: tcp, tcp4, tcp6, udp, tls, quic",
        "rustls 0.23.",
        "crypto provider: aws-lc-rs 1.",
        "quinn 0.11.",
        "tokio 1.",
        "allocator: jemalloc (tikv-jemallocator 0.",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert!(!text.lines().any(|l| l.ends_with(" unknown")), "{text}");
}

#[test]
fn help_shows_the_defaults_that_run() {
    let help = String::from_utf8(echotool_out(&["bench", "--help"]).stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "[default: tcp,udp,tls,quic]",
        "[default: per scenario: latency 1, throughput 4, setup 1, multistream 1]",
        "[default: per scenario: latency 64 B, throughput 16 KiB, setup 64 B, multistream 64 B]",
        "[default: per scenario: latency 1, throughput 2, setup 1, multistream 8]",
        "[default: 5s]",
        "[default: 1s for datagrams, 5s for streams]",
    ] {
        assert!(help.contains(needle), "{needle} in {help}");
    }
    assert!(!help.contains("TCP, UDP and TLS"), "{help}");
    let help = String::from_utf8(echotool_out(&["serve", "--help"]).stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "[default: 10000]",
        "[default: 300s]",
        "[default: 1024]",
        "[default: 10s]",
    ] {
        assert!(help.contains(needle), "{needle} in {help}");
    }
}

#[test]
fn no_color_turns_colours_off_on_a_terminal() {
    require("script");
    let exe = env!("CARGO_BIN_EXE_echotool");
    // `script` gives echotool a terminal; --insecure logs a warning, coloured on a terminal
    // unless NO_COLOR says otherwise, before the refused connection ends the command.
    let port = free_tcp_port();
    let run_on_tty = |env: &str| {
        let command = format!("'{exe}' connect --proto tls --insecure -m x 127.0.0.1:{port}");
        let out = sh(&format!("{env} script -qec \"{command}\" /dev/null"), b"");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run_on_tty("");
    assert!(coloured.contains("--insecure"), "{coloured}");
    assert!(
        coloured.contains('\u{1b}'),
        "colour on a terminal: {coloured:?}"
    );
    let plain = run_on_tty("NO_COLOR=1");
    assert!(plain.contains("--insecure"), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "no colour with NO_COLOR: {plain:?}"
    );
}

#[test]
fn an_ipv6_address_with_a_port_needs_brackets_and_scope_ids_work() {
    connect(&["-m", "x", "::1:5555"], b"").assert_error(
        2,
        &["write [::1]:5555 for port 5555 of ::1, or [::1:5555] for the address"],
    );
    // A scope id names the interface (by name or index); loopback's ::1 takes one too.
    let server = Server::start(&["-l", "[::1]:0"]);
    for scope in ["lo", "1"] {
        let url = format!("tcp://[::1%{scope}]:{}", server.port());
        let out = connect(&["-m", "scoped", &url], b"");
        assert!(out.status.success(), "{url}: {}", out.stderr);
        assert_eq!(out.stdout, b"scoped\n");
    }
    connect(&["-m", "x", "[fe80::1%nosuchif0]:7"], b"").assert_error(
        1,
        &["could not resolve 'fe80::1%nosuchif0': no interface has that name"],
    );
}

#[test]
fn connect_flags_that_would_do_nothing_are_refused() {
    for (args, needle) in [
        (
            &["--ca", "ca.pem", "-m", "x"][..],
            "--ca does nothing for tcp://127.0.0.1:5555: the TLS flags apply to TLS and QUIC; did you mean --proto tls?",
        ),
        (
            &["--proto", "udp", "--datagram", "-m", "x"][..],
            "--datagram does nothing for udp://127.0.0.1:5555: udp always sends datagrams",
        ),
        (&["--datagram", "-m", "x"][..], "--datagram is for QUIC"),
        (
            &["--size", "8K", "-m", "x"][..],
            "--size does nothing for tcp://127.0.0.1:5555: it applies to datagrams",
        ),
        (&["--retries", "3", "-m", "x"][..], "--retries does nothing"),
        (
            &["--proto", "udp", "--nagle", "-m", "x"][..],
            "--nagle does nothing for udp",
        ),
        (
            &["--mode", "pipe", "-m", "x"][..],
            "--mode does nothing with --message",
        ),
    ] {
        connect(args, b"").assert_error(2, &[needle]);
    }
}

#[test]
fn bench_tls_flags_need_a_tls_target() {
    let bench = |args: &[&str]| {
        let mut cmd = echotool();
        cmd.arg("bench").args(args);
        run(cmd, b"")
    };
    bench(&["--ca", "ca.pem"]).assert_error(
        2,
        &[
            "--ca does nothing for the embedded servers",
            "apply to a --target",
        ],
    );
    bench(&["--insecure", "--target", "tcp://127.0.0.1:7"])
        .assert_error(2, &["--insecure does nothing for tcp://127.0.0.1:7"]);
}

#[test]
fn quiet_means_only_errors() {
    let port = free_tcp_port();
    let mut cmd = echotool();
    cmd.args(["serve", "-q", "-l", &format!("127.0.0.1:{port}")]);
    let server = Running::spawn(cmd);
    wait_for_tcp_port(&format!("127.0.0.1:{port}"));
    let out = connect(&["-q", "-m", "quiet", &format!("127.0.0.1:{port}")], b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_str()),
        (&b"quiet\n"[..], "")
    );
    server.signal(2);
    let (status, lines) = server.wait();
    assert!(status.success());
    assert!(
        lines.is_empty(),
        "no listening, notice or summary lines: {lines:#?}"
    );

    let mut cmd = echotool();
    cmd.args([
        "bench",
        "-q",
        "--proto",
        "tcp",
        "--scenario",
        "latency",
        "--duration",
        "100ms",
    ]);
    cmd.args(["--warmup", "0", "--rate", "10", "--depth", "2"]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stderr, "", "no notes with -q");
    assert!(
        String::from_utf8(out.stdout).unwrap().contains("tcp "),
        "the table still"
    );
}
