//! The one load generator for all three WebSocket servers, independent of all three crates: a
//! hand-written RFC 6455 client (plain tokio TCP, frames built by hand, the handshake checked
//! against the RFC's own example key), so no candidate is measured by its own code.
//!
//!     ws-load latency   ADDR [--secs 5] [--size 64]                    1 connection, 1 in flight
//!     ws-load throughput ADDR [--secs 5] [--size 16384] [--conns 4] [--depth 2]
//!     ws-load setup     ADDR [--secs 5]      TCP + upgrade + one 64 B echo + close, back to back
//!     ws-load idle      ADDR --pid PID [--conns 1000]   server RSS per idle connection
//!
//! Each prints one JSON line on stdout. With `--pid` the server's CPU time over the measured
//! window is reported too, and the client's own CPU share always is (to show the client is not
//! the bottleneck). A warm-up second before every timed mode is excluded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for `KEY`: checking it needs no SHA-1 of our own.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const WARMUP: Duration = Duration::from_secs(1);

type Error = String;

struct Args {
    mode: String,
    addr: SocketAddr,
    secs: u64,
    size: usize,
    conns: usize,
    depth: usize,
    pid: Option<u32>,
}

fn args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: ws-load latency|throughput|setup|idle ADDR [flags]")?;
    let addr = it
        .next()
        .ok_or("missing ADDR")?
        .parse()
        .map_err(|e| format!("ADDR: {e}"))?;
    let mut a = Args {
        mode,
        addr,
        secs: 5,
        size: 0,
        conns: 0,
        depth: 2,
        pid: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--secs" => a.secs = n,
            "--size" => a.size = n as usize,
            "--conns" => a.conns = n as usize,
            "--depth" => a.depth = n as usize,
            "--pid" => a.pid = Some(n as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match (args(), runtime) {
        (Ok(a), Ok(rt)) => rt.block_on(run(a)),
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(e.to_string()),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}

async fn run(a: Args) -> Result<String, Error> {
    let cpu = Cpu::start(a.pid);
    // `ops`: every echo (or connection) of the run, warm-up included, to match the CPU times,
    // which cover the whole run too.
    let (json, ops) = match a.mode.as_str() {
        "latency" => latency(a.addr, a.secs, pick(a.size, 64)).await?,
        "throughput" => throughput(&a).await?,
        "setup" => setup(a.addr, a.secs).await?,
        "idle" => {
            return idle(
                a.addr,
                pick(a.conns, 1000),
                a.pid.ok_or("idle needs --pid")?,
            )
            .await;
        }
        other => return Err(format!("unknown mode {other}")),
    };
    Ok(format!(
        "{{\"mode\":\"{}\",{json},{}}}",
        a.mode,
        cpu.report(ops)
    ))
}

fn pick(value: usize, default: usize) -> usize {
    if value == 0 { default } else { value }
}

/// One client connection after the upgrade: a buffered read half, a write half.
struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

async fn connect(addr: SocketAddr) -> Result<Conn, Error> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (rd, mut wr) = stream.into_split();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    wr.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 {
            return Err("response head too long".into());
        }
        head.push(rd.read_u8().await.map_err(|e| format!("upgrade: {e}"))?);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 101") || !head.contains(&ACCEPT.to_ascii_lowercase()) {
        return Err(format!("not upgraded: {head:?}"));
    }
    Ok(Conn {
        rd,
        wr,
        buf: Vec::new(),
    })
}

/// A masked client frame, built once and sent many times.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

impl Conn {
    /// Reads one whole (unfragmented, unmasked) server frame into `self.buf`; its opcode.
    async fn read_frame(&mut self) -> Result<u8, Error> {
        let io = |e: std::io::Error| format!("read: {e}");
        let b0 = self.rd.read_u8().await.map_err(io)?;
        let b1 = self.rd.read_u8().await.map_err(io)?;
        if b0 & 0x80 == 0 || b1 & 0x80 != 0 {
            return Err(format!("unexpected frame header {b0:#x} {b1:#x}"));
        }
        let len = match b1 & 0x7f {
            126 => self.rd.read_u16().await.map_err(io)? as usize,
            127 => self.rd.read_u64().await.map_err(io)? as usize,
            n => n as usize,
        };
        self.buf.resize(len, 0);
        self.rd.read_exact(&mut self.buf).await.map_err(io)?;
        Ok(b0 & 0x0f)
    }

