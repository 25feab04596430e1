//! Making Unix sockets: a server socket bound with its file cared for ([`crate::file`]), and
//! client sockets dialed within the connect timeout, every failure explained in terms of
//! paths and permissions.

use std::io;
use std::path::Path;

use echotool_core::{
    ClientOptions, Error, HostPort, Result, ServerOptions, Setting, SocketOptions,
};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::net::{UnixDatagram, UnixStream};

use crate::file::{SocketFile, clear_stale, restrict_before_bind};
use crate::{SocketName, UnixError};

/// A server socket, bound (and listening, for streams), with the file it made.
pub struct Bound {
    /// The socket, non-blocking.
    pub socket: Socket,
    /// Where it is bound.
    pub name: SocketName,
    /// Its file, removed when dropped; `None` for an abstract name.
    pub file: Option<SocketFile>,
}

/// Binds a socket of type `ty` (stream or datagram) at the endpoint `addr`: a stale socket
/// file there is removed first, a live one or anything else refused, and the new file gets
/// the mode of `opts.socket_file` (see [`echotool_core::SocketFileOptions::DEFAULT_MODE`] for
/// the default and why). A stream socket listens with `opts.socket.backlog`.
pub fn bind(url: &str, addr: &HostPort, ty: Type, opts: &ServerOptions) -> Result<Bound> {
    let name = SocketName::of(url, addr)?;
    let failed = |e: io::Error| UnixError::bind(url, e.to_string());
    let socket = Socket::new(Domain::UNIX, ty, None).map_err(failed)?;
    buffers(&SockRef::from(&socket), &opts.socket).map_err(failed)?;
    socket.set_nonblocking(true).map_err(failed)?;
    let sock_addr = name.sock_addr().map_err(failed)?;
    let file = match name.file() {
        None => {
            if opts.socket_file.mode.is_some() {
                return Err(Error::setting(
                    Setting::Mode,
                    Error::Invalid(format!(
                        "{url} is an abstract socket: it has no file, so a mode (--mode, or \
                         mode in a config file) does nothing, and any process in this network \
                         namespace may connect; drop the mode, or use a socket path"
                    )),
                ));
            }
            socket
                .bind(&sock_addr)
                .map_err(|e| abstract_taken(url, &name, &e))?;
            None
        }
        Some(path) => Some(bind_file(url, path, &socket, &sock_addr, opts)?),
    };
    if ty == Type::STREAM {
        let backlog = i32::try_from(opts.socket.backlog).unwrap_or(i32::MAX);
        socket.listen(backlog).map_err(failed)?;
    }
    Ok(Bound { socket, name, file })
}

/// Binds `socket` to the file `path`, clearing a stale socket first and setting the mode.
fn bind_file(
    url: &str,
    path: &Path,
    socket: &Socket,
    sock_addr: &SockAddr,
    opts: &ServerOptions,
) -> Result<SocketFile, UnixError> {
    clear_stale(url, path)?;
    let mode = opts.socket_file.mode();
    restrict_before_bind(socket, mode);
    socket
        .bind(sock_addr)
        .map_err(|e| UnixError::bind(url, crate::error::bind_reason(path, &e)))?;
    // A stream socket does not listen yet, so nobody connects before the mode is right.
    SocketFile::create(url, path, mode)
}

/// Why binding an abstract name failed.
fn abstract_taken(url: &str, name: &SocketName, err: &io::Error) -> UnixError {
    match err.raw_os_error() {
        Some(libc::EADDRINUSE) => UnixError::bind(
            url,
            format!(
                "the abstract name {name} is already in use by a live socket; stop whatever \
                 holds it, or choose another name"
            ),
        ),
        _ => UnixError::bind(url, err.to_string()),
    }
}

/// Sets the buffer sizes asked for.
fn buffers(socket: &SockRef<'_>, opts: &SocketOptions) -> io::Result<()> {
    if let Some(size) = opts.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = opts.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    Ok(())
}

