//! Why a link could not be described, built or run: one error type for the crate, each message
//! naming what is missing and what to do about it.

use std::io;

/// A convenient alias for this crate's results.
pub type Result<T, E = LinkError> = std::result::Result<T, E>;

/// Everything that can go wrong with a link, phrased for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A link spec that cannot be parsed: which item, and what was expected there.
    #[error("link spec '{item}': {expected}")]
    Spec {
        /// The comma-separated item that is wrong, as typed.
        item: String,
        /// What that item should look like.
        expected: String,
    },

    /// The link needs Linux network namespaces and TUN devices.
    #[error("--link needs Linux (network namespaces and TUN devices); this is {os}")]
    NotLinux {
        /// The operating system this build runs on.
        os: &'static str,
    },

    /// Neither root nor an unprivileged user namespace gives the rights to make namespaces.
    #[error(
        "--link needs CAP_NET_ADMIN to make network namespaces and TUN devices ({detail}): run \
         as root (sudo), or allow unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
    )]
    NoPrivilege {
        /// What was tried and how it failed.
        detail: String,
    },

    /// User namespaces were tried (not root) and are not available.
    #[error(
        "--link could not create a user namespace ({detail}): unprivileged user namespaces are \
         off or forbidden here (sysctl user.max_user_namespaces, \
         kernel.unprivileged_userns_clone, or a seccomp/AppArmor policy); run as root instead"
    )]
    UserNamespace {
        /// The system call's error.
        detail: String,
    },

    /// `/dev/net/tun` is missing or cannot be opened.
    #[error(
        "--link cannot open /dev/net/tun ({source}): load the driver with `modprobe tun`, or in \
         a container pass `--device /dev/net/tun` (and --cap-add NET_ADMIN)"
    )]
    NoTun {
        /// The error from open(2).
        source: io::Error,
    },

    /// `/dev/net/tun` exists but this process may not open it (not root, and the device is
    /// not world-writable).
    #[error(
        "--link cannot open /dev/net/tun ({source}): only its owner may open it here; make it \
         usable like on most systems (chmod 0666 /dev/net/tun) or run as root"
    )]
    TunDenied {
        /// The error from open(2).
        source: io::Error,
    },

    /// A system call that should work once the rights above are there failed anyway.
    #[error("link: {context}: {source}")]
    Os {
        /// What was being done, e.g. "set the MTU of link-client".
        context: String,
        /// The error the kernel returned.
        source: io::Error,
    },

    /// The capture file could not be created or written.
    #[error("link capture {path}: {reason}; check that the directory exists and is writable")]
    Capture {
        /// The pcapng file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl LinkError {
    /// An [`LinkError::Os`] for the last OS error, with what was being done.
    pub(crate) fn last_os(context: impl Into<String>) -> Self {
        LinkError::Os {
            context: context.into(),
            source: io::Error::last_os_error(),
        }
    }

    /// A [`LinkError::Spec`] for one item of a spec.
    pub(crate) fn spec(item: &str, expected: impl Into<String>) -> Self {
        LinkError::Spec {
            item: item.to_string(),
            expected: expected.into(),
        }
    }
}
