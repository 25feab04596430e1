//! Endpoints as users write them: `127.0.0.1:5555`, `[::1]:5555`, `localhost`, `:6000`,
//! `6000`, or a URL such as `tcp://127.0.0.1:5555` or `tls://[::1]:5556`. IPv6 link-local
//! addresses carry their interface as a scope id: `[fe80::1%eth0]:5555`.
//!
//! Some transports are addressed by a path instead: a socket file (`unix:///run/e.sock`,
//! `./e.sock`) or a Linux abstract name (`unix://@name`); others by a host, a port and a URL
//! path (`ws://127.0.0.1:5555/echo`). Parsing keeps whichever was written; whether it suits the
//! transport is [`crate::Registry::locate`]'s to say, from [`crate::Transport::addressing`].

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::str::FromStr;

use crate::{Error, Result};

/// The port echotool listens on and dials when none is given.
pub const DEFAULT_PORT: u16 = 5555;

/// An endpoint as typed: an optional protocol (URL scheme), an optional host, an optional port
/// and an optional path.
///
/// Missing parts are filled from the transport's defaults with [`Endpoint::fill`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL scheme (`tcp`, `udp`, `tls`, ...), if the endpoint was written as a URL.
    pub proto: Option<String>,
    /// Host name or IP address, without brackets.
    pub host: Option<String>,
    /// Port number.
    pub port: Option<u16>,
    /// A socket path or abstract name (`/run/e.sock`, `./e.sock`, `@name`) when the endpoint
    /// is one, without host or port; or the URL path after `HOST:PORT` (`/echo`).
    pub path: Option<String>,
}

impl Endpoint {
    /// Parses an endpoint; see the module documentation for the accepted forms.
    ///
    /// ```
    /// use echotool_core::Endpoint;
    /// let e: Endpoint = "tls://[::1]:5556".parse().unwrap();
    /// assert_eq!(e.proto.as_deref(), Some("tls"));
    /// assert_eq!(e.host.as_deref(), Some("::1"));
    /// assert_eq!(e.port, Some(5556));
    /// ```
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::BadAddress {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let text = input.trim();
        let (proto, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let valid = !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
                if !valid {
                    return Err(bad("the protocol before :// is not a name"));
                }
                // `tcp://h:1/` and `udp:///` say no more than `tcp://h:1` and `udp://`.
                let rest = match rest.trim_end_matches('/') {
                    "" => "",
                    _ => rest,
                };
                (Some(scheme.to_ascii_lowercase()), rest)
            }
            None => (None, text),
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(bad(
                "queries (?) and fragments (#) are not part of an echo endpoint",
            ));
        }
        if is_socket_path(rest) {
            if rest == "@" {
                return Err(bad("the abstract socket name after @ is empty"));
            }
            return Ok(Endpoint {
                proto,
                host: None,
                port: None,
                path: Some(rest.to_string()),
            });
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], url_path(&rest[at..])),
            None => (rest, None),
        };
        let (host, port) = split_host_port(authority).map_err(|r| bad(&r))?;
        if host.is_none() && port.is_none() && proto.is_none() && path.is_none() {
            return Err(bad("it is empty"));
        }
        Ok(Endpoint {
            proto,
            host,
            port,
            path,
        })
    }

    /// The endpoint with what it leaves out taken from `default` (a transport's
    /// [`crate::Transport::default_addr`]): host, port and path each.
    pub fn fill(&self, default: &HostPort) -> HostPort {
        HostPort {
            host: self.host.clone().unwrap_or_else(|| default.host.clone()),
            port: self.port.unwrap_or(default.port),
            path: self.path.clone().or_else(|| default.path.clone()),
        }
    }

    /// Whether this is a socket path or abstract name alone, with no host or port.
    pub fn is_socket_path(&self) -> bool {
        self.host.is_none() && self.port.is_none() && self.path.is_some()
    }
}

/// Whether an endpoint written as `text` (after any `scheme://`) is a socket path: it starts
/// with `/`, `./` or `../`, or is an abstract name, `@name`.
fn is_socket_path(text: &str) -> bool {
    ["/", "@", "./", "../"].iter().any(|p| text.starts_with(p))
}

/// A URL path after `HOST:PORT`; slashes alone are no path.
fn url_path(text: &str) -> Option<String> {
    (!text.trim_end_matches('/').is_empty()).then(|| text.to_string())
}

