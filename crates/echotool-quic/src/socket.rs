//! The client's UDP socket: connected to the server, so that "nothing listens there" is known
//! at once. The kernel answers a datagram to a closed port with an ICMP port unreachable, and
//! reports it on a *connected* socket as "connection refused" at its next receive or send.
//! quinn's own socket is unconnected and drops such errors (rightly for a server, where they
//! concern one peer among many and can be forged), so a dial to a closed port used to wait for
//! its whole timeout. The dial races its handshake against [`ConnectedUdp::refused`]; to quinn
//! the refused datagram is simply lost, so nothing else changes.
//!
//! A client endpoint here serves exactly one dial, so connecting its socket costs nothing.
//! Dials that share one endpoint ([`SharedEndpoints`], as real clients that connect many
//! times do) use quinn's own unconnected socket instead, and a refusal reaches them only as
//! silence.
//!
//! Every endpoint's socket (this one, the shared ones, the server's through [`Bounded`]) also
//! sizes quinn's batches for datagrams of [`LOOPBACK_MTU`] bytes: a GSO send that would
//! exceed what one UDP send can carry fails with `EMSGSIZE`, which quinn takes for a lost MTU
//! probe and so drops the whole batch in silence ([`transmit_segments`]); and quinn's receive
//! buffers grow with the largest datagram times the GRO segments, far beyond what one
//! coalesced read can hold ([`receive_segments`]).

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, Runtime, UdpPoller};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::path::{self, LOOPBACK_MTU};

/// The most one UDP send can carry: an IPv4 datagram is at most 65 535 bytes, 20 of them IP
/// header and 8 UDP header. One GSO batch is one send, its datagrams back to back.
const MAX_SEND_BYTES: usize = 65_507;

/// The most one coalesced (GRO) read can hold: the kernel joins at most 64 datagrams
/// (`UDP_GRO_CNT_MAX`) and stops before 64 KiB; 64 of quinn's default 1 472-byte datagrams
/// is the larger of the two bounds, and what quinn's own buffers hold at its default size.
const MAX_COALESCED_BYTES: usize = 64 * 1_472;

/// Datagrams per GSO send, at most `gso`: as many as fit in one send when each is as large
/// as an endpoint here sends ([`LOOPBACK_MTU`]).
///
/// quinn batches up to 10 datagrams of the connection's MTU (90 000 bytes at 9 000). The
/// kernel refuses a send over [`MAX_SEND_BYTES`] with `EMSGSIZE`, and quinn-udp counts
/// `EMSGSIZE` as sent (it is the expected answer to an MTU probe too large for the path), so
/// 8 to 10 packets vanished at once, again on their retransmission: a 1 MiB echo on loopback
/// stalled for seconds in loss recovery. 7 × 9 000 fits; on other paths the batches are
/// 7 × 1 452 instead of 10, a syscall per 10 KB instead of 14.
pub(crate) fn transmit_segments(gso: usize) -> usize {
    gso.min(MAX_SEND_BYTES / usize::from(LOOPBACK_MTU)).max(1)
}

/// Datagrams per coalesced read quinn makes room for, at most `gro`.
///
/// quinn gives each of its 32 receive buffers the largest datagram times this: 9 000 × 64
/// GRO segments × 32 = 18 MB per endpoint, allocated at every client dial (setup took twice
/// as long), where [`MAX_COALESCED_BYTES`] is the most the kernel hands over in one read:
/// 11 × 9 000 × 32 = 3.2 MB, about quinn's own 1 472 × 64 × 32.
pub(crate) fn receive_segments(gro: usize) -> usize {
    gro.min(MAX_COALESCED_BYTES.div_ceil(usize::from(LOOPBACK_MTU)))
}

/// An endpoint on quinn's own UDP socket, its batches sized by [`Bounded`]; serves
/// connections when given a `server` configuration. Must be called within a tokio runtime.
pub(crate) fn endpoint(
    server: Option<quinn::ServerConfig>,
    socket: std::net::UdpSocket,
) -> io::Result<quinn::Endpoint> {
    let runtime = Arc::new(quinn::TokioRuntime);
    let socket = Arc::new(Bounded(runtime.wrap_udp_socket(socket)?));
    quinn::Endpoint::new_with_abstract_socket(path::endpoint_config(), server, socket, runtime)
}

/// quinn's own UDP socket with GSO batches of [`transmit_segments`] and room for
/// [`receive_segments`] per read; everything else passes through.
#[derive(Debug)]
pub(crate) struct Bounded(Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for Bounded {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.0.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        transmit_segments(self.0.max_transmit_segments())
    }

    fn max_receive_segments(&self) -> usize {
        receive_segments(self.0.max_receive_segments())
    }
}

