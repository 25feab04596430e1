//! Who is on the other side of a connection. Over IP that is an address and a port; over a
//! Unix domain socket there is no address worth showing (a client's socket is usually
//! unnamed), but the kernel says which process connected (SO_PEERCRED), which is what a log
//! line about that connection wants.

use std::fmt;
use std::net::SocketAddr;

/// The other side of a connection, as logs show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An IP peer: its address and port.
    Ip(SocketAddr),
    /// A process on this machine, connected over a Unix domain socket: its credentials when
    /// the kernel gave them.
    Local(Option<Credentials>),
}

/// The credentials of a local peer, as the kernel recorded them when it connected (or, for a
/// client looking at its server, when the server called `listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its process id, when the kernel knows it (a peer in another PID namespace has none
    /// here).
    pub pid: Option<i32>,
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Self {
        Peer::Ip(addr)
    }
}

impl fmt::Display for Peer {
    /// `127.0.0.1:40000`, `[::1]:40000`, or `pid 4242 uid 1000 gid 1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Ip(addr) => addr.fmt(f),
            Peer::Local(Some(c)) => {
                if let Some(pid) = c.pid {
                    write!(f, "pid {pid} ")?;
                }
                write!(f, "uid {} gid {}", c.uid, c.gid)
            }
            Peer::Local(None) => f.write_str("a local process"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_show_an_address_or_who_they_are() {
        let ip = Peer::from(SocketAddr::from(([127, 0, 0, 1], 40000)));
        assert_eq!(ip.to_string(), "127.0.0.1:40000");
        let local = Peer::Local(Some(Credentials {
            uid: 1000,
            gid: 100,
            pid: Some(4242),
        }));
        assert_eq!(local.to_string(), "pid 4242 uid 1000 gid 100");
        let no_pid = Peer::Local(Some(Credentials {
            uid: 0,
            gid: 0,
            pid: None,
        }));
        assert_eq!(no_pid.to_string(), "uid 0 gid 0");
        assert_eq!(Peer::Local(None).to_string(), "a local process");
    }
}
