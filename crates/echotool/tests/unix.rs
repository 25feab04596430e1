//! `echotool serve` and `connect` over Unix domain sockets (`unix` streams, `unixgram`
//! datagrams), against socat's `UNIX-*` and `ABSTRACT-*` addresses and `nc -U`, both ways; the
//! socket file's life (stale files replaced, live ones and other files left alone, the mode,
//! removal on exit); peer credentials in `-v` logs; every error in words; and `bench`.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A directory of one test's own under /tmp (short, so socket paths fit), removed when
/// dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("echotool-unix-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(dir)
    }

    /// A path in it.
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls (a bounded number of times) until `ready` holds.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts stream connections at `path`.
fn wait_for_listener(path: &str) {
    wait_until(&format!("a listener at {path}"), || {
        UnixStream::connect(path).is_ok()
    });
}

/// Waits until the socket file `path` exists (a datagram socket queues what is sent to it
/// from the moment it is bound).
fn wait_for_file(path: &str) {
    wait_until(&format!("a socket at {path}"), || Path::new(path).exists());
}

/// The permission bits of a file.
fn mode_of(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `nc ARGS` as an echo peer: what it receives (its stdout) goes back to it (its stdin).
struct NcEcho(Child);

impl NcEcho {
    fn start(args: &[&str]) -> NcEcho {
        require("nc");
        let mut child = Command::new("nc")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nc");
        let mut from = child.stdout.take().unwrap();
        let mut to = child.stdin.take().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() || to.flush().is_err() {
                    break;
                }
            }
        });
        NcEcho(child)
    }
}

impl Drop for NcEcho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `echotool ARGS` as the user nobody (from a copy of the binary that nobody can run), for
/// permissions that root would bypass.
fn as_nobody(dir: &Dir, args: &[&str]) -> Command {
    let bin = dir.0.join("echotool");
    if !bin.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_echotool"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .env_remove("RUST_LOG");
    cmd
}

#[test]
fn echotool_serves_socat_nc_and_itself_over_a_socket_file() {
    require("socat");
    require("nc");
    let dir = Dir::new("serve");
    let sock = dir.path("e.sock");
    let server = Server::start(&["-l", &format!("unix://{sock}")]);
    assert_eq!(server.url(), format!("unix://{sock}"));

    let socat = sh(&format!("socat -t 2 - UNIX-CONNECT:{sock}"), b"via socat\n");
    assert!(socat.status.success(), "{}", socat.stderr);
    assert_eq!(socat.stdout, b"via socat\n");
    let nc = sh(&format!("nc -N -U {sock}"), b"via nc\n");
    assert!(nc.status.success(), "{}", nc.stderr);
    assert_eq!(nc.stdout, b"via nc\n");

    let lines = connect(&["--mode", "lines", server.url()], b"one\ntwo\n");
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, b"one\ntwo\n");
    let data = random_bytes(300_000, 18);
    let piped = connect(&["--proto", "unix", &sock], &data);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);

    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    let summary = summary_line(&lines);
    assert!(summary.contains("4 connections"), "{summary}");
    assert!(summary.contains("0 errors"), "{summary}");
}

#[test]
fn echotool_connects_to_socat_and_nc_listeners() {
    require("socat");
    let dir = Dir::new("peers");
    let socat_sock = dir.path("socat.sock");
    let mut socat = Command::new("socat");
    socat
        .arg(format!("UNIX-LISTEN:{socat_sock},fork"))
        .arg("PIPE");
    let _socat = Running::spawn(socat);
    wait_for_listener(&socat_sock);
    let url = format!("unix://{socat_sock}");
    let out = connect(&["--mode", "lines", &url], b"to socat\nand back\n");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"to socat\nand back\n");
    let data = random_bytes(100_000, 19);
    let piped = connect(&[&url], &data);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);

    let nc_sock = dir.path("nc.sock");
    let _nc = NcEcho::start(&["-lkU", &nc_sock]);
    wait_for_listener(&nc_sock);
    let out = connect(
        &["--mode", "lines", &format!("unix://{nc_sock}")],
        b"to nc\nand back\n",
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"to nc\nand back\n");
}

