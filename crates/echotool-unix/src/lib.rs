//! Unix domain sockets for echotool: `unix` (a byte stream, like TCP) and `unixgram`
//! (datagrams, like UDP), between processes on one machine, with no IP stack in the way.
//!
//! Endpoints are socket paths, `unix:///run/echo.sock` or `unix://./echo.sock`, or Linux
//! abstract names, `unix://@echo`, which have no file: they vanish with their socket and any
//! process in the same network namespace may connect. See [`SocketName`].
//!
//! A socket file is the server's to look after ([`mod@file`]): before binding, a stale one (left
//! by a server that died; nothing answers on it) is removed, while a live one or anything
//! that is not a socket is refused and never removed; the file gets the mode of `--mode`
//! (0600 by default: [`echotool_core::SocketFileOptions::DEFAULT_MODE`] says why), set
//! before anyone can connect; and the server removes its file when it stops, if the path
//! still names the file it made.
//!
//! The stream server runs core's accept loop (limits, idle timeout, drain and counters come
//! from there) and hands it each connection with the credentials of the process that
//! connected (SO_PEERCRED), which `-v` logs show. The datagram server echoes every datagram
//! to its sender, which must have an address: see [`datagram`] for what happens when it has
//! none, and how echotool's own client gets one.
//!
//! Linux only: abstract names, SO_PEERCRED with a pid, and autobind are Linux features.
//!
//! Dependencies, all the workspace's already: `socket2` (a socket's options and mode set
//! before `bind`, the backlog, autobind, and sending to abstract names, which tokio's
//! path-only `send_to` cannot), `libc` (the error numbers told apart), `thiserror` (the
//! crate's error type).

#![warn(missing_docs)]

pub mod datagram;
mod error;
pub mod file;
mod name;
mod server;
pub mod socket;

pub use datagram::UnixDatagramServer;
pub use error::UnixError;
pub use name::{SUN_PATH, SocketName};
pub use server::{UnixAcceptor, UnixServer};

use std::path::PathBuf;

use echotool_core::{
    Addressing, Binding, Channel, ClientOptions, Connection, Credentials, HostPort, Kind, Peer,
    Result, Server, ServerOptions, Setting, Transport, async_trait,
};
use socket2::Type;

use crate::datagram::UnixgramClient;

/// A Unix domain socket transport: `unix` (streams) or `unixgram` (datagrams).
#[derive(Clone, Copy, Debug)]
pub struct UnixTransport {
    kind: Kind,
}

impl UnixTransport {
    /// `unix`: a byte stream (SOCK_STREAM).
    pub fn stream() -> Self {
        UnixTransport { kind: Kind::Stream }
    }

    /// `unixgram`: datagrams (SOCK_DGRAM), each echoed to its sender.
    pub fn datagram() -> Self {
        UnixTransport {
            kind: Kind::Datagram,
        }
    }

    /// The file name of the default socket, in `$XDG_RUNTIME_DIR` (or `/tmp` without one).
    fn default_file(&self) -> &'static str {
        match self.kind {
            Kind::Stream => "echotool.sock",
            Kind::Datagram => "echotool-dgram.sock",
        }
    }
}

