//! The Linux system calls behind sides: making a namespace from a throwaway thread, entering
//! and leaving one, and the unprivileged user-namespace setup.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::{DEVICE, NsGuard, PREFIX_V4, PREFIX_V6, Privilege, Role, Side};
use crate::error::{LinkError, Result};
use crate::tun::{Control, Tun};

/// The calling thread's network namespace, as seen by itself.
const THREAD_NS: &CStr = c"/proc/thread-self/ns/net";

/// A handle that keeps a network namespace alive, and its identity to compare with.
#[derive(Debug)]
pub(crate) struct Namespace {
    fd: OwnedFd,
    dev: u64,
    ino: u64,
}

/// The namespace a thread came from, to return to.
#[derive(Debug)]
pub(crate) struct Return {
    fd: OwnedFd,
}

fn open_thread_ns() -> Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated path; the result is checked before use.
    let raw = unsafe { libc::open(THREAD_NS.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(LinkError::last_os("open /proc/thread-self/ns/net"));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn setns(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns(2) on a descriptor we own; it only changes the calling thread.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn enter(ns: &Namespace) -> Result<NsGuard> {
    let previous = open_thread_ns()?;
    setns(&ns.fd).map_err(|source| LinkError::Os {
        context: "enter the link's namespace (setns)".into(),
        source,
    })?;
    Ok(NsGuard {
        inner: Return { fd: previous },
    })
}

pub(super) fn enter_for_good(ns: &Namespace) -> Result<()> {
    setns(&ns.fd).map_err(|source| LinkError::Os {
        context: "enter the link's namespace (setns)".into(),
        source,
    })
}

pub(super) fn is_current(ns: &Namespace) -> bool {
    fs::metadata("/proc/thread-self/ns/net").is_ok_and(|m| m.dev() == ns.dev && m.ino() == ns.ino)
}

pub(super) fn leave(back: &Return) {
    if let Err(err) = setns(&back.fd) {
        // Staying inside the side is safe (its only way out is the link), just surprising.
        eprintln!("warning: could not return a thread from the link's namespace: {err}");
    }
}

/// Makes one side in a throwaway thread: a new namespace with `lo` up and a TUN device with
/// this role's addresses and `mtu`. Returns the side, the device and its control sockets.
pub(crate) fn create(role: Role, mtu: u32) -> Result<(Side, Tun, Control)> {
    let made = std::thread::Builder::new()
        .name(format!("link-{role:?}-setup").to_lowercase())
        .spawn(move || build_inside(role, mtu))
        .map_err(|source| LinkError::Os {
            context: "start a thread to make the namespace".into(),
            source,
        })?
        .join()
        .map_err(|_| LinkError::Os {
            context: "make the namespace".into(),
            source: io::Error::other("the setup thread panicked"),
        })?;
    let (ns, tun, control) = made?;
    Ok((Side::new(role, ns), tun, control))
}

/// Runs on a thread of its own, which ends inside the new namespace and then exits.
fn build_inside(role: Role, mtu: u32) -> Result<(Namespace, Tun, Control)> {
    // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) => LinkError::NoPrivilege {
                detail: format!("unshare(CLONE_NEWNET): {err}; {}", who_am_i()),
            },
            _ => LinkError::Os {
                context: "make a network namespace (unshare)".into(),
                source: err,
            },
        });
    }
    let fd = open_thread_ns()?;
    let meta = fs::metadata("/proc/thread-self/ns/net").map_err(|source| LinkError::Os {
        context: "identify the new namespace".into(),
        source,
    })?;
    quiet_ipv6();
    let control = Control::new()?;
    control.up("lo")?;
    let tun = Tun::create(DEVICE)?;
    control.set_mtu(DEVICE, mtu)?;
    control.up(DEVICE)?;
    let (v4, v6) = role.addrs();
    control.add_v4(DEVICE, v4, PREFIX_V4)?;
    control.add_v6(DEVICE, v6, PREFIX_V6)?;
    let ns = Namespace {
        fd,
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((ns, tun, control))
}

/// Inside a fresh namespace: IPv6 addresses usable at once (no duplicate address detection,
/// which would hold them back for a second on a link that has no other host) and no router
/// solicitations crossing the link. Net sysctls act on the writing thread's namespace. Best
/// effort: a kernel without IPv6 has no such files, and IPv4 still works.
fn quiet_ipv6() {
    for conf in ["all", "default"] {
        for (key, value) in [("accept_dad", "0"), ("router_solicitations", "0")] {
            let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/{key}"), value);
        }
    }
}

/// A clause for privilege errors: who this process is.
fn who_am_i() -> String {
    // SAFETY: geteuid(2) cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        "the process is root but lacks CAP_SYS_ADMIN/CAP_NET_ADMIN (a container without them?)"
            .into()
    } else {
        format!(
            "the process runs as uid {euid}, not root, and is not in a user namespace of its own"
        )
    }
}

/// See [`super::unprivileged_setup`].
pub(crate) fn unprivileged_setup() -> Result<Privilege> {
    // SAFETY: these id queries cannot fail.
    let (euid, uid, gid) = unsafe { (libc::geteuid(), libc::getuid(), libc::getgid()) };
    if euid == 0 {
        return Ok(Privilege::Root);
    }
    let threads = thread_count();
    if threads > 1 {
        return Err(LinkError::UserNamespace {
            detail: format!(
                "the process already runs {threads} threads, and a user namespace needs a \
                 single-threaded process: call unprivileged_setup() first thing in main"
            ),
        });
    }
    // SAFETY: unshare(2) of the user namespace in a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } < 0 {
        return Err(LinkError::UserNamespace {
            detail: format!("unshare(CLONE_NEWUSER): {}", io::Error::last_os_error()),
        });
    }
    let map = |file: &str, text: String| {
        fs::write(format!("/proc/self/{file}"), text).map_err(|err| LinkError::UserNamespace {
            detail: format!("writing /proc/self/{file}: {err}"),
        })
    };
    map("setgroups", "deny".into())?;
    map("uid_map", format!("0 {uid} 1"))?;
    map("gid_map", format!("0 {gid} 1"))?;
    Ok(Privilege::UserNamespace)
}

fn thread_count() -> usize {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(usize::MAX)
}