#[test]
fn unixgram_echoes_socat_and_nc_and_talks_to_them() {
    require("socat");
    require("nc");
    let dir = Dir::new("dgram");
    let sock = dir.path("d.sock");
    let mut server = Server::start(&["-v", "-l", &format!("unixgram://{sock}")]);
    assert_eq!(server.url(), format!("unixgram://{sock}"));
    // socat answers only when its socket has an address of its own: bind=.
    let own = dir.path("socat-client.sock");
    let socat = sh(
        &format!("socat -t 2 - UNIX-SENDTO:{sock},bind={own}"),
        b"via socat\n",
    );
    assert!(socat.status.success(), "{}", socat.stderr);
    assert_eq!(socat.stdout, b"via socat\n");
    // nc -uU binds a temporary socket file of its own; -w 1 ends it once the echo is in.
    let nc = sh(&format!("nc -uU -w 1 {sock}"), b"via nc\n");
    assert!(nc.status.success(), "{}", nc.stderr);
    assert_eq!(nc.stdout, b"via nc\n");
    let lines = connect(&["--mode", "lines", server.url()], b"one\ntwo\n");
    assert!(lines.status.success(), "{}", lines.stderr);
    assert_eq!(lines.stdout, b"one\ntwo\n");
    let data = random_bytes(200_000, 20);
    let piped = connect(&["--size", "8K", server.url()], &data);
    assert!(piped.status.success(), "{}", piped.stderr);
    assert_same_bytes(&piped.stdout, &data);

    // A socket with no address cannot be answered: the log says so at -v, the summary counts it.
    let unnamed = UnixDatagram::unbound().unwrap();
    unnamed.send_to(b"anyone?", &sock).unwrap();
    let why = server.proc.wait_for_line("unnamed socket");
    assert!(why.contains("must bind an address of its own"), "{why}");
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    assert!(summary_line(&lines).contains("1 dropped"), "{lines:?}");

    let recvfrom = dir.path("recvfrom.sock");
    let mut peer = Command::new("socat");
    peer.arg(format!("UNIX-RECVFROM:{recvfrom},fork"))
        .arg("PIPE");
    let _peer = Running::spawn(peer);
    wait_for_file(&recvfrom);
    let out = connect(
        &["--mode", "lines", &format!("unixgram://{recvfrom}")],
        b"to socat\nand back\n",
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"to socat\nand back\n");

    let nc_sock = dir.path("nc-d.sock");
    let _nc = NcEcho::start(&["-luU", &nc_sock]);
    wait_for_file(&nc_sock);
    let out = connect(
        &["--mode", "lines", &format!("unixgram://{nc_sock}")],
        b"to nc\nand back\n",
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"to nc\nand back\n");
}

#[test]
fn abstract_names_have_no_file_and_work_with_socat_and_nc() {
    require("socat");
    require("nc");
    let name = format!("echotool-test-{}", std::process::id());
    let mut server = Server::start(&["-l", &format!("unix://@{name}")]);
    assert_eq!(server.url(), format!("unix://@{name}"));
    let note = server.proc.line_with("abstract socket");
    assert!(note.contains("no file and no mode"), "{note}");
    let socat = sh(
        &format!("socat -t 2 - ABSTRACT-CONNECT:{name}"),
        b"abstract\n",
    );
    assert_eq!(socat.stdout, b"abstract\n", "{}", socat.stderr);
    let nc = sh(&format!("nc -N -U @{name}"), b"nc @\n");
    assert_eq!(nc.stdout, b"nc @\n", "{}", nc.stderr);
    let out = connect(&["-m", "hello", server.url()], b"");
    assert_eq!(out.stdout, b"hello\n", "{}", out.stderr);
    assert!(
        !Path::new(&format!("@{name}")).exists(),
        "no file in the working directory"
    );

    let gram = Server::start(&["-l", &format!("unixgram://@{name}-d")]);
    let out = connect(&["-m", "datagram", gram.url()], b"");
    assert_eq!(out.stdout, b"datagram\n", "{}", out.stderr);

    let mut taken = echotool();
    taken.args(["serve", "-l", &format!("unix://@{name}")]);
    run(taken, b"").assert_error(1, &["the abstract name", "already in use by a live socket"]);
    let mode = connect(&["-m", "x", "--proto", "tcp", "@x"], b"");
    mode.assert_error(2, &["tcp endpoints have no path", "unix://@x"]);
}

