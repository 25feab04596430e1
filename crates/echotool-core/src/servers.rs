//! Running servers: bind every listener first, then serve them all until shutdown, then report.
//!
//! Before binding, listeners that could never bind side by side (the same kind of socket on
//! overlapping addresses and the same port) are refused as a whole, with both named, instead of
//! failing on whichever the kernel refuses second.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::{
    Binding, EchoStats, Error, Family, HostPort, Kind, Result, Server, ServerOptions,
    StatsSnapshot, Transport,
};

/// What a running server gets from the process: its name for logs, its counters and the signal
/// to stop.
#[derive(Clone)]
pub struct ServeContext {
    /// The listener as a URL (`tcp://127.0.0.1:5555`), used in every log line.
    pub url: String,
    /// This listener's counters.
    pub stats: Arc<EchoStats>,
    /// Cancelled when the process shuts down: stop accepting, finish in-flight echoes.
    pub shutdown: CancellationToken,
}

/// One listener to start: which transport, where, and how.
#[derive(Clone)]
pub struct ListenSpec {
    /// The transport, from the [`crate::Registry`].
    pub transport: Arc<dyn Transport>,
    /// Where to bind.
    pub addr: HostPort,
    /// Its settings.
    pub options: ServerOptions,
    /// Where the listener was written, e.g. `echotool.toml, line 12, key 'listen'`, so that
    /// errors at bind time point there; `None` for listeners given as flags.
    pub origin: Option<String>,
}

impl ListenSpec {
    /// The listener as a URL, as asked for: `tcp://127.0.0.1:5555`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.transport.name(), self.addr)
    }

    /// The URL, followed by where it was written when known.
    fn described(&self) -> String {
        match &self.origin {
            Some(origin) => format!("{} ({origin})", self.url()),
            None => self.url(),
        }
    }
}

/// Two listeners that cannot both bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Index of the earlier listener.
    pub first: usize,
    /// Index of the later listener, the one that would fail to bind.
    pub second: usize,
    /// Why, e.g. "both need TCP port 5555, and 0.0.0.0 includes 127.0.0.1".
    pub why: String,
    /// What both need.
    pub binding: Binding,
}

impl Conflict {
    /// What to change so that both can bind: "give one of them another port" (or path).
    pub fn remedy(&self) -> &'static str {
        match self.binding {
            Binding::Path => "give one of them another path",
            Binding::Tcp | Binding::Udp => "give one of them another port",
        }
    }
}

/// The first pair of listeners that occupy the same kind of socket ([`Transport::binds`]) on
/// the same non-zero port at overlapping addresses. IP literals are compared by what they
/// cover (`0.0.0.0` every IPv4 address, `[::]` every IPv6 address and, unless the transport is
/// IPv6-only, every IPv4 address too); host names only with the same name. Socket paths
/// conflict when they are written the same (the kernel has the last word on `./a` and `a`).
pub fn find_conflict(specs: &[ListenSpec]) -> Option<Conflict> {
    for (second, b) in specs.iter().enumerate() {
        for (first, a) in specs[..second].iter().enumerate() {
            let binding = a.transport.binds();
            if binding != b.transport.binds() {
                continue;
            }
            let why = match binding {
                Binding::Path => same_path(a, b),
                Binding::Tcp | Binding::Udp => same_port(a, b),
            };
            if let Some(why) = why {
                return Some(Conflict {
                    first,
                    second,
                    why,
                    binding,
                });
            }
        }
    }
    None
}

/// Why two listeners on IP sockets of one kind cannot both bind, if they cannot.
fn same_port(a: &ListenSpec, b: &ListenSpec) -> Option<String> {
    if a.addr.port == 0 || a.addr.port != b.addr.port {
        return None;
    }
    let overlap = overlap(a, b)?;
    Some(format!(
        "both need {} port {}{overlap}",
        a.transport.binds(),
        a.addr.port
    ))
}

/// Why two listeners on socket paths cannot both bind, if they cannot.
fn same_path(a: &ListenSpec, b: &ListenSpec) -> Option<String> {
    let path = a.addr.path.as_deref()?;
    (b.addr.path.as_deref() == Some(path)).then(|| format!("both need the socket path {path}"))
}

/// What part of the address space a listener's socket takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cover {
    /// One address (IPv4-mapped IPv6 addresses of a dual-stack socket as IPv4).
    One(IpAddr),
    /// `0.0.0.0`.
    AllV4,
    /// `[::]` with IPV6_V6ONLY.
    AllV6,
    /// `[::]` without IPV6_V6ONLY: every IPv4 and IPv6 address.
    All,
}

