//! A server that keeps working under load, faults and bad input, and says what happened.
//! Each test provokes one situation with real clients on loopback and checks the outcome; no
//! byte is ever lost or altered for a well-behaved client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn dial(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `msg` and reads exactly its echo.
fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).expect("echo");
    assert_same_bytes(&back, msg);
}

/// Nothing arrives within `within` (a bounded wait for absence).
fn silent(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1];
    let result = s.read(&mut buf);
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    matches!(result, Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut)
}

/// Reads until end of stream or reset; true if the peer closed.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Raises this process's open-file limit to its hard limit.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid, initialised struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// `echotool ARGS` under a shell that sets `ulimit -n`.
fn serve_with_fd_limit(limit: u64, args: &str) -> (Running, SocketAddr) {
    let bin = env!("CARGO_BIN_EXE_echotool");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {limit} && exec {bin} {args}"));
    cmd.env_remove("RUST_LOG");
    let mut proc = Running::spawn(cmd);
    let addr = proc.listening_addr().parse().unwrap();
    (proc, addr)
}

#[test]
fn beyond_max_conns_new_connections_wait_and_existing_ones_are_unaffected() {
    let server = Server::start(&["-l", ":0", "--max-conns", "2"]);
    let addr = server.socket_addr();
    let mut a = dial(addr);
    let mut b = dial(addr);
    echo(&mut a, b"a");
    echo(&mut b, b"b");
    let mut c = dial(addr);
    c.write_all(b"c").unwrap();
    assert!(
        silent(&mut c, Duration::from_millis(300)),
        "the third waits"
    );
    echo(&mut b, b"still b");
    drop(a);
    let mut back = [0u8; 1];
    c.read_exact(&mut back).expect("served once a slot frees");
    assert_eq!(&back, b"c");
}

#[test]
fn beyond_max_conns_new_connections_can_be_refused() {
    let server = Server::start(&["-l", ":0", "--max-conns", "1", "--on-limit", "refuse"]);
    let addr = server.socket_addr();
    let mut a = dial(addr);
    echo(&mut a, b"first");
    let mut b = dial(addr);
    let _ = b.write_all(b"second");
    assert!(closed(&mut b), "refused at once");
    echo(&mut a, b"first, again");
    drop(a);
    let (_, lines) = server.stop();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary"))
        .unwrap_or_else(|| panic!("no summary in {lines:#?}"));
    assert!(summary.ends_with("1 refused"), "{summary}");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout_and_logged_with_their_peer() {
    let mut cmd = echotool();
    cmd.args(["-v", "serve", "-l", ":0", "--idle-timeout", "300ms"]);
    let mut proc = Running::spawn(cmd);
    let addr: SocketAddr = proc.listening_addr().parse().unwrap();
    let mut s = dial(addr);
    echo(&mut s, b"hello");
    let started = Instant::now();
    assert!(closed(&mut s), "closed when idle");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the timeout"
    );
    // The sweep ends the task; the connection itself says who it was.
    let line = proc.wait_for_line("closed: idle timeout");
    let peer = s.local_addr().unwrap().to_string();
    assert!(line.contains(&format!("peer={peer}")), "{line}");
}

#[test]
fn a_client_that_never_reads_costs_a_bounded_amount_and_others_keep_going() {
    let server = Server::start(&["-l", ":0"]);
    let addr = server.socket_addr();
    let pid = server.proc.child.id();
    let mut warm = dial(addr);
    echo(&mut warm, &random_bytes(64 * 1024, 1));
    let before = rss_kib(pid);
    let hog = dial(addr);
    // Panics if the server keeps reading 256 MiB from a client that does not read.
    let pushed = fill_until_the_server_stops_reading(&hog);
    let after = rss_kib(pid);
    // Meanwhile another client gets every echo.
    let mut other = dial(addr);
    for i in 0..200 {
        echo(&mut other, &random_bytes(16 * 1024, i));
    }
    eprintln!("client pushed {pushed} bytes without reading; server RSS {before} -> {after} KiB");
    assert!(
        after < before + 2048,
        "server memory grew by {} KiB",
        after - before
    );
}

