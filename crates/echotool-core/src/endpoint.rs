//! Endpoints as users write them: `127.0.0.1:5555`, `[::1]:5555`, `localhost`, `:6000`,
//! `6000`, or a URL such as `tcp://127.0.0.1:5555` or `tls://[::1]:5556`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::{Error, Result};

/// The port echotool listens on and dials when none is given.
pub const DEFAULT_PORT: u16 = 5555;

/// An endpoint as typed: an optional protocol (URL scheme), an optional host and an optional port.
///
/// Missing parts are filled from the transport's defaults with [`Endpoint::host_port`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL scheme (`tcp`, `udp`, `tls`, ...), if the endpoint was written as a URL.
    pub proto: Option<String>,
    /// Host name or IP address, without brackets.
    pub host: Option<String>,
    /// Port number.
    pub port: Option<u16>,
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
                (
                    Some(scheme.to_ascii_lowercase()),
                    rest.trim_end_matches('/'),
                )
            }
            None => (None, text),
        };
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(bad("paths and queries are not part of an echo endpoint"));
        }
        let (host, port) = split_host_port(rest).map_err(|r| bad(&r))?;
        if host.is_none() && port.is_none() && proto.is_none() {
            return Err(bad("it is empty"));
        }
        Ok(Endpoint { proto, host, port })
    }

    /// The endpoint as `HOST:PORT` with brackets around IPv6 literals, filling in defaults.
    pub fn host_port(&self, default_host: &str, default_port: u16) -> HostPort {
        HostPort {
            host: self
                .host
                .clone()
                .unwrap_or_else(|| default_host.to_string()),
            port: self.port.unwrap_or(default_port),
        }
    }
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Endpoint::parse(s)
    }
}

/// A host (name or IP literal) and a port: an address before name resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// Port number.
    pub port: u16,
}

impl HostPort {
    /// The IP address, when the host is a literal rather than a name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
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
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("'{host}' inside brackets is not an IPv6 address"))?;
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
        _ => match text.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((Some(text.to_string()), None)),
            Err(_) => Err("an IPv6 address with a port needs brackets, as in [::1]:5555".into()),
        },
    }
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
    use super::*;

    fn ep(s: &str) -> (Option<String>, Option<String>, Option<u16>) {
        let e = Endpoint::parse(s).unwrap();
        (e.proto, e.host, e.port)
    }

    #[test]
    fn accepted_forms() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(ep("127.0.0.1:5555"), (None, s("127.0.0.1"), Some(5555)));
        assert_eq!(ep("[::1]:7"), (None, s("::1"), Some(7)));
        assert_eq!(ep("[::]:0"), (None, s("::"), Some(0)));
        assert_eq!(ep("::1"), (None, s("::1"), None));
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
            ("[::1:5555", "no closing"),
            ("[nope]:1", "not an IPv6"),
            ("tcp://a/b", "paths"),
            ("bad host:1", "not a host name"),
            ("://x", "not a name"),
        ] {
            let err = Endpoint::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("expected HOST:PORT"), "{input}: {err}");
        }
    }

    #[test]
    fn host_port_brackets_v6() {
        let e = Endpoint::parse("::1").unwrap();
        assert_eq!(e.host_port("127.0.0.1", 5555).to_string(), "[::1]:5555");
        let e = Endpoint::parse(":1").unwrap();
        assert_eq!(e.host_port("127.0.0.1", 5555).to_string(), "127.0.0.1:1");
    }
}
