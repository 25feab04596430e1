//! `echo-peer-tokio`: a minimal, idiomatic tokio echo server, TCP or UDP.
//!
//! This is the baseline of echotool's benchmarks: echotool's server should do at least as well
//! ("≥ 1.0×") as the echo server anyone would write in a few lines of tokio, modelled on tokio's
//! own `examples/echo.rs`. So it is deliberately not hand-optimised: a multi-thread runtime, one
//! task per connection with a 64 KiB buffer, read then `write_all`; for UDP one socket in a
//! `recv_from`/`send_to` loop. The only addition is `TCP_NODELAY`, which every server in the
//! comparison sets.
//!
//! Usage: `echo-peer-tokio tcp|udp [ADDR:PORT]` (default `127.0.0.1:0`). Prints
//! `listening on tcp://IP:PORT` (or `udp://`) to stderr once bound; exits 0 on Ctrl-C or SIGTERM.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const USAGE: &str = "usage: echo-peer-tokio tcp|udp [ADDR:PORT]   (default 127.0.0.1:0)";

#[tokio::main]
async fn main() -> ExitCode {
    // `args_os`: `args` would panic on an argument that is not UTF-8.
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(args) => args,
        Err(_) => return fail(USAGE),
    };
    let (proto, addr) = match args.as_slice() {
        [proto] => (proto.as_str(), "127.0.0.1:0"),
        [proto, addr] => (proto.as_str(), addr.as_str()),
        _ => return fail(USAGE),
    };
    // `biased`: the signal handlers are installed before the listening line is printed.
    let served = match proto {
        "tcp" => tokio::select! { biased; r = shutdown_signal() => r, r = serve_tcp(addr) => r },
        "udp" => tokio::select! { biased; r = shutdown_signal() => r, r = serve_udp(addr) => r },
        _ => return fail(USAGE),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{addr}: {e}")),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

async fn serve_tcp(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                tokio::spawn(async move {
                    // A connection's error (e.g. reset by the peer) ends that connection only.
                    let _ = echo(socket).await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning or dying.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn echo(mut socket: TcpStream) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        socket.write_all(&buf[..n]).await?;
    }
    socket.shutdown().await
}

async fn serve_udp(addr: &str) -> io::Result<()> {
    let socket = UdpSocket::bind(addr).await?;
    eprintln!("listening on udp://{}", socket.local_addr()?);
    let mut buf = vec![0; 64 * 1024];
    loop {
        // One bad datagram or unreachable sender must not stop the server.
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let _ = socket.send_to(&buf[..n], peer).await;
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! { r = tokio::signal::ctrl_c() => r, _ = term.recv() => Ok(()) }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