#[test]
fn the_mode_decides_the_socket_files_permissions() {
    let dir = Dir::new("mode");
    let private = dir.path("private.sock");
    let mut server = Server::start(&["-l", &format!("unix://{private}")]);
    assert_eq!(mode_of(&private), 0o600, "the default");
    let note = server.proc.line_with("socket file mode");
    assert!(note.contains("0600: only its owner may connect"), "{note}");
    let shared = dir.path("shared.sock");
    let mut group = Server::start(&["--mode", "0660", "-l", &format!("unix://{shared}")]);
    assert_eq!(mode_of(&shared), 0o660);
    let note = group.proc.line_with("socket file mode");
    assert!(
        note.contains("0660: its owner and group may connect"),
        "{note}"
    );
    let gram = dir.path("everyone.sock");
    let _gram = Server::start(&["--mode", "666", "--proto", "unixgram", "-l", &gram]);
    assert_eq!(mode_of(&gram), 0o666);

    let mut cmd = echotool();
    cmd.args([
        "serve",
        "--mode",
        "0999",
        "-l",
        &format!("unix://{}", dir.path("x.sock")),
    ]);
    run(cmd, b"").assert_error(2, &["--mode", "not a file mode", "octal"]);
    let mut cmd = echotool();
    cmd.args(["serve", "--mode", "0600", "-l", "tcp://127.0.0.1:0"]);
    run(cmd, b"").assert_error(2, &["--mode does nothing for tcp://", "unix and unixgram"]);
    let mut cmd = echotool();
    cmd.args(["serve", "--mode", "0600", "-l", "unix://@no-mode-here"]);
    run(cmd, b"").assert_error(1, &["is an abstract socket: it has no file"]);
}

#[test]
fn a_stale_file_is_replaced_a_live_server_refused_and_other_files_never_removed() {
    let dir = Dir::new("stale");
    let sock = dir.path("e.sock");
    // A socket file whose server is gone: nothing answers on it.
    drop(UnixListener::bind(&sock).unwrap());
    let mut server = Server::start(&["-l", &format!("unix://{sock}")]);
    let removed = server.proc.line_with("removed a stale socket file");
    assert!(removed.contains(&sock), "{removed}");
    let out = connect(&["-m", "fresh", server.url()], b"");
    assert_eq!(out.stdout, b"fresh\n", "{}", out.stderr);

    let mut again = echotool();
    again.args(["serve", "-l", &format!("unix://{sock}")]);
    run(again, b"").assert_error(
        1,
        &[
            &format!("cannot listen on unix://{sock}"),
            "already in use by a live server",
        ],
    );
    let out = connect(&["-m", "still there", server.url()], b"");
    assert_eq!(out.stdout, b"still there\n", "{}", out.stderr);
    let mut both = echotool();
    let other = dir.path("both.sock");
    both.args(["serve", "-l", &format!("unix://{other}"), "-l"])
        .arg(format!("unixgram://{other}"));
    run(both, b"").assert_error(
        2,
        &["both need the socket path", "give one of them another path"],
    );

    let precious = dir.path("precious.txt");
    std::fs::write(&precious, b"keep me").unwrap();
    let mut over = echotool();
    over.args(["serve", "-l", &format!("unix://{precious}")]);
    run(over, b"").assert_error(
        1,
        &[
            "exists and is not a socket (it is a regular file)",
            "never removes it",
        ],
    );
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    drop(server);
}

#[test]
fn the_socket_file_goes_on_sigint_and_sigterm() {
    let dir = Dir::new("exit");
    for (proto, signal) in [
        ("unix", libc::SIGINT),
        ("unix", libc::SIGTERM),
        ("unixgram", libc::SIGTERM),
    ] {
        let sock = dir.path(&format!("{proto}-{signal}.sock"));
        let server = Server::start(&["-l", &format!("{proto}://{sock}")]);
        assert!(Path::new(&sock).exists());
        server.proc.signal(signal);
        let (status, lines) = server.proc.wait();
        assert!(status.success(), "{proto} {signal}: {lines:?}");
        assert!(
            !Path::new(&sock).exists(),
            "{proto} {signal}: {sock} is left"
        );
    }
}