    /// Reads the echo of `payload` (binary) and checks it.
    async fn expect_echo(&mut self, payload: &[u8]) -> Result<(), Error> {
        let opcode = self.read_frame().await?;
        if opcode != BINARY || self.buf != payload {
            return Err(format!(
                "wrong echo: opcode {opcode}, {} bytes",
                self.buf.len()
            ));
        }
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.wr
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

async fn latency(addr: SocketAddr, secs: u64, size: usize) -> Result<(String, u64), Error> {
    let mut conn = connect(addr).await?;
    let data = payload(size);
    let wire = frame(BINARY, &data);
    let mut samples: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut ops = 0;
    let start = Instant::now();
    let end = start + WARMUP + Duration::from_secs(secs);
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        conn.send(&wire).await?;
        conn.expect_echo(&data).await?;
        ops += 1;
        if t >= start + WARMUP {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let json = format!(
        "\"size\":{size},\"samples\":{},\"p50_us\":{:.2},\"p99_us\":{:.2},\"p999_us\":{:.2}",
        samples.len(),
        q(0.5),
        q(0.99),
        q(0.999)
    );
    Ok((json, ops))
}

async fn throughput(a: &Args) -> Result<(String, u64), Error> {
    let (size, conns, depth) = (pick(a.size, 16384), pick(a.conns, 4), a.depth.max(1));
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + Duration::from_secs(a.secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let addr = a.addr;
        tasks.spawn(async move {
            let mut conn = connect(addr).await?;
            let data = payload(size);
            let wire = frame(BINARY, &data);
            for _ in 0..depth {
                conn.send(&wire).await?;
            }
            let (mut counted, mut all) = (0u64, 0u64);
            loop {
                conn.expect_echo(&data).await?;
                all += 1;
                let now = Instant::now();
                if now >= end {
                    return Ok::<(u64, u64), Error>((counted, all));
                }
                if now >= measure_from {
                    counted += 1;
                }
                conn.send(&wire).await?;
            }
        });
    }
    let (mut messages, mut ops) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (counted, all) = done.map_err(|e| e.to_string())??;
        messages += counted;
        ops += all;
    }
    let secs = a.secs as f64;
    let json = format!(
        "\"size\":{size},\"conns\":{conns},\"depth\":{depth},\"messages\":{messages},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.1}",
        messages as f64 / secs,
        messages as f64 * size as f64 / secs / 1e6
    );
    Ok((json, ops))
}

async fn setup(addr: SocketAddr, secs: u64) -> Result<(String, u64), Error> {
    let data = payload(64);
    let wire = frame(BINARY, &data);
    let close = frame(CLOSE, &1000u16.to_be_bytes());
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + Duration::from_secs(secs);
    let mut samples = Vec::new();
    let mut ops = 0;
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        let mut conn = connect(addr).await?;
        conn.send(&wire).await?;
        conn.expect_echo(&data).await?;
        conn.send(&close).await?;
        // The close handshake: the server echoes the status code, then closes.
        if conn.read_frame().await? != CLOSE || conn.buf.get(..2) != Some(&[0x03, 0xe8][..]) {
            return Err(format!("no close 1000 echoed: {:?}", conn.buf));
        }
        ops += 1;
        if t >= measure_from {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let json = format!(
        "\"connections\":{},\"per_s\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1}",
        samples.len(),
        samples.len() as f64 / secs as f64,
        q(0.5),
        q(0.99)
    );
    Ok((json, ops))
}

async fn idle(addr: SocketAddr, count: usize, pid: u32) -> Result<String, Error> {
    let base = rss_kib(pid)?;
    let data = payload(64);
    let wire = frame(BINARY, &data);
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = connect(addr).await?;
        conn.send(&wire).await?;
        conn.expect_echo(&data).await?;
        conns.push(conn);
    }
    // Every connection has had its echo; the server has nothing left to do. Give freed
    // buffers a moment to be returned (a measurement pause, not a synchronisation).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid)?;
    drop(conns);
    Ok(format!(
        "{{\"mode\":\"idle\",\"conns\":{count},\"rss_base_kib\":{base},\"rss_idle_kib\":{idle},\"bytes_per_conn\":{:.0}}}",
        (idle.saturating_sub(base)) as f64 * 1024.0 / count as f64
    ))
}

fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no VmRSS for pid {pid}"))
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat (in clock ticks of 1/100 s).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds all CPUs spent busy (not idle, not waiting for I/O), from /proc/stat.
fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = fields.iter().take(8).sum::<u64>() - fields.get(3)? - fields.get(4)?;
    Some(busy as f64 / 100.0)
}

/// The client's and (with `--pid`) the server's CPU share over the whole run, and the share of
/// everything else on the machine ("foreign"): other engineers' builds show up there, and a
/// measurement with much of it is repeated by run.sh.
struct Cpu {
    start: Instant,
    client: Option<f64>,
    server: Option<(u32, f64)>,
    machine: Option<f64>,
}

impl Cpu {
    fn start(pid: Option<u32>) -> Cpu {
        Cpu {
            start: Instant::now(),
            client: cpu_secs("self"),
            server: pid.and_then(|p| Some((p, cpu_secs(&p.to_string())?))),
            machine: machine_busy_secs(),
        }
    }

    /// The CPU shares, and the server's CPU time per operation (`ops` over the whole run).
    fn report(&self, ops: u64) -> String {
        let wall = self.start.elapsed().as_secs_f64();
        let used = |before: Option<f64>, pid: &str| Some(cpu_secs(pid)? - before?);
        let client = used(self.client, "self");
        let server = self
            .server
            .and_then(|(pid, before)| used(Some(before), &pid.to_string()));
        let foreign = match (machine_busy_secs(), self.machine) {
            (Some(after), Some(before)) => {
                Some((after - before - client.unwrap_or(0.0) - server.unwrap_or(0.0)).max(0.0))
            }
            _ => None,
        };
        let share = |secs: Option<f64>| secs.map_or("null".into(), |s| format!("{:.2}", s / wall));
        let per_op = server
            .filter(|_| ops > 0)
            .map_or("null".into(), |s| format!("{:.2}", s * 1e6 / ops as f64));
        format!(
            "\"client_cpu\":{},\"server_cpu\":{},\"foreign_cpu\":{},\"ops\":{ops},\"server_us_per_op\":{per_op}",
            share(client),
            share(server),
            share(foreign)
        )
    }
}
