//! The registry: protocol names to transports. The binary fills it, one line per transport;
//! nothing else in echotool names a transport crate.

use std::sync::Arc;

use crate::{Endpoint, Error, HostPort, Result, Transport, endpoint::DEFAULT_PORT};

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
    /// A URL scheme names the transport; otherwise `proto` does. Missing host and port come
    /// from the transport: its loopback address and port 5555.
    pub fn locate(
        &self,
        endpoint: Option<&Endpoint>,
        proto: &str,
    ) -> Result<(Arc<dyn Transport>, HostPort)> {
        let name = endpoint.and_then(|e| e.proto.as_deref()).unwrap_or(proto);
        let transport = self.get(name)?;
        let loopback = transport.family().loopback();
        let addr = match endpoint {
            Some(e) => e.host_port(loopback, DEFAULT_PORT),
            None => HostPort {
                host: loopback.to_string(),
                port: DEFAULT_PORT,
            },
        };
        Ok((transport, addr))
    }
}