impl Cover {
    fn of(ip: IpAddr, v6only: bool) -> Cover {
        let ip = match ip {
            IpAddr::V6(v6) if !v6only => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => Cover::AllV4,
            IpAddr::V6(v6) if v6.is_unspecified() && v6only => Cover::AllV6,
            IpAddr::V6(v6) if v6.is_unspecified() => Cover::All,
            _ => Cover::One(ip),
        }
    }

    /// Whether every address of `other` is one of this cover's.
    fn includes(self, other: Cover) -> bool {
        match (self, other) {
            (Cover::All, _) => true,
            (Cover::AllV4, Cover::AllV4 | Cover::One(IpAddr::V4(_))) => true,
            (Cover::AllV6, Cover::AllV6 | Cover::One(IpAddr::V6(_))) => true,
            (Cover::One(a), Cover::One(b)) => a == b,
            _ => false,
        }
    }
}

/// How the addresses of two listeners overlap, as the end of a sentence (", and 0.0.0.0
/// includes 127.0.0.1"), or `None` when they do not.
fn overlap(a: &ListenSpec, b: &ListenSpec) -> Option<String> {
    let (ha, hb) = (&a.addr.host, &b.addr.host);
    let (Some(ia), Some(ib)) = (a.addr.ip(), b.addr.ip()) else {
        return ha.eq_ignore_ascii_case(hb).then(|| format!(" on {ha}"));
    };
    let v6only = |spec: &ListenSpec| spec.transport.family() == Family::V6;
    let (ca, cb) = (Cover::of(ia, v6only(a)), Cover::of(ib, v6only(b)));
    let show = |ip: IpAddr| match ip {
        IpAddr::V6(_) => format!("[{ip}]"),
        IpAddr::V4(_) => ip.to_string(),
    };
    let dual = |cover: Cover| match cover {
        Cover::All => " ([::] takes IPv4 too, unless IPv6-only as tcp6 is)",
        _ => "",
    };
    if ca == cb && ia == ib {
        Some(format!(" on {}", show(ia)))
    } else if ca.includes(cb) {
        Some(format!(
            ", and {} includes {}{}",
            show(ia),
            show(ib),
            dual(ca)
        ))
    } else if cb.includes(ca) {
        Some(format!(
            ", and {} includes {}{}",
            show(ib),
            show(ia),
            dual(cb)
        ))
    } else {
        None
    }
}

/// A listener whose socket is bound and listening, not yet serving.
pub struct BoundListener {
    /// `proto://addr` with the real port.
    pub url: String,
    /// Lines to print after `listening on ...`.
    pub notes: Vec<String>,
    /// The address actually bound, or the socket path.
    pub local_addr: HostPort,
    kind: Kind,
    server: Box<dyn Server>,
}

impl BoundListener {
    /// Adjusts a client's options so that it trusts this server ([`Server::introduce`]).
    pub fn introduce(&self, client: &mut crate::ClientOptions) {
        self.server.introduce(client);
    }
}

/// Binds every listener, in order. Listeners that conflict ([`find_conflict`]) are refused
/// before anything is bound. If one fails, those already bound are closed and the error names
/// the one that failed, and where it was written: nothing is left half-running.
pub async fn bind_all(specs: &[ListenSpec]) -> Result<Vec<BoundListener>> {
    if let Some(conflict) = find_conflict(specs) {
        let (a, b) = (&specs[conflict.first], &specs[conflict.second]);
        return Err(Error::Invalid(format!(
            "{} conflicts with {}: {}; {}{}",
            b.described(),
            a.described(),
            conflict.why,
            conflict.remedy(),
            match conflict.binding {
                Binding::Path => "",
                Binding::Tcp | Binding::Udp => " (port 0 picks a free one)",
            }
        )));
    }
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let server = match spec.transport.bind(&spec.addr, &spec.options).await {
            Ok(server) => server,
            Err(err) => {
                return Err(match &spec.origin {
                    Some(origin) => Error::Located {
                        origin: origin.clone(),
                        source: Box::new(err),
                    },
                    None => err,
                });
            }
        };
        let local_addr = server.local_addr();
        let url = format!("{}://{local_addr}", spec.transport.name());
        bound.push(BoundListener {
            url,
            notes: server.notes(),
            local_addr,
            kind: spec.transport.kind(),
            server,
        });
    }
    Ok(bound)
}

