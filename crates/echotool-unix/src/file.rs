//! The life of a socket file: what may be removed before binding, the mode it gets, and its
//! removal when the server stops.
//!
//! A server that dies leaves its socket file behind, and binding to that path then fails with
//! "address in use" although nobody uses it. So before binding, an existing path is looked at:
//! a socket that nobody answers on (connecting is refused) is stale and removed; a socket that
//! answers belongs to a live server and is left alone; anything that is not a socket (a file
//! someone may need) is never removed. On the way out the server removes its file, but only if
//! the path still names the very file it made: another server may have taken the path since.

use std::fs::{self, Permissions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};
use tracing::{debug, info};

use crate::UnixError;

/// Whether something answers on a socket path.
#[derive(Debug)]
enum Probe {
    /// A server accepted (or queued) the connection, or a socket of another type is bound
    /// there: in use.
    Live,
    /// Connecting was refused: no socket is bound to the file any more.
    Stale,
    /// It cannot be told (no permission to connect, or something odd).
    Unknown(io::Error),
}

/// Makes `path` free for a new socket: nothing there, or a stale socket (removed). Refuses a
/// socket a live server holds, a socket whose state cannot be told, and anything that is not
/// a socket.
pub fn clear_stale(url: &str, path: &Path) -> Result<(), UnixError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(UnixError::bind(url, crate::error::bind_reason(path, &e))),
    };
    let shown = path.display();
    if !meta.file_type().is_socket() {
        return Err(UnixError::bind(
            url,
            format!(
                "{shown} exists and is not a socket (it is {}); echotool never removes it: choose \
                 another path, or remove it yourself if it is not needed",
                describe(&meta)
            ),
        ));
    }
    match probe(path) {
        Probe::Live => Err(UnixError::bind(
            url,
            format!(
                "{shown} is already in use by a live server (it answers connections); stop that \
                 server, or choose another path"
            ),
        )),
        Probe::Stale => {
            fs::remove_file(path).map_err(|e| {
                UnixError::bind(
                    url,
                    format!(
                        "{shown} is a stale socket (nothing answers on it), and removing it \
                         failed: {e}; remove it yourself, or choose another path"
                    ),
                )
            })?;
            info!(path = %shown, "removed a stale socket file: nothing answered on it");
            Ok(())
        }
        Probe::Unknown(e) => Err(UnixError::bind(
            url,
            format!(
                "{shown} is a socket, and whether a server holds it cannot be told ({e}); \
                 echotool leaves it alone: remove it yourself if no server uses it, or choose \
                 another path"
            ),
        )),
    }
}

/// Connects to `path` without waiting, to learn whether a server holds it.
fn probe(path: &Path) -> Probe {
    let attempt = || -> io::Result<()> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.connect(&SockAddr::unix(path)?)
    };
    match attempt() {
        Ok(()) => Probe::Live,
        Err(e) => match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => Probe::Stale,
            // A full backlog, or a datagram (or other) socket bound there: alive either way.
            Some(libc::EAGAIN | libc::EINPROGRESS | libc::EPROTOTYPE) => Probe::Live,
            _ => Probe::Unknown(e),
        },
    }
}

/// What kind of file `meta` describes, for "it is a directory".
fn describe(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a named pipe"
    } else {
        "a device"
    }
}

/// Gives the socket `mode` before it is bound, so that the file never appears with more
/// permission than asked for (the kernel makes it with this mode less the umask). Best effort:
/// the mode is set exactly once the file exists ([`SocketFile::create`]).
pub fn restrict_before_bind(socket: &Socket, mode: u32) {
    let result = socket
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| fs::File::from(fd).set_permissions(Permissions::from_mode(mode)));
    if let Err(e) = result {
        debug!(error = %e, "could not set the socket's mode before binding");
    }
}

/// A socket file this server made, removed when dropped if it is still the same file.
#[derive(Debug)]
pub struct SocketFile {
    /// Absolute, so that removal does not depend on the working directory.
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Takes charge of the socket file just bound at `path`: sets its mode exactly (the umask
    /// may have taken bits away) and remembers which file it is.
    pub fn create(url: &str, path: &Path, mode: u32) -> Result<SocketFile, UnixError> {
        let failed = |e: io::Error| {
            // Without a record of it, the file would stay behind: remove it now.
            let _ = fs::remove_file(path);
            UnixError::bind(
                url,
                format!("setting the mode of {} failed: {e}", path.display()),
            )
        };
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(failed)?;
        let meta = fs::symlink_metadata(path).map_err(failed)?;
        Ok(SocketFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if !ours {
            debug!(path = %self.path.display(), "the socket file is gone or another's: left alone");
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => debug!(path = %self.path.display(), "removed the socket file"),
            Err(e) => debug!(path = %self.path.display(), error = %e,
                "could not remove the socket file"),
        }
    }
}

/// Who may connect to a socket file of `mode`, for the line under `listening on`.
pub fn who_may_connect(mode: u32) -> String {
    let who = if mode & 0o002 != 0 {
        "every local user may connect"
    } else if mode & 0o020 != 0 {
        "its owner and group may connect"
    } else if mode & 0o200 != 0 {
        "only its owner may connect"
    } else {
        "nobody but root may connect"
    };
    format!(
        "socket file mode {}: {who} (set it with --mode)",
        echotool_core::mode::display(mode)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixDatagram, UnixListener};

    /// A directory of its own for one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("echotool-unix-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn stale_sockets_go_live_ones_and_other_files_stay() {
        let dir = Scratch::new("stale");
        let path = dir.0.join("e.sock");
        assert!(clear_stale("u", &path).is_ok(), "nothing there");

        drop(UnixListener::bind(&path).unwrap());
        assert!(matches!(probe(&path), Probe::Stale));
        clear_stale("u", &path).unwrap();
        assert!(!path.exists(), "a stale socket is removed");

        let live = UnixListener::bind(&path).unwrap();
        let err = clear_stale("u", &path).unwrap_err().to_string();
        assert!(err.contains("already in use by a live server"), "{err}");
        drop(live);
        fs::remove_file(&path).unwrap();

        let datagrams = UnixDatagram::bind(&path).unwrap();
        let err = clear_stale("u", &path).unwrap_err().to_string();
        assert!(
            err.contains("live server"),
            "a datagram socket is alive too: {err}"
        );
        drop(datagrams);
        fs::remove_file(&path).unwrap();

        fs::write(&path, b"precious").unwrap();
        let err = clear_stale("u", &path).unwrap_err().to_string();
        assert!(
            err.contains("is not a socket (it is a regular file)"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn the_file_gets_its_mode_and_goes_only_if_it_is_still_ours() {
        let dir = Scratch::new("mode");
        let path = dir.0.join("e.sock");
        let first = UnixListener::bind(&path).unwrap();
        let file = SocketFile::create("u", &path, 0o640).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        drop(file);
        assert!(!path.exists());

        let _again = UnixListener::bind(&path).unwrap();
        let file = SocketFile::create("u", &path, 0o600).unwrap();
        fs::remove_file(&path).unwrap();
        let _another = UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists(), "another server's file stays");
        drop(first);
    }

    #[test]
    fn modes_say_who_may_connect() {
        assert!(who_may_connect(0o600).contains("0600: only its owner"));
        assert!(who_may_connect(0o660).contains("owner and group"));
        assert!(who_may_connect(0o666).contains("every local user"));
        assert!(who_may_connect(0o400).contains("nobody but root"));
    }
}
