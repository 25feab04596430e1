//! The error type of the Unix socket crate: a bind or a connect that failed, explained in
//! terms of paths, files and permissions (which is what goes wrong with Unix sockets) rather
//! than ports and firewalls.

use std::io;
use std::path::Path;

use echotool_core::Error;

/// What can go wrong with a Unix domain socket, in words.
#[derive(Debug, thiserror::Error)]
pub enum UnixError {
    /// The path (or abstract name) does not fit in a socket address.
    #[error(
        "{url}: the socket {what} is {len} bytes long, and a Unix socket address holds at most \
         {max} (sun_path is 108 bytes, {nul}); use a shorter one, e.g. in /run or /tmp, or a \
         path relative to the directory you start in (unix://./echo.sock)"
    )]
    TooLong {
        /// The endpoint.
        url: String,
        /// "path" or "abstract name".
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most that fits.
        max: usize,
        /// Where the missing byte went.
        nul: &'static str,
    },
    /// Binding failed.
    #[error("cannot listen on {url}: {why}")]
    Bind {
        /// The endpoint.
        url: String,
        /// What went wrong and what to do.
        why: String,
    },
    /// Connecting failed.
    #[error("could not connect to {url}: {why}")]
    Connect {
        /// The endpoint.
        url: String,
        /// What went wrong and what to do.
        why: String,
    },
}

impl From<UnixError> for Error {
    fn from(e: UnixError) -> Self {
        Error::Transport(Box::new(e))
    }
}

impl UnixError {
    /// A failed bind, explained.
    pub(crate) fn bind(url: &str, why: impl Into<String>) -> Self {
        UnixError::Bind {
            url: url.to_string(),
            why: why.into(),
        }
    }

    /// A failed connect, explained.
    pub(crate) fn connect(url: &str, why: impl Into<String>) -> Self {
        UnixError::Connect {
            url: url.to_string(),
            why: why.into(),
        }
    }
}

/// The directory a socket file is made in, for messages: its parent, or `.` for a bare name.
pub(crate) fn directory(path: &Path) -> String {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".into(),
    }
}

/// Why binding the socket file `path` failed, and what to do.
pub(crate) fn bind_reason(path: &Path, err: &io::Error) -> String {
    let dir = directory(path);
    match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => format!(
            "permission denied: this user may not create files in {dir} (or may not pass a \
             directory on the way); choose a directory it can write to, such as \
             $XDG_RUNTIME_DIR or /tmp, or start the server as a user who may"
        ),
        Some(libc::ENOENT) => {
            format!("no such directory: {dir}; create it first (mkdir -p {dir})")
        }
        Some(libc::ENOTDIR) => {
            format!("a part of {} is not a directory", path.display())
        }
        Some(libc::EROFS) => format!("{dir} is on a read-only file system"),
        Some(libc::EADDRINUSE) => format!(
            "{} was taken by another socket just now; stop whatever holds it, or choose another \
             path",
            path.display()
        ),
        _ => err.to_string(),
    }
}
