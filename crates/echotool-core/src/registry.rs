//! The registry: protocol names to transports. The binary fills it, one line per transport;
//! nothing else in echotool names a transport crate.

use std::sync::Arc;

use crate::{Endpoint, Error, HostPort, Result, Transport, endpoint::DEFAULT_PORT};

/// Every transport this build of echotool knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    transports: Vec<Arc<dyn Transport>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a transport; a later one with the same name replaces the earlier.
    pub fn register(&mut self, transport: impl Transport) -> &mut Self {
        self.transports.retain(|t| t.name() != transport.name());
        self.transports.push(Arc::new(transport));
        self
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