#[test]
fn peer_credentials_are_logged_at_v() {
    let dir = Dir::new("cred");
    let sock = dir.path("e.sock");
    let mut server = Server::start(&["-v", "-l", &format!("unix://{sock}")]);
    let mut client = UnixStream::connect(&sock).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"who am i\n").unwrap();
    let mut echo = [0u8; 9];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"who am i\n");
    let accepted = server.proc.wait_for_line("accepted");
    // SAFETY: getuid and getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let me = format!("peer=pid {} uid {uid} gid {gid}", std::process::id());
    assert!(accepted.contains(&me), "{accepted} lacks {me}");
    drop(client);
    // And the client sees who the server is, with -v.
    let out = connect(&["-v", "-m", "x", server.url()], b"");
    assert!(out.stderr.contains("(server: pid "), "{}", out.stderr);
}

#[test]
fn errors_say_what_is_wrong_with_the_path() {
    let dir = Dir::new("errors");
    let long = format!("/tmp/{}.sock", "x".repeat(110));
    let mut cmd = echotool();
    cmd.args(["serve", "-l", &format!("unix://{long}")]);
    run(cmd, b"").assert_error(
        1,
        &[
            "the socket path is 120 bytes long",
            "holds at most 107",
            "sun_path is 108 bytes",
        ],
    );
    connect(&[&format!("unix://{long}")], b"x").assert_error(1, &["120 bytes long"]);
    let mut cmd = echotool();
    cmd.args(["serve", "-l", "unix:///nonexistent-echotool-dir/e.sock"]);
    run(cmd, b"").assert_error(1, &["no such directory: /nonexistent-echotool-dir"]);

    let nothing = dir.path("nothing.sock");
    connect(&["-m", "x", &format!("unix://{nothing}")], b"")
        .assert_error(1, &["there is no socket at", "echotool serve -l unix://"]);
    let file = dir.path("file.txt");
    std::fs::write(&file, b"").unwrap();
    connect(&["-m", "x", &format!("unix://{file}")], b"").assert_error(1, &["is not a socket"]);
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    connect(&["-m", "x", &format!("unix://{stale}")], b"").assert_error(
        1,
        &["nothing listens on any more", "removes the stale file"],
    );
    let gram = dir.path("gram.sock");
    let server = Server::start(&["-l", &format!("unixgram://{gram}")]);
    connect(&["-m", "x", &format!("unix://{gram}")], b"")
        .assert_error(1, &["of the other type", &format!("use unixgram://{gram}")]);
    drop(server);
    connect(&["-m", "x", "unix://localhost:5"], b"")
        .assert_error(2, &["a unix endpoint is a socket path", "unix://@name"]);
    connect(&["-m", "x", "unix://@"], b"").assert_error(2, &["after @ is empty"]);
}

