//! Test harness: start the real `echotool` binary and real peers (socat, nc, ncat, openssl) on
//! loopback, wait for the lines and ports they announce, never sleep to synchronise, and bound
//! every wait.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn echotool() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echotool"));
    cmd.env_remove("RUST_LOG").env_remove("SSLKEYLOGFILE");
    cmd
}

/// The Python that runs the tests' Python peers (aioquic, ...): the virtual environment that
/// scripts/test.sh makes and names in `ECHOTOOL_TEST_PYTHON`, else `python3`.
pub fn python() -> Command {
    Command::new(std::env::var_os("ECHOTOOL_TEST_PYTHON").unwrap_or_else(|| "python3".into()))
}

/// Panics with a useful message when a peer program the tests need is missing.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed; run the test suite with scripts/test.sh, which installs it"
    );
}

/// A fresh, empty directory of the test's own under the system's temporary directory,
/// `echotool-TAG-PID-N`, removed when dropped. It dereferences to its path.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory for `tag` (a test's name or what it holds).
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("echotool-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// `echotool certs` into this directory: `ca.pem`, `server.pem`, `server-key.pem`,
    /// `client.pem`, `client-key.pem`.
    pub fn with_certs(self) -> TempDir {
        let mut cmd = echotool();
        cmd.args(["certs", "--out", &self.0.display().to_string(), "--force"]);
        let out = run(cmd, b"");
        assert!(out.status.success(), "{}", out.stderr);
        self
    }

    /// The path of `name` in this directory, for a command line.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// `--cert` and `--key` of the server certificate [`TempDir::with_certs`] wrote.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--cert".into(),
            self.file("server.pem"),
            "--key".into(),
            self.file("server-key.pem"),
        ]
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Panics (never skips: CI must run the tests) when the tests' Python cannot import `module`,
/// a Python peer such as aioquic or websockets.
pub fn require_python_module(module: &str) {
    let ok = python()
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Python's {module} is not installed; run the test suite with scripts/test.sh, which \
         installs it (or set ECHOTOOL_TEST_PYTHON to a Python that has it)"
    );
}

/// A child process whose stderr lines arrive on a channel, killed when dropped.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `cmd` with stderr captured line by line.
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for `n` `listening on` lines of a server and returns their URLs, in order.
    pub fn listening_urls(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let line = self.wait_for_line("listening on ");
                let url = line.rsplit("listening on ").next().expect("split");
                url.trim().to_string()
            })
            .collect()
    }

    /// Waits for a server's first `listening on` line and returns the address its URL names
    /// (`127.0.0.1:5555` of `tcp://127.0.0.1:5555`).
    pub fn listening_addr(&mut self) -> String {
        let url = self.listening_urls(1).remove(0);
        url.rsplit("://").next().expect("split").to_string()
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} within {PATIENCE:?}; saw {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "exited ({status:?}) before printing {needle:?}; saw {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// A stderr line containing `needle`, whether it has already been read or not.
    pub fn line_with(&mut self, needle: &str) -> String {
        match self.seen.iter().find(|l| l.contains(needle)) {
            Some(line) => line.clone(),
            None => self.wait_for_line(needle),
        }
    }

    /// Sends a signal (e.g. libc SIGINT = 2) to the process.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, returning its status and every stderr line.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return (status, std::mem::take(&mut self.seen));
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.seen.push(line),
                Err(_) if Instant::now() > deadline => {
                    panic!("did not exit within {PATIENCE:?}; saw {:#?}", self.seen)
                }
                Err(_) => {}
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `echotool serve`.
pub struct Server {
    pub proc: Running,
    /// Every `listening on` URL, in order.
    pub urls: Vec<String>,
}

impl Server {
    /// Starts `echotool serve ARGS` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        Self::start_n(args, 1)
    }

    /// Starts `echotool serve ARGS` and waits for `n` `listening on` lines.
    pub fn start_n(args: &[&str], n: usize) -> Server {
        let mut cmd = echotool();
        cmd.arg("serve").args(args);
        let mut proc = Running::spawn(cmd);
        let urls = proc.listening_urls(n);
        Server { proc, urls }
    }

    /// The first listener's URL.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// The first listener's `HOST:PORT` (IPv6 in brackets).
    pub fn addr(&self) -> String {
        self.url().split_once("://").expect("url").1.to_string()
    }

    /// The first listener's port.
    pub fn port(&self) -> u16 {
        self.addr().rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The first listener's socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr().parse().expect("socket address")
    }

    /// Stops with SIGINT and returns the exit status and stderr lines.
    pub fn stop(self) -> (ExitStatus, Vec<String>) {
        self.proc.signal(2);
        self.proc.wait()
    }
}

