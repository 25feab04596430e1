//! Socket names as endpoints carry them: a file path (`/run/echo.sock`, `./echo.sock`), or a
//! Linux abstract name written `@name`, which lives in the kernel only (no file, no mode, gone
//! when its socket closes) and is seen by every process in the same network namespace.
//!
//! Either must fit in `sun_path`, 108 bytes: a path with the NUL that ends it, an abstract
//! name with the NUL that marks it.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use echotool_core::HostPort;
use socket2::SockAddr;

use crate::UnixError;

/// The size of `sun_path` in `struct sockaddr_un` on Linux.
pub const SUN_PATH: usize = 108;

/// Where a Unix socket is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketName {
    /// A socket file.
    File(PathBuf),
    /// A name in the abstract namespace, without its leading NUL (written `@name`).
    Abstract(Vec<u8>),
}

impl SocketName {
    /// The name an endpoint gives, checked to fit in a socket address. `url` names the
    /// endpoint in errors.
    pub fn of(url: &str, addr: &HostPort) -> Result<SocketName, UnixError> {
        let Some(path) = addr.socket_path() else {
            return Err(UnixError::bind(
                url,
                "a Unix socket endpoint is a path (unix:///run/echo.sock) or an abstract name \
                 (unix://@name), with no host or port",
            ));
        };
        let (name, what, len, nul) = match path.strip_prefix('@') {
            Some(name) => {
                let len = name.len();
                let name = SocketName::Abstract(name.as_bytes().to_vec());
                (
                    name,
                    "abstract name",
                    len,
                    "one of them the NUL that marks it abstract",
                )
            }
            None => {
                let name = SocketName::File(PathBuf::from(path));
                (
                    name,
                    "path",
                    path.len(),
                    "one of them the NUL that ends the path",
                )
            }
        };
        let max = SUN_PATH - 1;
        if len > max {
            return Err(UnixError::TooLong {
                url: url.to_string(),
                what,
                len,
                max,
                nul,
            });
        }
        Ok(name)
    }

    /// The socket address, for socket2.
    pub fn sock_addr(&self) -> std::io::Result<SockAddr> {
        SockAddr::unix(self.os_path())
    }

    /// The name as tokio and socket2 take it: the path, or the abstract name after a NUL.
    pub fn os_path(&self) -> PathBuf {
        match self {
            SocketName::File(path) => path.clone(),
            SocketName::Abstract(name) => {
                let bytes = [&[0u8][..], name].concat();
                PathBuf::from(OsStr::from_bytes(&bytes))
            }
        }
    }

    /// The socket file, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SocketName::File(path) => Some(path),
            SocketName::Abstract(_) => None,
        }
    }
}

impl fmt::Display for SocketName {
    /// The path, or `@name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketName::File(path) => write!(f, "{}", path.display()),
            SocketName::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_abstract_names_fit_in_sun_path_or_say_why_not() {
        let file = SocketName::of("u", &HostPort::at_path("./e.sock")).unwrap();
        assert_eq!(file, SocketName::File("./e.sock".into()));
        assert_eq!(file.to_string(), "./e.sock");
        let named = SocketName::of("u", &HostPort::at_path("@echo")).unwrap();
        assert_eq!(named.os_path().as_os_str().as_bytes(), b"\0echo");
        assert_eq!(named.to_string(), "@echo");

        let longest = format!("/{}", "x".repeat(106));
        assert!(SocketName::of("u", &HostPort::at_path(longest.as_str())).is_ok());
        let err = SocketName::of("unix:///xx", &HostPort::at_path(format!("{longest}y")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "unix:///xx: the socket path is 108 bytes long, and a Unix socket \
                 address holds at most 107 (sun_path is 108 bytes, one of them the NUL that \
                 ends the path)"
            ),
            "{err}"
        );
        let abstract_name = format!("@{}", "x".repeat(107));
        assert!(SocketName::of("u", &HostPort::at_path(abstract_name.as_str())).is_ok());
        let err = SocketName::of("u", &HostPort::at_path(format!("{abstract_name}y")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("abstract name is 108 bytes long"), "{err}");
        let err = SocketName::of("u", &HostPort::new("localhost", 1)).unwrap_err();
        assert!(err.to_string().contains("no host or port"), "{err}");
    }
}
