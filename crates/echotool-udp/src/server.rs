//! The UDP echo server: a group of SO_REUSEPORT sockets, each with its own receive loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use echotool_core::resolve;
use echotool_core::{
    EchoStats, Error, Family, HostPort, Result, ServeContext, Server, ServerOptions, async_trait,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::debug;

use crate::guard::{RateLimiter, Verdict, judge};

/// A bound UDP echo server.
#[derive(Debug)]
pub struct UdpServer {
    sockets: Vec<UdpSocket>,
    local: SocketAddr,
    limiter: Option<Arc<RateLimiter>>,
}

impl UdpServer {
    /// Binds `opts.datagram.workers` sockets (default: one per CPU) to one address.
    ///
    /// A first, exclusive bind checks the port is free: SO_REUSEPORT alone would let a second
    /// server join an existing group silently and steal half its traffic.
    pub async fn bind(url: &str, addr: &HostPort, opts: &ServerOptions) -> Result<Self> {
        let bind_err = |source| Error::Bind {
            url: url.to_string(),
            source,
        };
        let wanted = resolve(addr, Family::Any).await?[0];
        let local = {
            let probe = udp_socket(wanted, false, opts).map_err(bind_err)?;
            probe.bind(&wanted.into()).map_err(bind_err)?;
            probe
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| bind_err(io::Error::other("no local address")))?
        };
        let workers = opts
            .datagram
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let mut sockets = Vec::with_capacity(workers);
        for _ in 0..workers {
            let socket = udp_socket(local, true, opts).map_err(bind_err)?;
            socket.bind(&local.into()).map_err(bind_err)?;
            sockets.push(UdpSocket::from_std(socket.into()).map_err(bind_err)?);
        }
        Ok(UdpServer {
            sockets,
            local,
            limiter: opts
                .datagram
                .rate_limit
                .map(|r| Arc::new(RateLimiter::new(r))),
        })
    }
}

fn udp_socket(addr: SocketAddr, reuse_port: bool, opts: &ServerOptions) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_port(reuse_port)?;
    if let Some(size) = opts.socket.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = opts.socket.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[async_trait]
impl Server for UdpServer {
    fn local_addr(&self) -> HostPort {
        HostPort::from(self.local)
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        let workers: Vec<_> = self
            .sockets
            .into_iter()
            .map(|socket| {
                let worker = Worker {
                    socket,
                    limiter: self.limiter.clone(),
                    stats: ctx.stats.clone(),
                    url: ctx.url.clone(),
                };
                let shutdown = ctx.shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = worker.run() => {}
                        () = shutdown.cancelled() => {}
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
        Ok(())
    }
}

/// One socket of the group and its receive-echo loop.
struct Worker {
    socket: UdpSocket,
    limiter: Option<Arc<RateLimiter>>,
    stats: Arc<EchoStats>,
    url: String,
}

impl Worker {
    async fn run(self) {
        // One byte more than any UDP payload, so nothing is ever truncated.
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(err) => {
                    // ICMP errors from earlier sends surface here on some systems; they concern
                    // one peer, never the server.
                    self.stats.record_error();
                    debug!(listener = %self.url, error = %err, "receive failed");
                    continue;
                }
            };
            self.stats.record_received(n);
            match judge(peer, self.limiter.as_deref(), Instant::now) {
                Verdict::Echo => {}
                Verdict::Reflection => {
                    self.stats.dropped_reflection.fetch_add(1, Relaxed);
                    debug!(listener = %self.url, %peer, bytes = n,
                        "dropped datagram from a reflection port (echo, chargen and the like)");
                    continue;
                }
                Verdict::RateLimited => {
                    self.stats.dropped_rate_limit.fetch_add(1, Relaxed);
                    debug!(listener = %self.url, %peer, bytes = n, "dropped datagram over the rate limit");
                    continue;
                }
            }
            match self.socket.send_to(&buf[..n], peer).await {
                Ok(_) => self.stats.record_sent(n),
                Err(err) => {
                    self.stats.record_error();
                    debug!(listener = %self.url, %peer, error = %err, "send failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use echotool_core::testing::Loopback;
    use echotool_core::{DatagramServerOptions, ServerOptions};
    use tokio::net::UdpSocket;
    use tokio::time::{Duration, timeout};

    use crate::UdpTransport;

    /// Sends `payload` from `socket` and waits (bounded) for its echo.
    async fn echoed(socket: &UdpSocket, payload: &[u8]) -> Vec<u8> {
        socket.send(payload).await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(Duration::from_secs(10), socket.recv(&mut buf))
            .await
            .expect("an echo within 10 s on loopback")
            .unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn datagrams_over_the_rate_limit_are_counted_as_such() {
        let options = ServerOptions {
            datagram: DatagramServerOptions {
                workers: Some(1),
                rate_limit: Some(1),
            },
            ..ServerOptions::default()
        };
        let server = Loopback::serve(UdpTransport, options).await.unwrap();
        let addr = server.addr.socket_addr().unwrap();
        let limited = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        limited.connect(addr).await.unwrap();
        assert_eq!(echoed(&limited, b"one").await, b"one");
        for _ in 0..2 {
            limited.send(b"over").await.unwrap();
        }
        // Another source has a bucket of its own; one worker handles datagrams in order, so its
        // echo means both datagrams over the limit have been handled too.
        let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        other.connect(addr).await.unwrap();
        assert_eq!(echoed(&other, b"two").await, b"two");
        let stats = server.stop().await;
        assert_eq!(
            (stats.received, stats.messages, stats.dropped_rate_limit),
            (4, 2, 2)
        );
        assert_eq!(stats.dropped_reflection, 0);
    }
}