#[test]
fn after_a_half_close_the_client_still_gets_the_rest_of_its_echo() {
    let server = Server::start(&["-l", ":0"]);
    let mut s = dial(server.socket_addr());
    let data = random_bytes(1 << 20, 2);
    let writer = {
        let mut w = s.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_same_bytes(&back, &data);
}

#[test]
fn resets_and_dying_clients_are_logged_and_disturb_nobody() {
    let mut cmd = echotool();
    cmd.args(["-v", "serve", "-l", ":0"]);
    let mut proc = Running::spawn(cmd);
    let addr: SocketAddr = proc.listening_addr().parse().unwrap();
    let mut bystander = dial(addr);
    echo(&mut bystander, b"before");

    // RST mid-stream: SO_LINGER 0, then close with data unread.
    let rude = socket2::Socket::from(dial(addr));
    rude.set_linger(Some(Duration::ZERO)).unwrap();
    let mut rude = TcpStream::from(rude);
    rude.write_all(&random_bytes(256 * 1024, 3)).unwrap();
    drop(rude);
    proc.wait_for_line("connection error");

    // A client process killed mid-stream.
    let mut client = echotool();
    client.args(["connect", "--mode", "pipe", &addr.to_string()]);
    client.stdin(std::process::Stdio::piped());
    let mut child = client.stdout(std::process::Stdio::null()).spawn().unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&random_bytes(128 * 1024, 4))
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    echo(&mut bystander, b"after");
    let mut fresh = dial(addr);
    echo(&mut fresh, b"newcomer");
    proc.signal(libc::SIGTERM);
    let (status, lines) = proc.wait();
    assert!(status.success(), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("ERROR")), "{lines:#?}");
}

#[test]
fn out_of_file_descriptors_accept_backs_off_without_spinning_and_recovers() {
    let (mut proc, addr) = serve_with_fd_limit(64, "serve -l :0");
    let pid = proc.child.id();
    // More clients than the server has descriptors; those not accepted wait in the backlog.
    let mut clients: Vec<TcpStream> = (0..80).map(|_| dial(addr)).collect();
    proc.wait_for_line("cannot accept connections");
    let cpu_before = cpu_seconds(pid);
    let window = Instant::now();
    // A measurement window, not synchronisation: how much CPU does the server burn while it
    // cannot accept? A busy loop would take the whole second.
    thread::sleep(Duration::from_secs(1));
    let used = cpu_seconds(pid) - cpu_before;
    let elapsed = window.elapsed().as_secs_f64();
    assert!(
        used < 0.3 * elapsed,
        "server used {used:.2}s of CPU in {elapsed:.2}s while stuck"
    );
    // Everyone accepted so far is still served.
    echo(&mut clients[0], b"still here");
    clients.truncate(10);
    proc.wait_for_line("accepting connections again");
    let mut late = dial(addr);
    echo(&mut late, b"recovered");
    for c in clients.iter_mut() {
        echo(c, b"all of us");
    }
    drop(clients);
    proc.signal(libc::SIGINT);
    let (status, _) = proc.wait();
    assert!(status.success());
}

/// A server confined to one CPU (`taskset -c 0`, as benches/compare.sh runs it) runs on
/// tokio's current-thread scheduler: every transport still echoes, and SIGTERM still drains
/// and sums up.
#[test]
fn a_server_on_one_cpu_echoes_every_protocol_and_drains_on_sigterm() {
    require("taskset");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", env!("CARGO_BIN_EXE_echotool"), "-v", "serve"])
        .env_remove("RUST_LOG");
    for proto in ["tcp", "udp", "tls", "quic"] {
        cmd.args(["-l", &format!("{proto}://127.0.0.1:0")]);
    }
    let mut proc = Running::spawn(cmd);
    proc.wait_for_line("runtime: one CPU, so tokio's current-thread scheduler");
    let urls = proc.listening_urls(4);
    for url in &urls {
        let mut args = vec!["-m", "on one CPU", url];
        if url.starts_with("tls") || url.starts_with("quic") {
            args.push("--insecure");
        }
        let out = connect(&args, b"");
        assert_eq!(out.stdout, b"on one CPU\n", "{url}: {}", out.stderr);
    }
    proc.signal(libc::SIGTERM);
    let (status, lines) = proc.wait();
    assert!(status.success(), "{lines:#?}");
    for url in &urls {
        let want = format!("summary {url}: ");
        assert!(
            lines.iter().any(|l| l.contains(&want)),
            "{want} in {lines:#?}"
        );
    }
}