/// Listeners that are serving.
pub struct Running {
    shutdown: CancellationToken,
    listeners: Vec<(String, Arc<EchoStats>, JoinHandle<Result<()>>)>,
}

/// The final word of one listener.
#[derive(Clone, Debug)]
pub struct ListenerSummary {
    /// The listener's URL.
    pub url: String,
    /// Its counters at the end.
    pub stats: StatsSnapshot,
    /// Why it stopped early, if it did.
    pub failure: Option<String>,
}

/// Starts serving every bound listener on the current runtime.
pub fn start(bound: Vec<BoundListener>) -> Running {
    let shutdown = CancellationToken::new();
    let listeners = bound
        .into_iter()
        .map(|b| {
            let stats = Arc::new(EchoStats::new(b.kind));
            let ctx = ServeContext {
                url: b.url.clone(),
                stats: stats.clone(),
                shutdown: shutdown.clone(),
            };
            (b.url, stats, tokio::spawn(b.server.serve(ctx)))
        })
        .collect();
    Running {
        shutdown,
        listeners,
    }
}

impl Running {
    /// The listeners' URLs and live counters, shared so that a reader outliving this borrow
    /// (a metrics collector) keeps reading the live values.
    pub fn stats(&self) -> impl Iterator<Item = (&str, &Arc<EchoStats>)> {
        self.listeners
            .iter()
            .map(|(url, stats, _)| (url.as_str(), stats))
    }

