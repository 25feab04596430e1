//! The Unix stream echo server: accepting sockets and learning who connected; everything else
//! (limits, idle timeout, drain, counters, the echo) is core's accept loop.

use std::io;

use echotool_core::{
    AcceptSource, Credentials, HostPort, Limits, Peer, Plain, Result, ServeContext, Server,
    ServerOptions, async_trait, serve_connections,
};
use tokio::net::{UnixListener, UnixStream};

use crate::file::SocketFile;
use crate::socket::Bound;

/// Accepts Unix stream connections for core's [`serve_connections`], each with the
/// credentials of the process that connected (SO_PEERCRED), which `-v` logs show.
#[derive(Debug)]
pub struct UnixAcceptor {
    /// `None` once shutdown began: closing it refuses newcomers at once.
    listener: Option<UnixListener>,
    /// Removed with the listener, so the path is free as soon as this server stops accepting.
    file: Option<SocketFile>,
}

#[async_trait]
impl AcceptSource for UnixAcceptor {
    type Incoming = UnixStream;

    async fn accept(&mut self) -> io::Result<Option<(UnixStream, Peer)>> {
        let Some(listener) = &self.listener else {
            return Ok(None);
        };
        let (stream, _unnamed) = listener.accept().await?;
        let credentials = stream.peer_cred().ok().map(|c| Credentials {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        });
        Ok(Some((stream, Peer::Local(credentials))))
    }

    fn stop_accepting(&mut self) {
        self.listener = None;
        self.file = None;
    }
}

/// A bound Unix stream echo server.
#[derive(Debug)]
pub struct UnixServer {
    acceptor: UnixAcceptor,
    local: HostPort,
    limits: Limits,
    notes: Vec<String>,
}

impl UnixServer {
    /// Serves on a bound, listening stream socket.
    pub(crate) fn new(bound: Bound, opts: &ServerOptions, notes: Vec<String>) -> Result<Self> {
        let local = HostPort::at_path(bound.name.to_string());
        let listener = UnixListener::from_std(bound.socket.into())
            .map_err(|e| echotool_core::Error::io(format!("serving on {local}"), e))?;
        Ok(UnixServer {
            acceptor: UnixAcceptor {
                listener: Some(listener),
                file: bound.file,
            },
            local,
            limits: opts.limits.clone(),
            notes,
        })
    }
}

#[async_trait]
impl Server for UnixServer {
    fn local_addr(&self) -> HostPort {
        self.local.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        serve_connections(self.acceptor, Plain, self.limits, ctx).await;
        Ok(())
    }
}