/// What a finished command produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Asserts a clean `error: ...` line (no panic, no debug dump) and the exit code.
    pub fn assert_error(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code(), code, "exit code; stderr: {}", self.stderr);
        // Warnings may come before the one error line; only clap's usage and pointer to --help
        // after it.
        let lines: Vec<&str> = self.stderr.lines().collect();
        let errors: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one error line in: {}", self.stderr);
        for after in &lines[errors[0] + 1..] {
            assert!(
                after.is_empty()
                    || after.starts_with("Usage: ")
                    || after.starts_with("For more information, try"),
                "after the error: {after:?} in {}",
                self.stderr
            );
        }
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{needle:?} missing in: {}",
                self.stderr
            );
        }
        for dump in ["panicked", "RUST_BACKTRACE", "Os {", "Custom {", "kind:"] {
            assert!(
                !self.stderr.contains(dump),
                "debug output in: {}",
                self.stderr
            );
        }
    }
}

/// Runs `cmd` with `input` on stdin, waiting at most [`PATIENCE`].
pub fn run(cmd: Command, input: &[u8]) -> Outcome {
    run_within(cmd, input, PATIENCE)
}

/// Runs `cmd` with `input` on stdin, waiting at most `patience`: for a command that measures
/// for a known time longer than [`PATIENCE`] allows.
pub fn run_within(mut cmd: Command, input: &[u8], patience: Duration) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf);
        buf
    });
    let deadline = Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} did not finish within {patience:?}; stderr: {}",
                cmd.get_args().collect::<Vec<_>>(),
                err.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    feeder.join().unwrap();
    Outcome {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `echotool connect ARGS` with `input` on stdin.
pub fn connect(args: &[&str], input: &[u8]) -> Outcome {
    let mut cmd = echotool();
    cmd.arg("connect").args(args);
    run(cmd, input)
}

/// Runs a shell pipeline (for peers like `socat` and `nc`).
pub fn sh(script: &str, input: &[u8]) -> Outcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    run(cmd, input)
}