#[async_trait]
impl Transport for UnixTransport {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Stream => "unix",
            Kind::Datagram => "unixgram",
        }
    }

    fn summary(&self) -> &'static str {
        match self.kind {
            Kind::Stream => "Unix domain stream socket: a socket file or @abstract name",
            Kind::Datagram => "Unix domain datagrams: a socket file or @abstract name",
        }
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn addressing(&self) -> Addressing {
        Addressing::Path
    }

    /// `$XDG_RUNTIME_DIR/echotool.sock` (`echotool-dgram.sock` for datagrams): a directory of
    /// the user's own, so a default socket is never shared by accident; `/tmp` without one.
    fn default_addr(&self) -> HostPort {
        let dir = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        HostPort::at_path(dir.join(self.default_file()).display().to_string())
    }

    fn binds(&self) -> Binding {
        Binding::Path
    }

    fn reads(&self) -> Vec<Setting> {
        match self.kind {
            Kind::Stream => [
                Setting::CONNECTIONS,
                Setting::BUFFERS,
                &[Setting::Backlog],
                Setting::SOCKET_FILE,
            ]
            .concat(),
            Kind::Datagram => [Setting::BUFFERS, Setting::SOCKET_FILE].concat(),
        }
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("{}://{addr}", self.name());
        let ty = match self.kind {
            Kind::Stream => Type::STREAM,
            Kind::Datagram => Type::DGRAM,
        };
        let bound = socket::bind(&url, addr, ty, opts)?;
        let notes = match bound.file {
            Some(_) => vec![file::who_may_connect(opts.socket_file.mode())],
            None => vec![
                "abstract socket: no file and no mode; any process in this network namespace \
                 may connect"
                    .into(),
            ],
        };
        Ok(match self.kind {
            Kind::Stream => Box::new(UnixServer::new(bound, opts, notes)?),
            Kind::Datagram => Box::new(UnixDatagramServer::new(bound, notes)?),
        })
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("{}://{addr}", self.name());
        let (channel, peer, details) = match self.kind {
            Kind::Stream => {
                let stream = socket::dial_stream(&url, addr, opts).await?;
                let credentials = stream.peer_cred().ok().map(|c| Credentials {
                    uid: c.uid(),
                    gid: c.gid(),
                    pid: c.pid(),
                });
                let peer = Peer::Local(credentials);
                let details = vec![format!("connected to {addr} (server: {peer})")];
                (Channel::Stream(Box::new(stream)), peer, details)
            }
            Kind::Datagram => {
                let socket = socket::dial_datagram(&url, addr, opts)?;
                let from = socket
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_abstract_name().map(|n| n.to_vec()))
                    .map(|name| format!(" from @{}", String::from_utf8_lossy(&name)))
                    .unwrap_or_default();
                let details = vec![format!("sending datagrams to {addr}{from}")];
                let client = UnixgramClient { socket };
                (
                    Channel::Datagram(Box::new(client)),
                    Peer::Local(None),
                    details,
                )
            }
        };
        Ok(Connection {
            channel,
            peer,
            details,
            resumed: false,
            streams: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use echotool_core::testing::Loopback;
    use echotool_core::{ClientOptions, HostPort, ServerOptions, Transport};

    use super::UnixTransport;

    /// A directory of its own for one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("echotool-unix-lib-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }

        fn socket(&self, file: &str) -> HostPort {
            HostPort::at_path(self.0.join(file).display().to_string())
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn streams_echo_are_counted_and_the_file_goes_with_the_server() {
        let dir = Scratch::new("stream");
        let addr = dir.socket("e.sock");
        let options = ServerOptions::default();
        let server = Loopback::serve_at(UnixTransport::stream(), addr.clone(), options)
            .await
            .unwrap();
        assert_eq!(server.addr, addr);
        assert_eq!(
            server.echo(b"hello\n", 3).await.unwrap(),
            b"hello\n".repeat(3)
        );
        let stats = server.stop().await;
        assert_eq!(
            (stats.connections, stats.messages, stats.bytes_out),
            (1, 3, 18)
        );
        assert!(!dir.0.join("e.sock").exists(), "removed on the way out");
    }

    #[tokio::test]
    async fn datagrams_come_back_to_an_abstract_client_and_nowhere_else() {
        let dir = Scratch::new("dgram");
        let addr = dir.socket("d.sock");
        let server = Loopback::serve_at(UnixTransport::datagram(), addr, ServerOptions::default())
            .await
            .unwrap();
        let (echo, report) = server.echo_with(&server.client, b"ping", 5).await.unwrap();
        assert_eq!((echo, report.lost), (b"ping".repeat(5), 0));

        // A socket with no address of its own cannot be answered: dropped, and counted. The
        // server reads in order, so the echo of a later datagram means it has been seen.
        let unnamed = std::os::unix::net::UnixDatagram::unbound().unwrap();
        unnamed.send_to(b"anyone?", dir.0.join("d.sock")).unwrap();
        assert_eq!(server.echo(b"pong", 1).await.unwrap(), b"pong");
        let stats = server.stop().await;
        assert_eq!(
            (stats.received, stats.bytes_out, stats.dropped_unnamed),
            (7, 24, 1)
        );
    }

    #[tokio::test]
    async fn abstract_names_have_no_file_and_take_no_mode() {
        let name = format!("@echotool-test-{}", std::process::id());
        let addr = HostPort::at_path(name.as_str());
        let server = Loopback::serve_at(
            UnixTransport::stream(),
            addr.clone(),
            ServerOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(server.echo(b"x", 1).await.unwrap(), b"x");
        let mut with_mode = ServerOptions::default();
        with_mode.socket_file.mode = Some(0o600);
        let Err(err) = UnixTransport::stream().bind(&addr, &with_mode).await else {
            panic!("a mode for an abstract name");
        };
        assert!(
            err.to_string()
                .contains("is an abstract socket: it has no file"),
            "{err}"
        );
        server.stop().await;
        let Err(err) = UnixTransport::stream()
            .dial(&addr, &ClientOptions::default())
            .await
        else {
            panic!("nothing listens any more");
        };
        assert!(
            err.to_string().contains("no socket has the abstract name"),
            "{err}"
        );
    }
}