/// Connects a stream to the server at `addr` within `opts.connect_timeout`.
pub async fn dial_stream(url: &str, addr: &HostPort, opts: &ClientOptions) -> Result<UnixStream> {
    let name = SocketName::of(url, addr)?;
    let connect = UnixStream::connect(name.os_path());
    let stream = match tokio::time::timeout(opts.connect_timeout, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(connect_error(url, &name, &e, "unixgram").into()),
        Err(_) => {
            return Err(Error::Timeout {
                what: format!("no connection to {url}"),
                after: opts.connect_timeout,
                hint: "the server takes no more connections now (it may be at --max-conns); \
                       try again later, or raise --timeout"
                    .into(),
            });
        }
    };
    buffers(&SockRef::from(&stream), &opts.socket)
        .map_err(|e| UnixError::connect(url, e.to_string()))?;
    Ok(stream)
}

/// A datagram socket connected to the server at `addr`. It binds an address of its own first
/// (an abstract name the kernel picks: autobind), because a server can only answer a datagram
/// whose sender has an address, and an unbound Unix socket has none.
pub fn dial_datagram(url: &str, addr: &HostPort, opts: &ClientOptions) -> Result<UnixDatagram> {
    let name = SocketName::of(url, addr)?;
    let failed = |e: io::Error| UnixError::connect(url, e.to_string());
    let socket = Socket::new(Domain::UNIX, Type::DGRAM, None).map_err(failed)?;
    buffers(&SockRef::from(&socket), &opts.socket).map_err(failed)?;
    // An empty path is the kernel's autobind: a fresh abstract name such as @0001f.
    socket
        .bind(&SockAddr::unix("").map_err(failed)?)
        .map_err(failed)?;
    socket
        .connect(&name.sock_addr().map_err(failed)?)
        .map_err(|e| connect_error(url, &name, &e, "unix"))?;
    socket.set_nonblocking(true).map_err(failed)?;
    UnixDatagram::from_std(socket.into()).map_err(|e| failed(e).into())
}

/// Why connecting to `name` failed, and what to do. `other` is the transport for the other
/// socket type, suggested when the socket there has that type.
fn connect_error(url: &str, name: &SocketName, err: &io::Error, other: &str) -> UnixError {
    let start = format!("start one with `echotool serve -l {url}`");
    let why = match (err.raw_os_error(), name.file()) {
        (Some(libc::ENOENT), Some(path)) => format!(
            "there is no socket at {}; is a server listening there? {start}",
            path.display()
        ),
        (Some(libc::ECONNREFUSED), None) => {
            format!("no socket has the abstract name {name}; is a server listening there? {start}")
        }
        (Some(libc::ECONNREFUSED), Some(path)) => refused_file(path),
        (Some(libc::EACCES | libc::EPERM), _) => "permission denied: the socket file's mode \
             does not let this user connect (the server sets it with --mode; by default only \
             the user that runs the server may), or a directory on the way is closed to this \
             user"
            .into(),
        (Some(libc::EPROTOTYPE), _) => format!(
            "the socket at {name} is of the other type (stream or datagram); use \
             {other}://{name}"
        ),
        (Some(libc::EAGAIN), _) => "the server's queue of connections is full: it accepts no \
             more now (it may be at --max-conns); try again later"
            .into(),
        (Some(libc::ENOTDIR), _) => format!("a part of {name} is not a directory"),
        _ => err.to_string(),
    };
    UnixError::connect(url, why)
}

/// Why a socket file refused: it is not a socket, or nothing listens on it any more.
fn refused_file(path: &Path) -> String {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => format!(
            "{shown} is not a socket; check the path (a server's socket is made by `echotool \
             serve -l unix://PATH`)"
        ),
        _ => format!(
            "{shown} is a socket nothing listens on any more (a server that stopped without \
             removing it left it behind); start the server again: it removes the stale file"
        ),
    }
}
