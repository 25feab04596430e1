//! The two sides of the link: anonymous network namespaces, each holding one TUN device, and
//! the means for a thread (or a whole tokio runtime) to step into one.
//!
//! A namespace is made by a short-lived thread that calls `unshare(CLONE_NEWNET)` (which moves
//! only that thread), opens `/proc/thread-self/ns/net` to keep a handle, configures `lo` and
//! the TUN device from inside, and exits. Nothing is named, mounted or written in the host's
//! namespace (no `ip netns add`, no `/run/netns` file), so when the process ends, however it
//! ends, the last descriptor closes and the kernel removes the namespace and its device.
//!
//! Entering is `setns(2)` on the current thread only; a socket keeps the namespace it was
//! created in, so a thread may leave again once its sockets exist.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::error::Result;

/// The server side's IPv4 address (RFC 2544's benchmarking range, 198.18.0.0/15).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The client side's IPv4 address.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The server side's IPv6 address (RFC 5180's benchmarking range, 2001:2::/48).
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// The client side's IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// The prefix both IPv4 addresses share, routed through the TUN device.
pub const PREFIX_V4: u8 = 24;
/// The prefix both IPv6 addresses share, routed through the TUN device.
pub const PREFIX_V6: u8 = 64;
/// The TUN device's name inside each namespace.
pub const DEVICE: &str = "link0";

/// Which end of the link a side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Where the client runs: its packets travel `up`.
    Client,
    /// Where the server runs: its packets travel `down`.
    Server,
}

impl Role {
    /// This role's addresses.
    pub fn addrs(self) -> (Ipv4Addr, Ipv6Addr) {
        match self {
            Role::Client => (CLIENT_V4, CLIENT_V6),
            Role::Server => (SERVER_V4, SERVER_V6),
        }
    }

    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// One side of the link: a network namespace whose only way out is the link.
///
/// Cloning is cheap and keeps the namespace alive; it disappears when the [`crate::Link`] and
/// every clone of its sides (and every thread inside it) are gone.
#[derive(Clone, Debug)]
pub struct Side {
    role: Role,
    ns: Arc<os::Namespace>,
}

impl Side {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn new(role: Role, ns: os::Namespace) -> Side {
        Side {
            role,
            ns: Arc::new(ns),
        }
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This side's IPv4 address.
    pub fn v4(&self) -> Ipv4Addr {
        self.role.addrs().0
    }

    /// This side's IPv6 address.
    pub fn v6(&self) -> Ipv6Addr {
        self.role.addrs().1
    }

    /// This side's address of a family with a port, to bind or to dial.
    pub fn addr(&self, ipv6: bool, port: u16) -> SocketAddr {
        let ip = if ipv6 {
            IpAddr::V6(self.v6())
        } else {
            IpAddr::V4(self.v4())
        };
        SocketAddr::new(ip, port)
    }

    /// Moves the calling thread into this side until the guard drops; sockets created
    /// meanwhile stay in the side for good.
    pub fn enter(&self) -> Result<NsGuard> {
        os::enter(&self.ns)
    }

    /// Whether the calling thread is inside this side now.
    pub fn contains_current_thread(&self) -> bool {
        os::is_current(&self.ns)
    }

    /// A function for `tokio::runtime::Builder::on_thread_start` that moves each of the
    /// runtime's threads into this side for good, so every socket the runtime opens is in it.
    ///
    /// # Panics
    ///
    /// The hook panics if `setns` fails, rather than leave a thread in the host's namespace,
    /// where the link's addresses would be sent to the host's default route. `Link::start`
    /// has already entered both sides once, so this means the process lost its privilege.
    pub fn runtime_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let ns = Arc::clone(&self.ns);
        let role = self.role;
        move || {
            if let Err(err) = os::enter_for_good(&ns) {
                panic!("cannot move a runtime thread into the link's {role:?} side: {err}");
            }
        }
    }
}

/// How the process got the right to make namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// It runs as root.
    Root,
    /// It moved itself into a new user namespace, where it is root of its own namespaces.
    UserNamespace,
}

/// Lets an unprivileged process make links, by moving the whole process into a new user
/// namespace in which it is root (its uid and gid mapped to 0), which grants CAP_NET_ADMIN
/// over the network namespaces it creates later. As root it does nothing.
///
/// Call it first thing in `main`, while the process has a single thread: the kernel refuses
/// `unshare(CLONE_NEWUSER)` to multi-threaded processes, and tokio, test harnesses and most
/// libraries start threads. Afterwards the process sees itself as uid 0 and files of other
/// users as owned by `nobody`, and still cannot open what it could not open before (such as a
/// `/dev/net/tun` of mode 0600). Re-executing the binary inside `unshare --user --map-root-user`
/// is the alternative for programs that cannot call this early enough.
pub fn unprivileged_setup() -> Result<Privilege> {
    os::unprivileged_setup()
}

/// The calling thread's stay inside a side: dropping it returns the thread to the namespace
/// it was in before. It cannot move to another thread, as the namespace is per thread.
#[derive(Debug)]
pub struct NsGuard {
    inner: os::Return,
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        os::leave(&self.inner);
    }
}

#[cfg(target_os = "linux")]
pub(crate) use os::create;

#[cfg(target_os = "linux")]
mod os;

#[cfg(not(target_os = "linux"))]
mod os {
    //! Elsewhere there are no sides: the types exist so callers compile, and nothing can
    //! make one.

    use crate::error::{LinkError, Result};

    /// No namespace can exist here.
    #[derive(Debug)]
    pub(crate) enum Namespace {}

    /// Nothing to return to.
    #[derive(Debug)]
    pub(crate) enum Return {}

    pub(super) fn enter(ns: &Namespace) -> Result<super::NsGuard> {
        match *ns {}
    }

    pub(super) fn enter_for_good(ns: &Namespace) -> Result<()> {
        match *ns {}
    }

    pub(super) fn is_current(ns: &Namespace) -> bool {
        match *ns {}
    }

    pub(super) fn leave(back: &Return) {
        match *back {}
    }

    pub(crate) fn unprivileged_setup() -> Result<super::Privilege> {
        Err(not_linux())
    }

    /// The error every entry point gives here.
    pub(crate) fn not_linux() -> LinkError {
        LinkError::NotLinux {
            os: std::env::consts::OS,
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) use os::not_linux;
