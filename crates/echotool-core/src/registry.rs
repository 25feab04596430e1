//! The registry: protocol names to transports. The binary fills it, one line per transport;
//! nothing else in echotool names a transport crate.

use std::sync::Arc;

use crate::{Addressing, Endpoint, Error, HostPort, Result, Transport};

/// Every transport this build of echotool knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    transports: Vec<Arc<dyn Transport>>,
    /// Names of the variants: transports measured only when named (`tcp4`, `tcp6`).
    variants: Vec<&'static str>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a transport, compared by default in `echotool bench`; a later one with the same
    /// name replaces the earlier.
    pub fn register(&mut self, transport: impl Transport) -> &mut Self {
        self.variants.retain(|v| *v != transport.name());
        self.transports.retain(|t| t.name() != transport.name());
        self.transports.push(Arc::new(transport));
        self
    }

    /// Adds a variant of a transport already registered (`tcp4` and `tcp6` of `tcp`): usable
    /// everywhere, but compared only when named.
    pub fn register_variant(&mut self, transport: impl Transport) -> &mut Self {
        let name = transport.name();
        self.register(transport);
        self.variants.push(name);
        self
    }

    /// The transports `echotool bench` compares when none are named: every one but the
    /// variants, in registration order.
    pub fn compared(&self) -> Vec<&'static str> {
        self.names()
            .into_iter()
            .filter(|n| !self.variants.contains(n))
            .collect()
    }

    /// The protocol of an address given without a scheme where no `--proto` applies: the
    /// first transport registered.
    pub fn default_protocol(&self) -> Option<&'static str> {
        self.transports.first().map(|t| t.name())
    }

    /// The transport called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Transport>> {
        self.transports
            .iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| Error::UnknownProtocol {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// Every registered name, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.transports.iter().map(|t| t.name()).collect()
    }

    /// Every registered transport, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Transport>> {
        self.transports.iter()
    }

    /// Picks the transport and address for an endpoint as typed.
    ///
    /// A URL scheme names the transport; otherwise `proto` does. What the endpoint leaves out
    /// comes from the transport's [`Transport::default_addr`] (its loopback address and port
    /// 5555, unless it says otherwise). An endpoint whose shape the transport cannot use (a
    /// path for TCP, a host and port for a Unix socket) is refused with what to write instead.
    pub fn locate(
        &self,
        endpoint: Option<&Endpoint>,
        proto: &str,
    ) -> Result<(Arc<dyn Transport>, HostPort)> {
        let name = endpoint.and_then(|e| e.proto.as_deref()).unwrap_or(proto);
        let transport = self.get(name)?;
        let default = transport.default_addr();
        let addr = match endpoint {
            Some(e) => {
                self.check_shape(e, &*transport)?;
                e.fill(&default)
            }
            None => default,
        };
        Ok((transport, addr))
    }

    /// Refuses an endpoint the transport cannot be addressed by ([`Transport::addressing`]).
    fn check_shape(&self, endpoint: &Endpoint, transport: &dyn Transport) -> Result<()> {
        let name = transport.name();
        match transport.addressing() {
            Addressing::HostPort if endpoint.path.is_some() => {
                let by_path: Vec<&str> = self
                    .iter()
                    .filter(|t| t.addressing() == Addressing::Path)
                    .map(|t| t.name())
                    .collect();
                let hint = match (endpoint.is_socket_path(), by_path.first()) {
                    (true, Some(first)) => format!(
                        " (a socket path is for {}: {first}://{})",
                        by_path.join(" or "),
                        endpoint.path.as_deref().unwrap_or_default()
                    ),
                    _ => String::new(),
                };
                Err(Error::BadAddress {
                    input: endpoint.to_string(),
                    reason: format!("{name} endpoints have no path{hint}"),
                })
            }
            Addressing::Path if endpoint.host.is_some() || endpoint.port.is_some() => {
                Err(Error::Invalid(format!(
                    "'{endpoint}' is not a valid {name} address: a {name} endpoint is a socket \
                     path: {name}:///run/echo.sock (or {name}://./echo.sock for one in this \
                     directory), or {name}://@name for an abstract socket"
                )))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientOptions, Connection, Server, ServerOptions, async_trait};

    /// A transport with a name and a way of being addressed, and nothing behind them.
    struct Shaped(&'static str, Addressing);

    #[async_trait]
    impl Transport for Shaped {
        fn name(&self) -> &'static str {
            self.0
        }
        fn summary(&self) -> &'static str {
            "a stand-in"
        }
        fn addressing(&self) -> Addressing {
            self.1
        }
        fn default_addr(&self) -> HostPort {
            match self.1 {
                Addressing::Path => HostPort::at_path("/run/default.sock"),
                _ => HostPort::new("127.0.0.1", 5555),
            }
        }
        async fn bind(&self, _: &HostPort, _: &ServerOptions) -> Result<Box<dyn Server>> {
            Err(Error::Invalid("not here".into()))
        }
        async fn dial(&self, _: &HostPort, _: &ClientOptions) -> Result<Connection> {
            Err(Error::Invalid("not here".into()))
        }
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        registry
            .register(Shaped("tcp", Addressing::HostPort))
            .register(Shaped("unix", Addressing::Path))
            .register(Shaped("ws", Addressing::Url));
        registry
    }

    fn locate(text: &str, proto: &str) -> Result<String> {
        let endpoint = Endpoint::parse(text)?;
        let (transport, addr) = registry().locate(Some(&endpoint), proto)?;
        Ok(format!("{}://{addr}", transport.name()))
    }

    #[test]
    fn each_transport_gets_the_shape_it_is_addressed_by() {
        assert_eq!(locate(":7", "tcp").unwrap(), "tcp://127.0.0.1:7");
        assert_eq!(locate("/tmp/e.sock", "unix").unwrap(), "unix:///tmp/e.sock");
        assert_eq!(locate("unix://@echo", "tcp").unwrap(), "unix://@echo");
        assert_eq!(
            locate("unix://", "tcp").unwrap(),
            "unix:///run/default.sock"
        );
        assert_eq!(locate("ws://h/echo", "tcp").unwrap(), "ws://h:5555/echo");
        assert_eq!(locate("ws://:1", "tcp").unwrap(), "ws://127.0.0.1:1");
        let (_, addr) = registry().locate(None, "unix").unwrap();
        assert_eq!(addr.socket_path(), Some("/run/default.sock"));
    }

    #[test]
    fn a_shape_the_transport_cannot_use_is_refused_with_what_to_write() {
        let err = locate("tcp://h:1/x", "tcp").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "'tcp://h:1/x' is not a valid address: tcp endpoints have no path; expected \
                 HOST:PORT"
            ),
            "{err}"
        );
        let err = locate("/tmp/e.sock", "tcp").unwrap_err().to_string();
        assert!(
            err.contains("no path (a socket path is for unix: unix:///tmp/e.sock); expected"),
            "{err}"
        );
        let err = locate("unix://localhost:5", "tcp").unwrap_err().to_string();
        assert_eq!(
            err,
            "'unix://localhost:5' is not a valid unix address: a unix endpoint is a socket path: \
             unix:///run/echo.sock (or unix://./echo.sock for one in this directory), or \
             unix://@name for an abstract socket"
        );
        assert!(locate("e.sock", "unix").is_err(), "a bare name is a host");
    }
}