/// A UDP socket connected to one server, telling `refused` when the server's host says no
/// one listens.
pub(crate) struct ConnectedUdp {
    io: tokio::net::UdpSocket,
    /// quinn's platform layer (GSO, GRO, ECN, packet info) over the same socket.
    state: UdpSocketState,
    /// Cancelled at the first "connection refused".
    refused: CancellationToken,
    /// Whether nothing has been sent yet (see [`ConnectedUdp::first_send`]).
    unsent: AtomicBool,
}

impl fmt::Debug for ConnectedUdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedUdp")
            .field("peer", &self.io.peer_addr().ok())
            .field("refused", &self.refused.is_cancelled())
            .finish()
    }
}

/// A client endpoint whose socket is connected to `peer`, and that socket, to wait on for a
/// refusal. Must be called within a tokio runtime.
pub(crate) fn client_endpoint(
    peer: SocketAddr,
) -> io::Result<(quinn::Endpoint, Arc<ConnectedUdp>)> {
    // Non-blocking from its creation, and bound to an ephemeral port by `connect`: two system
    // calls where `bind`, `connect` and `set_nonblocking` made four.
    let socket = Socket::new(
        Domain::for_address(peer),
        Type::DGRAM.nonblocking(),
        Some(Protocol::UDP),
    )?;
    socket.connect(&peer.into())?;
    let socket = std::net::UdpSocket::from(socket);
    let state = UdpSocketState::new((&socket).into())?;
    let refused = CancellationToken::new();
    let connected = Arc::new(ConnectedUdp {
        io: tokio::net::UdpSocket::from_std(socket)?,
        state,
        refused: refused.clone(),
        unsent: AtomicBool::new(true),
    });
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        path::endpoint_config(),
        None,
        connected.clone(),
        Arc::new(quinn::TokioRuntime),
    )?;
    Ok((endpoint, connected))
}

/// The client endpoints that dials share, one per address family: quinn's own unconnected
/// socket, made at the first dial of its family.
///
/// An endpoint's driver runs on the tokio runtime of the dial that made it, so dials sharing
/// it must run on that runtime (as the benchmark's client does).
#[derive(Default)]
pub(crate) struct SharedEndpoints {
    by_family: std::sync::Mutex<[Option<quinn::Endpoint>; 2]>,
}

impl SharedEndpoints {
    /// The shared endpoint for dialing `peer`. Must be called within a tokio runtime.
    pub(crate) fn get(&self, peer: SocketAddr) -> io::Result<quinn::Endpoint> {
        let mut by_family = echotool_core::lock_ignoring_poison(&self.by_family);
        let slot = &mut by_family[usize::from(peer.is_ipv6())];
        if let Some(endpoint) = slot {
            return Ok(endpoint.clone());
        }
        let endpoint = endpoint(None, std::net::UdpSocket::bind(unspecified(peer))?)?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }
}

