//! Making TCP sockets: listeners bound with the options that must precede `bind`, and dialers
//! that try every resolved address within one timeout.

use std::net::SocketAddr;

use echotool_core::{ClientOptions, Error, Family, HostPort, Result, SocketOptions};
use echotool_core::{resolve, resolve_dial};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Binds and listens on the first address `addr` resolves to in `family`.
///
/// SO_REUSEADDR is set so a restarted server does not wait out TIME_WAIT; IPV6_V6ONLY is set
/// for [`Family::V6`] and cleared otherwise (so `tcp` on `[::]` also takes IPv4).
/// `url` names the endpoint in errors.
pub async fn bind_listener(
    url: &str,
    addr: &HostPort,
    family: Family,
    opts: &SocketOptions,
) -> Result<TcpListener> {
    let candidates = resolve(addr, family).await?;
    let mut last = None;
    for candidate in candidates {
        match listen_on(candidate, family, opts) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Bind {
        url: url.to_string(),
        source: last.unwrap_or_else(|| std::io::Error::other("no address to bind")),
    })
}

fn listen_on(
    addr: SocketAddr,
    family: Family,
    opts: &SocketOptions,
) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(family == Family::V6)?;
    }
    socket.set_tcp_nodelay(opts.nodelay)?;
    if let Some(size) = opts.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = opts.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(opts.backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// Connects to `addr`, trying each of its addresses of `family` in turn (resolved now, or ahead
/// in `opts.resolved`), all within `opts.connect_timeout`. TCP_NODELAY and buffer sizes come
/// from `opts.socket`.
pub async fn dial(
    url: &str,
    addr: &HostPort,
    family: Family,
    opts: &ClientOptions,
) -> Result<TcpStream> {
    let attempt = async {
        let mut last = None;
        for candidate in resolve_dial(addr, family, opts.resolved.as_ref()).await? {
            match connect_to(candidate, &opts.socket).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Connect {
            url: url.to_string(),
            source: last.unwrap_or_else(|| std::io::Error::other("no address to connect to")),
        })
    };
    match tokio::time::timeout(opts.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            what: format!("no connection to {url}"),
            after: opts.connect_timeout,
            hint: "is the host up? A firewall may be dropping the packets; raise --timeout \
                   if the network is slow"
                .into(),
        }),
    }
}

async fn connect_to(addr: SocketAddr, opts: &SocketOptions) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = opts.recv_buffer {
        socket.set_recv_buffer_size(u32::try_from(size).unwrap_or(u32::MAX))?;
    }
    if let Some(size) = opts.send_buffer {
        socket.set_send_buffer_size(u32::try_from(size).unwrap_or(u32::MAX))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(opts.nodelay)?;
    Ok(stream)
}