#[test]
fn sigterm_finishes_in_flight_echoes_then_exits_zero_with_a_summary() {
    let server = Server::start(&["-l", ":0"]);
    let addr = server.socket_addr();
    let url = server.url().to_string();
    let mut s = dial(addr);
    let data = random_bytes(64 * 1024, 5);
    s.write_all(&data).unwrap();
    // Make sure the server has the bytes before it is told to stop.
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    server.proc.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut back = first.to_vec();
    back.extend(rest);
    assert_same_bytes(&back, &data);
    let (status, lines) = server.proc.wait();
    assert!(status.success(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("terminated: finishing in-flight echoes")),
        "{lines:#?}"
    );
    let want = format!("summary {url}: 1 connection, ");
    let summary = lines
        .iter()
        .find(|l| l.starts_with(&want))
        .expect("summary");
    assert!(
        summary.contains("65536 bytes in, 65536 bytes out, 0 errors"),
        "{summary}"
    );
}

#[test]
fn the_drain_timeout_cuts_clients_that_never_read() {
    let server = Server::start(&["-l", ":0", "--drain-timeout", "300ms"]);
    let addr = server.socket_addr();
    let hog = dial(addr);
    let _ = fill_until_the_server_stops_reading(&hog);
    let started = Instant::now();
    server.proc.signal(libc::SIGTERM);
    let (status, lines) = server.proc.wait();
    assert!(status.success(), "{lines:#?}");
    assert!(started.elapsed() < PATIENCE);
    assert!(
        lines.iter().any(|l| l.starts_with("summary ")),
        "{lines:#?}"
    );
    // After shutdown began the port is closed: nobody new is accepted.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn json_logs_carry_structured_fields_and_rust_log_overrides_flags() {
    let mut cmd = echotool();
    cmd.args(["-v", "--log-format", "json", "serve", "-l", ":0"]);
    let mut proc = Running::spawn(cmd);
    let line = proc.wait_for_line("listening on");
    let event: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let listener = event["listener"].as_str().unwrap().to_string();
    let addr = listener.rsplit("://").next().unwrap().to_string();
    let out = connect(&["-m", "structured", &addr], b"");
    assert_eq!(out.stdout, b"structured\n");
    let closed = proc.wait_for_line("\"closed\"");
    let event: serde_json::Value = serde_json::from_str(&closed).unwrap();
    assert_eq!(event["listener"], listener.as_str());
    assert!(event["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(event["bytes"], 11);
    proc.signal(libc::SIGINT);
    let (_, lines) = proc.wait();
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    let mut quiet = echotool();
    quiet
        .env("RUST_LOG", "error")
        .args(["-v", "serve", "-l", ":0"]);
    let mut proc = Running::spawn(quiet);
    let addr = proc.listening_addr();
    connect(&["-m", "x", &addr], b"");
    proc.signal(libc::SIGINT);
    let (_, lines) = proc.wait();
    assert!(
        !lines.iter().any(|l| l.contains("DEBUG")),
        "RUST_LOG wins: {lines:#?}"
    );
}

#[test]
fn a_non_loopback_bind_says_so() {
    let mut server = Server::start(&["-l", "0.0.0.0:0"]);
    let notice = server.proc.wait_for_line("notice:");
    assert!(
        notice.contains("accepts connections from other machines"),
        "{notice}"
    );
    let port = server.port();
    let out = connect(&["-m", "local", &format!("127.0.0.1:{port}")], b"");
    assert_eq!(out.stdout, b"local\n");
    let quiet = Server::start(&["-l", "[::1]:0"]);
    let (_, lines) = quiet.stop();
    assert!(!lines.iter().any(|l| l.starts_with("notice:")), "{lines:?}");
}

#[test]
fn ten_thousand_concurrent_connections_all_echo_exact() {
    let limit = raise_fd_limit();
    assert!(
        limit >= 10_100,
        "need 10100 open files, the hard limit is {limit}"
    );
    let (proc, addr) = serve_with_fd_limit(limit, "serve -l :0");
    let pid = proc.child.id();
    let base = rss_kib(pid);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        conns.push(dial(addr));
    }
    // Every connection sends its own message before any reads, so all are open and busy at
    // once; then every echo is checked.
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("connection {i:05}\n").as_bytes())
            .unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let want = format!("connection {i:05}\n");
        let mut back = vec![0; want.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, want.as_bytes());
    }
    let idle = rss_kib(pid);
    let per_conn = (idle.saturating_sub(base)) * 1024 / 10_000;
    eprintln!("10000 idle connections: server RSS {base} -> {idle} KiB, {per_conn} bytes each");
    // Idle connections hold no echo buffer; a 16 KiB buffer each would show as 160 MB.
    assert!(per_conn < 8 * 1024, "{per_conn} bytes per idle connection");
    drop(conns);
    drop(proc);
}