/// The unspecified address of `peer`'s family, port 0.
fn unspecified(peer: SocketAddr) -> SocketAddr {
    if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

impl ConnectedUdp {
    /// Completes when the peer's host has said that nothing listens on the port.
    ///
    /// The kernel flags the socket with an error when the ICMP message arrives, but a socket
    /// waiting to read is not woken by an error, so quinn would only meet it at its next send
    /// (a retransmission, a second later). Waiting for the error itself makes it immediate.
    pub(crate) async fn refused(&self) {
        loop {
            tokio::select! {
                () = self.refused.cancelled() => return,
                ready = self.io.ready(Interest::ERROR) => {
                    if ready.is_err() {
                        // The socket cannot be watched; quinn's sends still notice a refusal.
                        return std::future::pending().await;
                    }
                    if let Ok(Some(err)) = self.io.take_error() {
                        self.noticed_refusal(&err);
                    }
                    // Consumed: wait for the next error, not for this one again.
                    let _ = self
                        .io
                        .try_io(Interest::ERROR, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
                }
            }
        }
    }

    /// Whether this is the socket's first send, which goes straight to the kernel.
    ///
    /// tokio learns that a socket is writable from the reactor (epoll) after registering it,
    /// so the first wait for writability, and `try_io` before it, see "not ready" and hold the
    /// dial's Initial back for a trip through the reactor (stamped: 22-32 µs from the Initial
    /// built to its send returning, 18-23 without the trip), although a new socket's send
    /// buffer is empty. Only the first send is made without asking; from then on the reactor's
    /// readiness is up to date, and a send that would block clears it as usual.
    fn first_send(&self) -> bool {
        self.unsent.load(Ordering::Relaxed) && self.unsent.swap(false, Ordering::Relaxed)
    }

    /// Whether `err` is the kernel passing on the peer's "port unreachable"; if so, says so.
    fn noticed_refusal(&self, err: &io::Error) -> bool {
        let refused = err.kind() == io::ErrorKind::ConnectionRefused;
        if refused && !self.refused.is_cancelled() {
            debug!(peer = ?self.io.peer_addr().ok(), "port unreachable: connection refused");
            self.refused.cancel();
        }
        refused
    }
}

impl AsyncUdpSocket for ConnectedUdp {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            socket: self,
            ready: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let send = || self.state.try_send((&self.io).into(), transmit);
        let sent = match self.first_send() {
            true => send(),
            false => self.io.try_io(Interest::WRITABLE, send),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            // Like quinn's own socket: a datagram that cannot be sent is lost, and QUIC's
            // retransmissions and timeouts deal with loss (EMSGSIZE is an expected answer to
            // path MTU probes).
            Err(e) => {
                if !self.noticed_refusal(&e) && e.raw_os_error() != Some(libc::EMSGSIZE) {
                    debug!(error = %e, "QUIC datagram not sent");
                }
                Ok(())
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            let received = self.io.try_io(Interest::READABLE, || {
                self.state.recv((&self.io).into(), bufs, meta)
            });
            match received {
                Ok(n) => return Poll::Ready(Ok(n)),
                // An error concerns one datagram, not the endpoint: quinn's endpoint would stop
                // for good on any error returned here. A refusal is passed on by its token.
                Err(e) => {
                    self.noticed_refusal(&e);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        transmit_segments(self.state.max_gso_segments())
    }

    fn max_receive_segments(&self) -> usize {
        receive_segments(self.state.gro_segments())
    }
}

/// Waits until the socket may be written again. Each waiting task gets its own, so that the
/// endpoint and the connection can both wait (a socket stores one waker per direction).
struct Writable {
    socket: Arc<ConnectedUdp>,
    ready: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>>,
}

impl fmt::Debug for Writable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}

impl UdpPoller for Writable {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.socket.unsent.load(Ordering::Relaxed) {
            // A new socket's send buffer is empty: see `ConnectedUdp::first_send`.
            return Poll::Ready(Ok(()));
        }
        let socket = this.socket.clone();
        let ready = this
            .ready
            .get_or_insert_with(|| Box::pin(async move { socket.io.writable().await }));
        let result = ready.as_mut().poll(cx);
        if result.is_ready() {
            // A finished future must not be polled again: the next call starts a new wait.
            this.ready = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_gso_batch_of_the_largest_datagrams_fits_in_one_send() {
        let segments = transmit_segments(64);
        assert!(segments > 1);
        assert!(segments * usize::from(LOOPBACK_MTU) <= MAX_SEND_BYTES);
        assert_eq!(transmit_segments(1), 1, "no GSO: one datagram per send");
    }

    #[test]
    fn a_coalesced_read_fits_in_a_receive_buffer() {
        let room = receive_segments(64) * usize::from(LOOPBACK_MTU);
        assert!(room >= MAX_COALESCED_BYTES, "{room}");
        assert!(room <= 2 * MAX_COALESCED_BYTES, "{room}");
        assert_eq!(receive_segments(1), 1, "no GRO: one datagram per read");
    }

    #[tokio::test]
    async fn a_new_socket_sends_its_first_datagram_without_a_trip_through_the_reactor() {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (_endpoint, socket) = client_endpoint(peer.local_addr().unwrap()).unwrap();
        // No await since the socket was made: the reactor has not yet said it is writable.
        let mut poller = socket.clone().create_io_poller();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            poller.as_mut().poll_writable(&mut cx).is_ready(),
            "a new socket is writable at once"
        );
        let transmit = |contents| Transmit {
            destination: peer.local_addr().unwrap(),
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        };
        socket
            .try_send(&transmit(b"first"))
            .expect("the first send goes out");
        let mut buf = [0; 16];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        // From the second send on, writability is the reactor's to tell.
        tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx)),
        )
        .await
        .expect("writable within 5 s")
        .unwrap();
        socket.try_send(&transmit(b"second")).unwrap();
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
    }

    #[tokio::test]
    async fn a_closed_port_is_noticed_at_once() {
        // A port that was just free: nothing listens there.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap();
        let (endpoint, socket) = client_endpoint(port).unwrap();
        let crypto = echotool_secure::config::client_config(
            &echotool_core::TlsClientOptions {
                insecure: true,
                ..Default::default()
            },
            echotool_secure::config::QUIC,
            false,
        )
        .unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto.config).unwrap();
        let config = quinn::ClientConfig::new(Arc::new(crypto));
        let _connecting = endpoint.connect_with(config, port, "localhost").unwrap();
        tokio::time::timeout(Duration::from_millis(500), socket.refused())
            .await
            .expect("refused within half a second");
    }
}