impl fmt::Display for Endpoint {
    /// The endpoint as it was typed, give or take letter case and redundant slashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(proto) = &self.proto {
            write!(f, "{proto}://")?;
        }
        match &self.host {
            Some(host) if host.contains(':') => write!(f, "[{host}]")?,
            Some(host) => f.write_str(host)?,
            None => {}
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(self.path.as_deref().unwrap_or_default())
    }
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Endpoint::parse(s)
    }
}

/// A host (name or IP literal) and a port: an address before name resolution. Or, for
/// transports addressed by a path, a socket path or abstract name alone (no host, port 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address, without brackets; empty for a socket path.
    pub host: String,
    /// Port number; 0 for a socket path.
    pub port: u16,
    /// The socket path or abstract name (`/run/e.sock`, `@name`) of a path endpoint, or the
    /// URL path after `HOST:PORT` (`/echo`); `None` for plain `HOST:PORT`.
    pub path: Option<String>,
}

impl HostPort {
    /// `host:port`, with no path.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            host: host.into(),
            port,
            path: None,
        }
    }

    /// A socket path or abstract name (`/run/e.sock`, `./e.sock`, `@name`) alone.
    pub fn at_path(path: impl Into<String>) -> Self {
        HostPort {
            host: String::new(),
            port: 0,
            path: Some(path.into()),
        }
    }

    /// The socket path or abstract name, when this is a path endpoint (no host).
    pub fn socket_path(&self) -> Option<&str> {
        self.path.as_deref().filter(|_| self.host.is_empty())
    }

    /// The IP address, when the host is a literal rather than a name (without any scope id).
    pub fn ip(&self) -> Option<IpAddr> {
        let (addr, _zone) = split_zone(&self.host);
        addr.parse().ok()
    }

    /// The socket address, when the host is an IP literal; an IPv6 scope id (`%eth0` or
    /// `%2`) becomes the address's scope. `None` for a name, or an unknown interface.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let (addr, zone) = split_zone(&self.host);
        let ip: IpAddr = addr.parse().ok()?;
        match (ip, zone) {
            (ip, None) => Some(SocketAddr::new(ip, self.port)),
            (IpAddr::V6(v6), Some(zone)) => {
                let scope = scope_index(zone)?;
                Some(SocketAddrV6::new(v6, self.port, 0, scope).into())
            }
            (IpAddr::V4(_), Some(_)) => None,
        }
    }
}

/// `fe80::1%eth0` into `fe80::1` and `eth0`.
fn split_zone(host: &str) -> (&str, Option<&str>) {
    match host.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (host, None),
    }
}