#[test]
fn permission_denied_is_explained_on_both_sides() {
    let dir = Dir::new("perm");
    let sock = dir.path("e.sock");
    if is_root() {
        // Root passes every permission check, so the other side is the user nobody.
        require("setpriv");
        let bind = run(
            as_nobody(&dir, &["serve", "-l", &format!("unix://{sock}")]),
            b"",
        );
        bind.assert_error(
            1,
            &[
                "permission denied",
                &format!("may not create files in {}", dir.0.display()),
            ],
        );
        let server = Server::start(&["-l", &format!("unix://{sock}")]);
        let denied = run(as_nobody(&dir, &["connect", "-m", "x", server.url()]), b"");
        denied.assert_error(
            1,
            &["permission denied", "--mode", "only the user that runs"],
        );
        drop(server);
        let open = Server::start(&["--mode", "0666", "-l", &format!("unix://{sock}")]);
        let allowed = run(as_nobody(&dir, &["connect", "-m", "x", open.url()]), b"");
        assert_eq!(allowed.stdout, b"x\n", "{}", allowed.stderr);
    } else {
        let closed = Dir::new("perm-closed");
        std::fs::set_permissions(&closed.0, std::fs::Permissions::from_mode(0o500)).unwrap();
        let mut cmd = echotool();
        cmd.args(["serve", "-l", &format!("unix://{}", closed.path("e.sock"))]);
        run(cmd, b"").assert_error(1, &["permission denied", "may not create files in"]);
        std::fs::set_permissions(&closed.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Without write permission even the owner may not connect.
        let server = Server::start(&["--mode", "0400", "-l", &format!("unix://{sock}")]);
        connect(&["-m", "x", server.url()], b"").assert_error(1, &["permission denied"]);
    }
}

#[test]
fn a_config_file_listens_on_a_socket_with_its_mode() {
    let dir = Dir::new("config");
    let sock = dir.path("e.sock");
    let file = dir.path("echotool.toml");
    std::fs::write(
        &file,
        format!("[[listener]]\nlisten = \"unix://{sock}\"\nmode = \"0660\"\nmax-conns = 10\n"),
    )
    .unwrap();
    let mut check = echotool();
    check.args(["config", "check", &file]);
    let out = run(check, b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("unix://{sock}")),
        "{out:?}"
    );
    let server = Server::start(&["--config", &file]);
    assert_eq!(mode_of(&sock), 0o660);
    let echo = connect(&["-m", "configured", server.url()], b"");
    assert_eq!(echo.stdout, b"configured\n", "{}", echo.stderr);
    drop(server);

    // The example's commented Unix listener, uncommented, is a valid listener.
    let example = include_str!("../../../config/echotool.toml")
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(toml)
                if ["[[listener]]", "listen = \"unix", "mode = "]
                    .iter()
                    .any(|start| toml.starts_with(start)) =>
            {
                toml
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, example).unwrap();
    let mut check = echotool();
    check.args(["config", "check", &file]);
    let out = run(check, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("OK, 8 listeners:"), "{listed}");
    assert!(
        listed
            .trim_end()
            .ends_with(", unix:///run/echotool/echo.sock"),
        "{listed}"
    );

    std::fs::write(
        &file,
        format!("[[listener]]\nlisten = \"unix://{sock}\"\nmode = 660\n"),
    )
    .unwrap();
    let mut check = echotool();
    check.args(["config", "check", &file]);
    run(check, b"").assert_error(2, &["line 3, key 'mode'", "as a string such as \"0660\""]);
    std::fs::write(
        &file,
        "[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\nmode = \"0600\"\n",
    )
    .unwrap();
    let mut check = echotool();
    check.args(["config", "check", &file]);
    run(check, b"").assert_error(
        2,
        &[
            "key 'mode'",
            "does nothing for a tcp listener",
            "unix and unixgram",
        ],
    );
}

#[test]
fn bench_measures_unix_latency_and_setup_without_errors() {
    let mut cmd = echotool();
    cmd.args([
        "bench",
        "--proto",
        "unix,unixgram",
        "--scenario",
        "latency,setup",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--json",
    ]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(&str, &str)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap(),
                r["scenario"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("unix", "latency"),
            ("unix", "setup"),
            ("unix", "first-echo"),
            ("unixgram", "latency")
        ]
    );
    for row in report["rows"].as_array().unwrap() {
        let f = &row["median"];
        assert!(f["messages"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(
            (&f["errors"], &f["mismatches"]),
            (&0.into(), &0.into()),
            "{row}"
        );
        assert!(
            row["url"].as_str().unwrap().contains("/echotool-bench-"),
            "{row}"
        );
    }
    for server in report["servers"].as_array().unwrap() {
        assert_eq!(server["errors"], 0, "{server}");
    }
    let dir = report["rows"][0]["url"].as_str().unwrap();
    let dir = Path::new(dir.trim_start_matches("unix://"))
        .parent()
        .unwrap();
    assert!(!dir.exists(), "{} is left after the run", dir.display());
    let mut cmd = echotool();
    cmd.args(["bench", "--proto", "unix", "--link", "delay=1ms"]);
    run(cmd, b"").assert_error(2, &["unix is a local socket", "without --link"]);
}
