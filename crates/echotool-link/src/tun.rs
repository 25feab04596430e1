//! TUN devices and their configuration by ioctl: the two ends of the link, one inside each
//! namespace.
//!
//! A TUN device carries bare IP packets (`IFF_NO_PI`: no header in front) between the kernel
//! of its namespace and whoever holds its file descriptor, here the forwarder. The device lives
//! in the namespace of the thread that created it, and it, like the namespace, disappears when
//! the last descriptor closes, even if the process is SIGKILLed. Configuration uses the
//! classic `SIOCSIF*` ioctls on datagram sockets created inside the namespace (a socket
//! acts on the namespace it was created in), which is all this needs and far less code than
//! netlink.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{LinkError, Result};

/// The path of the TUN clone device.
const TUN_PATH: &CStr = c"/dev/net/tun";

/// One TUN device: its descriptor (non-blocking) and its name inside its namespace.
#[derive(Debug)]
pub(crate) struct Tun {
    fd: OwnedFd,
}

impl Tun {
    /// Creates a TUN device named `name` in the calling thread's network namespace.
    pub(crate) fn create(name: &str) -> Result<Tun> {
        // SAFETY: a valid NUL-terminated path and flags; the result is checked before use.
        let raw = unsafe {
            libc::open(
                TUN_PATH.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(tun_open_error(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, which lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EPERM) {
                return Err(LinkError::NoPrivilege {
                    detail: format!("creating TUN device {name}: {err}"),
                });
            }
            return Err(LinkError::Os {
                context: format!("create TUN device {name}"),
                source: err,
            });
        }
        Ok(Tun { fd })
    }

    /// Reads one packet; `WouldBlock` when none is waiting.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Hands one packet to the namespace's kernel, as if it had arrived on the device.
    pub(crate) fn write(&self, packet: &[u8]) -> io::Result<usize> {
        // SAFETY: `packet` is valid for reads of its length.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn tun_open_error(source: io::Error) -> LinkError {
    if source.raw_os_error() == Some(libc::EACCES) {
        return LinkError::TunDenied { source };
    }
    LinkError::NoTun { source }
}

/// An `ifreq` for the interface `name` (truncated to IFNAMSIZ - 1 bytes), all else zero.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    req
}

/// Sockets inside one namespace for configuring its devices, kept so the MTU can change later
/// without entering the namespace again.
#[derive(Debug)]
pub(crate) struct Control {
    v4: OwnedFd,
    v6: OwnedFd,
}

impl Control {
    /// Opens the sockets; must run in the namespace to configure.
    pub(crate) fn new() -> Result<Control> {
        Ok(Control {
            v4: dgram_socket(libc::AF_INET)?,
            v6: dgram_socket(libc::AF_INET6)?,
        })
    }

    /// Brings an interface up.
    pub(crate) fn up(&self, name: &str) -> Result<()> {
        let mut req = ifreq(name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut req, name, "read the flags of")?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req, name, "bring up")
    }

    /// Sets an interface's MTU.
    pub(crate) fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
        self.ioctl(libc::SIOCSIFMTU, &mut req, name, "set the MTU of")
    }

    /// Gives an interface an IPv4 address and prefix (the prefix becomes its route).
    pub(crate) fn add_v4(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
        self.ioctl(libc::SIOCSIFADDR, &mut req, name, "set the IPv4 address of")?;
        let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
        req.ifr_ifru.ifru_netmask = sockaddr_v4(mask);
        self.ioctl(libc::SIOCSIFNETMASK, &mut req, name, "set the netmask of")
    }

    /// Gives an interface an IPv6 address and prefix.
    pub(crate) fn add_v6(&self, name: &str, addr: Ipv6Addr, prefix: u8) -> Result<()> {
        let mut req = ifreq(name);
        self.ioctl(libc::SIOCGIFINDEX, &mut req, name, "find the index of")?;
        let req6 = libc::in6_ifreq {
            ifr6_addr: libc::in6_addr {
                s6_addr: addr.octets(),
            },
            ifr6_prefixlen: u32::from(prefix),
            // SAFETY: SIOCGIFINDEX filled the index member of the union.
            ifr6_ifindex: unsafe { req.ifr_ifru.ifru_ifindex },
        };
        // SAFETY: SIOCSIFADDR on an AF_INET6 socket reads one `in6_ifreq`.
        if unsafe { libc::ioctl(self.v6.as_raw_fd(), libc::SIOCSIFADDR, &req6) } < 0 {
            return Err(LinkError::last_os(format!(
                "set the IPv6 address of {name}"
            )));
        }
        Ok(())
    }

    fn ioctl(&self, op: libc::Ioctl, req: &mut libc::ifreq, name: &str, what: &str) -> Result<()> {
        // SAFETY: each SIOC[GS]IF* request used here reads or writes one `ifreq`.
        if unsafe { libc::ioctl(self.v4.as_raw_fd(), op, req as *mut libc::ifreq) } < 0 {
            return Err(LinkError::last_os(format!("{what} {name}")));
        }
        Ok(())
    }
}

fn dgram_socket(family: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let raw = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(LinkError::last_os("open a configuration socket"));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size, and sockaddr is what the ioctl
    // interface declares; the kernel reads it back as sockaddr_in from the family.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}