    /// Stops accepting, lets in-flight echoes finish (each listener's drain timeout), and
    /// returns every listener's counters.
    pub async fn stop(self) -> Vec<ListenerSummary> {
        self.shutdown.cancel();
        let mut summaries = Vec::with_capacity(self.listeners.len());
        for (url, stats, handle) in self.listeners {
            let failure = match handle.await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(join) => Some(format!("the listener task failed: {join}")),
            };
            if let Some(why) = &failure {
                error!(listener = %url, error = %why, "listener stopped");
            }
            let stats = stats.snapshot();
            debug!(listener = %url, connections = stats.connections, messages = stats.messages,
                bytes_in = stats.bytes_in, bytes_out = stats.bytes_out, errors = stats.errors,
                "stopped");
            summaries.push(ListenerSummary {
                url,
                stats,
                failure,
            });
        }
        summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientOptions, Connection, async_trait};

    /// A transport that only has a name, a family and a binding.
    struct Fake(&'static str, Family, Binding);

    #[async_trait]
    impl Transport for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn summary(&self) -> &'static str {
            "a stand-in"
        }
        fn family(&self) -> Family {
            self.1
        }
        fn binds(&self) -> Binding {
            self.2
        }
        async fn bind(&self, _: &HostPort, _: &ServerOptions) -> Result<Box<dyn Server>> {
            Err(Error::Invalid("not here".into()))
        }
        async fn dial(&self, _: &HostPort, _: &ClientOptions) -> Result<Connection> {
            Err(Error::Invalid("not here".into()))
        }
    }

    fn spec(url: &str) -> ListenSpec {
        let (proto, rest) = url.split_once("://").unwrap();
        let endpoint = crate::Endpoint::parse(rest).unwrap();
        let transport: Arc<dyn Transport> = match proto {
            "tcp" => Arc::new(Fake("tcp", Family::Any, Binding::Tcp)),
            "tcp6" => Arc::new(Fake("tcp6", Family::V6, Binding::Tcp)),
            "tls" => Arc::new(Fake("tls", Family::Any, Binding::Tcp)),
            "udp" => Arc::new(Fake("udp", Family::Any, Binding::Udp)),
            "quic" => Arc::new(Fake("quic", Family::Any, Binding::Udp)),
            "unix" => Arc::new(Fake("unix", Family::Any, Binding::Path)),
            "unixgram" => Arc::new(Fake("unixgram", Family::Any, Binding::Path)),
            _ => unreachable!("{proto}"),
        };
        let default = match transport.binds() {
            Binding::Path => HostPort::at_path("/run/echo.sock"),
            _ => HostPort::new("127.0.0.1", 5555),
        };
        ListenSpec {
            transport,
            addr: endpoint.fill(&default),
            options: ServerOptions::default(),
            origin: None,
        }
    }

    fn conflict(a: &str, b: &str) -> Option<String> {
        find_conflict(&[spec(a), spec(b)]).map(|c| c.why)
    }

    #[test]
    fn the_same_kind_of_socket_on_overlapping_addresses_conflicts() {
        for (a, b) in [
            ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555"),
            ("tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555"),
            ("tcp://127.0.0.1:5555", "tcp://0.0.0.0:5555"),
            ("tcp://[::]:5555", "tcp://127.0.0.1:5555"),
            ("tcp://[::]:5555", "tcp://0.0.0.0:5555"),
            ("tcp://[::]:5555", "tcp6://[::1]:5555"),
            ("tcp6://[::]:5555", "tcp://[::]:5555"),
            ("tcp://[::ffff:127.0.0.1]:5555", "tcp://127.0.0.1:5555"),
            ("tls://127.0.0.1:5555", "tcp://0.0.0.0:5555"),
            ("udp://[::]:5555", "quic://127.0.0.1:5555"),
            ("udp://localhost:5555", "udp://LOCALHOST:5555"),
            ("unix:///tmp/e.sock", "unix:///tmp/e.sock"),
            ("unix://@echo", "unixgram://@echo"),
        ] {
            assert!(conflict(a, b).is_some(), "{a} and {b}");
        }
    }

    #[test]
    fn different_sockets_ports_or_addresses_do_not() {
        for (a, b) in [
            ("tcp://127.0.0.1:5555", "udp://127.0.0.1:5555"),
            ("tls://127.0.0.1:5556", "quic://127.0.0.1:5556"),
            ("unix:///tmp/a.sock", "unixgram:///tmp/b.sock"),
            ("unix://@a", "unix:///a"),
            ("unix:///5555", "tcp://127.0.0.1:5555"),
            ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556"),
            ("tcp://127.0.0.1:5555", "tcp://127.0.0.2:5555"),
            ("tcp6://[::]:5555", "tcp://0.0.0.0:5555"),
            ("tcp://[::1]:5555", "tcp://127.0.0.1:5555"),
            ("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"),
            ("tcp://0.0.0.0:0", "tcp://127.0.0.1:0"),
            // Names are compared as written; the kernel has the last word on the rest.
            ("tcp://localhost:5555", "tcp://127.0.0.1:5555"),
        ] {
            assert_eq!(conflict(a, b), None, "{a} and {b}");
        }
    }

    #[test]
    fn the_reason_says_which_address_covers_which() {
        assert_eq!(
            conflict("tcp://127.0.0.1:5555", "tls://0.0.0.0:5555").as_deref(),
            Some("both need TCP port 5555, and 0.0.0.0 includes 127.0.0.1")
        );
        assert_eq!(
            conflict("udp://[::1]:7", "quic://[::1]:7").as_deref(),
            Some("both need UDP port 7 on [::1]")
        );
        assert_eq!(
            conflict("unixgram:///run/e.sock", "unix:///run/e.sock").as_deref(),
            Some("both need the socket path /run/e.sock")
        );
        let dual = conflict("tcp://[::]:5555", "tcp://127.0.0.1:5555").unwrap();
        assert!(dual.contains("[::] includes 127.0.0.1"), "{dual}");
        assert!(dual.contains("IPv6-only"), "{dual}");
    }

    #[tokio::test]
    async fn bind_all_refuses_a_conflict_before_binding_and_names_both() {
        let mut a = spec("tcp://0.0.0.0:5555");
        a.origin = Some("e.toml, line 2, key 'listen'".into());
        let b = spec("tls://127.0.0.1:5555");
        let Err(err) = bind_all(&[a, b]).await else {
            panic!("bound");
        };
        assert_eq!(
            err.to_string(),
            "tls://127.0.0.1:5555 conflicts with tcp://0.0.0.0:5555 (e.toml, line 2, key \
             'listen'): both need TCP port 5555, and 0.0.0.0 includes 127.0.0.1; give one of \
             them another port (port 0 picks a free one)"
        );
        let Err(err) = bind_all(&[spec("unix://@e"), spec("unixgram://@e")]).await else {
            panic!("bound");
        };
        assert_eq!(
            err.to_string(),
            "unixgram://@e conflicts with unix://@e: both need the socket path @e; give one of \
             them another path"
        );
    }

    #[tokio::test]
    async fn a_bind_error_says_where_the_listener_was_written() {
        let mut a = spec("tcp://127.0.0.1:0");
        a.origin = Some("e.toml, line 2, key 'listen'".into());
        let Err(err) = bind_all(&[a]).await else {
            panic!("bound");
        };
        assert_eq!(err.to_string(), "e.toml, line 2, key 'listen': not here");
    }
}