/// An interface's index from its name (`lo`) or number (`1`).
fn scope_index(zone: &str) -> Option<u32> {
    if let Ok(index) = zone.parse() {
        return Some(index);
    }
    let name = std::ffi::CString::new(zone).ok()?;
    // SAFETY: `name` is a NUL-terminated string that lives across the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// An interface's name from its index, for printing scope ids the way they are typed.
fn scope_name(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if name.is_null() {
        return index.to_string();
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `buf`.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        let host = match addr {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => {
                format!("{}%{}", v6.ip(), scope_name(v6.scope_id()))
            }
            _ => addr.ip().to_string(),
        };
        HostPort::new(host, addr.port())
    }
}

impl fmt::Display for HostPort {
    /// `HOST:PORT` (IPv6 in brackets) and any URL path after it; a path endpoint as its path
    /// alone, so that `format!("{proto}://{addr}")` is `unix:///run/e.sock` or `unix://@name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = self.socket_path() {
            return f.write_str(path);
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        f.write_str(self.path.as_deref().unwrap_or_default())
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, bare `v6`, `host`, `:port` or `port`.
fn split_host_port(text: &str) -> std::result::Result<(Option<String>, Option<u16>), String> {
    let port_of = |p: &str| -> std::result::Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("'{p}' is not a port number (0 to 65535)"))
    };
    if text.is_empty() {
        return Ok((None, None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an opening '[' has no closing ']'")?;
        check_v6(host)?;
        let port = match after {
            "" => None,
            _ => Some(port_of(
                after
                    .strip_prefix(':')
                    .ok_or("expected ':PORT' after ']'")?,
            )?),
        };
        return Ok((Some(host.to_string()), port));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((None, Some(port_of(text)?)));
    }
    match text.matches(':').count() {
        0 => Ok((Some(check_host(text)?), None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            let host = if host.is_empty() {
                None
            } else {
                Some(check_host(host)?)
            };
            Ok((host, Some(port_of(port)?)))
        }
        _ => match check_v6(text) {
            Ok(()) => {
                ambiguous_port(text)?;
                Ok((Some(text.to_string()), None))
            }
            Err(_) => Err("an IPv6 address with a port needs brackets, as in [::1]:5555".into()),
        },
    }
}

/// An IPv6 literal, with an optional scope id (`fe80::1%eth0`, `fe80::1%2`).
fn check_v6(host: &str) -> std::result::Result<(), String> {
    let (addr, zone) = split_zone(host);
    addr.parse::<std::net::Ipv6Addr>()
        .map_err(|_| format!("'{host}' inside brackets is not an IPv6 address"))?;
    match zone {
        Some(zone)
            if zone.is_empty()
                || !zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            Err(format!(
                "'{zone}' after % is not an interface name or number"
            ))
        }
        _ => Ok(()),
    }
}

/// `::1:5555` is a valid IPv6 address, but almost always meant as port 5555 of `::1`: refuse
/// to guess when the last group is a decimal number and what comes before it is an address
/// too.
fn ambiguous_port(text: &str) -> std::result::Result<(), String> {
    let Some((before, last)) = text.rsplit_once(':') else {
        return Ok(());
    };
    let looks_like_port = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    if looks_like_port && !before.is_empty() && check_v6(before).is_ok() {
        return Err(format!(
            "it is ambiguous: write [{before}]:{last} for port {last} of {before}, or [{text}] \
             for the address {text} itself (an IPv6 address with a port needs brackets)"
        ));
    }
    Ok(())
}

fn check_host(host: &str) -> std::result::Result<String, String> {
    let ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if ok {
        Ok(host.to_string())
    } else {
        Err(format!("'{host}' is not a host name or IP address"))
    }
}

#[cfg(test)]
mod tests {
    /// Found by the endpoint fuzz target once endpoints could carry a path: an endpoint
    /// written back (Display) parses to the same endpoint, path included.
    #[test]
    fn written_back_an_endpoint_parses_the_same_path_included() {
        for text in [
            "ttcp6//[+::]:5556",
            "ws://127.0.0.1:5557/echo",
            "unix:///run/e.sock",
        ] {
            let endpoint = Endpoint::parse(text).unwrap();
            let again = Endpoint::parse(&endpoint.to_string()).unwrap();
            assert_eq!(again, endpoint, "{text:?} written back as {endpoint}");
        }
    }

    use super::*;

    fn ep(s: &str) -> (Option<String>, Option<String>, Option<u16>) {
        let e = Endpoint::parse(s).unwrap();
        assert_eq!(e.path, None, "{s}");
        (e.proto, e.host, e.port)
    }

    /// The scheme, host and path of an endpoint with a path.
    fn with_path(s: &str) -> (Option<String>, Option<String>, Option<u16>, String) {
        let e = Endpoint::parse(s).unwrap();
        (e.proto, e.host, e.port, e.path.expect(s))
    }

    #[test]
    fn accepted_forms() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(ep("127.0.0.1:5555"), (None, s("127.0.0.1"), Some(5555)));
        assert_eq!(ep("[::1]:7"), (None, s("::1"), Some(7)));
        assert_eq!(ep("[::]:0"), (None, s("::"), Some(0)));
        assert_eq!(ep("::1"), (None, s("::1"), None));
        assert_eq!(ep("[::1:5555]"), (None, s("::1:5555"), None));
        assert_eq!(ep("[fe80::1%lo]:7"), (None, s("fe80::1%lo"), Some(7)));
        assert_eq!(ep("fe80::1%2"), (None, s("fe80::1%2"), None));
        assert_eq!(ep("localhost"), (None, s("localhost"), None));
        assert_eq!(ep(":6000"), (None, None, Some(6000)));
        assert_eq!(ep("6000"), (None, None, Some(6000)));
        assert_eq!(ep("TCP://h:1/"), (s("tcp"), s("h"), Some(1)));
        assert_eq!(ep("tls://[::1]:5556"), (s("tls"), s("::1"), Some(5556)));
        assert_eq!(ep("udp://"), (s("udp"), None, None));
    }

    #[test]
    fn rejected_forms() {
        for (input, why) in [
            ("", "empty"),
            ("127.0.0.1:99999", "not a port"),
            ("127.0.0.1:http", "not a port"),
            ("::1:5555x", "needs brackets"),
            (
                "::1:5555",
                "write [::1]:5555 for port 5555 of ::1, or [::1:5555]",
            ),
            ("[fe80::1%]:1", "after % is not an interface"),
            ("[::1:5555", "no closing"),
            ("[nope]:1", "not an IPv6"),
            ("tcp://a/b?x=1", "queries (?) and fragments (#)"),
            ("/tmp/e#1.sock", "fragments"),
            ("unix://@", "abstract socket name after @ is empty"),
            ("bad host:1", "not a host name"),
            ("://x", "not a name"),
        ] {
            let err = Endpoint::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("expected HOST:PORT"), "{input}: {err}");
        }
    }

    #[test]
    fn socket_paths_and_url_paths() {
        let s = |v: &str| Some(v.to_string());
        let unix = s("unix");
        for (input, path) in [
            ("unix:///run/e.sock", "/run/e.sock"),
            ("unix://@name", "@name"),
            ("unix://./e.sock", "./e.sock"),
            ("UNIX://../up/e.sock", "../up/e.sock"),
        ] {
            assert_eq!(with_path(input), (unix.clone(), None, None, path.into()));
        }
        assert_eq!(
            with_path("/tmp/e.sock"),
            (None, None, None, "/tmp/e.sock".into())
        );
        assert_eq!(with_path("@echo"), (None, None, None, "@echo".into()));
        assert_eq!(
            with_path("ws://127.0.0.1:5555/echo"),
            (s("ws"), s("127.0.0.1"), Some(5555), "/echo".into())
        );
        assert_eq!(
            with_path("ws://[::1]/a/b/"),
            (s("ws"), s("::1"), None, "/a/b/".into())
        );
        assert!(Endpoint::parse("/tmp/e.sock").unwrap().is_socket_path());
        assert!(!Endpoint::parse("ws://h:1/echo").unwrap().is_socket_path());
        assert_eq!(ep("udp:///"), (s("udp"), None, None));
    }

    #[test]
    fn endpoints_display_as_typed_and_fill_from_a_default() {
        for text in [
            "unix:///run/e.sock",
            "unix://@n",
            "ws://[::1]:1/echo",
            "/tmp/x",
            ":7",
        ] {
            assert_eq!(Endpoint::parse(text).unwrap().to_string(), text);
        }
        let sock = HostPort::at_path("/run/default.sock");
        let unix = Endpoint::parse("unix://./e.sock").unwrap().fill(&sock);
        assert_eq!(
            (unix.socket_path(), unix.to_string()),
            (Some("./e.sock"), "./e.sock".into())
        );
        assert_eq!(Endpoint::parse("unix://").unwrap().fill(&sock), sock);
        assert_eq!(format!("unix://{sock}"), "unix:///run/default.sock");
        let ws_default = HostPort {
            path: Some("/".into()),
            ..HostPort::new("127.0.0.1", 5555)
        };
        let ws = Endpoint::parse("ws://:80/echo").unwrap().fill(&ws_default);
        assert_eq!(
            (ws.socket_path(), ws.to_string()),
            (None, "127.0.0.1:80/echo".into())
        );
        let ws = Endpoint::parse("ws://h").unwrap().fill(&ws_default);
        assert_eq!(ws.to_string(), "h:5555/");
    }

    #[test]
    fn scope_ids_become_the_socket_address_scope() {
        let hp = Endpoint::parse("[fe80::1%lo]:7")
            .unwrap()
            .fill(&HostPort::new("127.0.0.1", 1));
        let addr = hp.socket_addr().expect("lo exists");
        let SocketAddr::V6(v6) = addr else {
            panic!("{addr}")
        };
        assert_eq!(v6.scope_id(), scope_index("lo").unwrap());
        assert_eq!(HostPort::from(addr).to_string(), "[fe80::1%lo]:7");
        assert_eq!(hp.to_string(), "[fe80::1%lo]:7");
        let unknown = HostPort::new("fe80::1%nosuchif0", 1);
        assert_eq!(unknown.socket_addr(), None);
    }

    #[test]
    fn host_port_brackets_v6() {
        let default = HostPort::new("127.0.0.1", 5555);
        let e = Endpoint::parse("::1").unwrap();
        assert_eq!(e.fill(&default).to_string(), "[::1]:5555");
        let e = Endpoint::parse(":1").unwrap();
        assert_eq!(e.fill(&default).to_string(), "127.0.0.1:1");
    }
}