/// A port below the kernel's ephemeral range (32768 and up), so no client socket of a
/// parallel test can take it between our check and the peer's bind, and a probe connection
/// can never connect to itself.
fn port_outside_ephemeral_range(free: impl Fn(u16) -> bool) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 600) as u16 * 20;
    for _ in 0..12_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (start - 20_000 + offset) % 12_000;
        if free(port) {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// A TCP port that was free a moment ago, for peers that cannot report the port they took.
pub fn free_tcp_port() -> u16 {
    port_outside_ephemeral_range(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    port_outside_ephemeral_range(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// Starts a TCP peer that cannot say which port it took (socat, ncat): `args` gets a free port
/// and returns the peer's arguments. Waits until the port accepts; the peer is killed when the
/// returned [`Running`] is dropped.
pub fn tcp_peer(program: &str, args: impl FnOnce(u16) -> Vec<String>) -> (Running, u16) {
    require(program);
    let port = free_tcp_port();
    let mut cmd = Command::new(program);
    cmd.args(args(port));
    let peer = Running::spawn(cmd);
    wait_for_tcp_port(&format!("127.0.0.1:{port}"));
    (peer, port)
}

/// Waits until something accepts TCP connections on `addr`: polls with a bounded number of
/// attempts, each failing fast on loopback.
pub fn wait_for_tcp_port(addr: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        // A connection to oneself (simultaneous open) is not a listener.
        if let Ok(s) = TcpStream::connect(addr) {
            if s.local_addr().ok() != s.peer_addr().ok() {
                return;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing accepted connections on {addr} within {PATIENCE:?}");
}

/// How long an echo connection's socket must stay unwritable before the server counts as no
/// longer reading it (see [`fill_until_the_server_stops_reading`]).
pub const STOPPED_READING: Duration = Duration::from_secs(1);

/// Writes to `stream`, an echo connection whose echo this side never reads, until the server
/// stops reading it: the server is then blocked writing the echo back, with data in flight.
///
/// A write that would block means only that the server is behind, until the socket has stayed
/// unwritable for [`STOPPED_READING`]: a server that still reads frees a third of the send
/// buffer in milliseconds. Fifty yields, the test used before, were a weak sign of that: CI
/// once saw a drain meant to wait for such a connection end at once (the metrics port refused
/// while the test expected "stopping"), which is what happens when the server was only behind
/// and then echoed everything into the socket buffers. Returns the bytes written; bounded in
/// bytes (256 MiB: a server still reading by then buffers without bound) and in time
/// ([`PATIENCE`]).
pub fn fill_until_the_server_stops_reading(stream: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut writer = stream;
    stream.set_nonblocking(true).unwrap();
    let chunk = vec![1u8; 64 * 1024];
    let deadline = Instant::now() + PATIENCE;
    let mut pushed = 0usize;
    while pushed < 256 << 20 && Instant::now() < deadline {
        match writer.write(&chunk) {
            Ok(0) => panic!("the server closed the connection it was to echo"),
            Ok(n) => pushed += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut waiting = libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let millis = libc::c_int::try_from(STOPPED_READING.as_millis()).unwrap();
                // SAFETY: one valid `pollfd`, alive for the call.
                let ready = unsafe { libc::poll(&mut waiting, 1, millis) };
                if ready == 0 {
                    return pushed;
                }
                let err = std::io::Error::last_os_error();
                assert!(
                    ready > 0 || err.kind() == std::io::ErrorKind::Interrupted,
                    "waiting for the connection to be writable: {err}"
                );
            }
            Err(e) => panic!("writing to the server: {e}"),
        }
    }
    panic!(
        "the server kept reading ({pushed} bytes) from a client that does not read: its echo \
         never blocked"
    );
}

/// Waits until something echoes UDP datagrams on `addr`: bounded attempts, each a datagram
/// and a short wait for its echo (refused just means "not yet").
pub fn wait_for_udp_echo(addr: &str) {
    let socket = UdpSocket::bind(if addr.starts_with('[') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    socket.connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16];
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let _ = socket.send(b"ready?");
        match socket.recv(&mut buf) {
            Ok(_) => return,
            // Refused comes back at once: pause before the next try instead of spinning.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(_) => {}
        }
    }
    panic!("nothing echoed UDP on {addr} within {PATIENCE:?}");
}

/// Sends `line` through `openssl s_client -quiet` to 127.0.0.1:`port` (with `extra` flags)
/// and returns the line that came back and s_client's stderr. s_client keeps the session open
/// after end of input, so the echo is awaited (bounded) and s_client is then stopped.
pub fn s_client_echo(port: u16, extra: &[&str], line: &str) -> (String, String) {
    require("openssl");
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let (tx, rx) = channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut echoed = String::new();
        let _ = BufReader::new(stdout).read_line(&mut echoed);
        let _ = tx.send(echoed);
    });
    let echoed = rx.recv_timeout(PATIENCE).unwrap_or_default();
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait for openssl");
    (echoed, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Asserts two byte strings are equal, reporting the first difference instead of dumping both.
pub fn assert_same_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "bytes differ: got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            at.or(Some(got.len().min(want.len())))
        );
    }
}

/// A self-signed certificate made the usual way, `openssl req -x509` (which marks it as a CA:
/// basic constraints CA:TRUE), for `cn` with the names `san` (e.g.
/// `DNS:localhost,IP:127.0.0.1`) if any. Writes `STEM.pem` and `STEM-key.pem` into `dir` and
/// returns their paths.
pub fn openssl_self_signed(
    dir: &std::path::Path,
    stem: &str,
    cn: &str,
    san: Option<&str>,
) -> (String, String) {
    require("openssl");
    let cert = dir.join(format!("{stem}.pem")).display().to_string();
    let key = dir.join(format!("{stem}-key.pem")).display().to_string();
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args([
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            &format!("/CN={cn}"),
        ]);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    let out = run(cmd, b"");
    assert!(out.status.success(), "openssl req: {}", out.stderr);
    let text = run(
        {
            let mut show = Command::new("openssl");
            show.args(["x509", "-noout", "-text", "-in", &cert]);
            show
        },
        b"",
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "openssl made no CA certificate; this test needs one"
    );
    (cert, key)
}

/// The `summary PROTO://...` line among a stopped server's stderr lines.
pub fn summary_line(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| l.starts_with("summary "))
        .unwrap_or_else(|| panic!("no summary in {lines:#?}"))
        .clone()
}

/// `protocol scenario` of every row of an `echotool bench --json` report, in order.
pub fn row_names(report: &serde_json::Value) -> Vec<String> {
    let rows = report["rows"].as_array().expect("rows");
    rows.iter()
        .map(|r| {
            format!(
                "{} {}",
                r["protocol"].as_str().unwrap(),
                r["scenario"].as_str().unwrap()
            )
        })
        .collect()
}
