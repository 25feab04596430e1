//! What several fuzz targets share: the registry a config file is checked against, and a TOML
//! string written from any text.
//!
//! The targets themselves live in `fuzz_targets/`, one per parser a user or a peer can feed;
//! `scripts/fuzz.sh` builds and runs them.

use std::sync::{Arc, OnceLock};

use echotool_core::{
    Binding, ClientOptions, Connection, Error, Family, HostPort, Kind, Registry, Result, Server,
    ServerOptions, Setting, Transport,
};

/// Every transport of the binary's registry, by its real name, family, bindings and the settings
/// it reads, but without its `check` (TLS and QUIC would read certificate files or make a
/// key pair on every input) and unable to bind or dial.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new();
        registry
            .register(Unchecked::of(echotool_tcp::TcpTransport::any()))
            .register_variant(Unchecked::of(echotool_tcp::TcpTransport::v4()))
            .register_variant(Unchecked::of(echotool_tcp::TcpTransport::v6()))
            .register(Unchecked::of(echotool_udp::UdpTransport))
            .register(Unchecked::of(echotool_tls::TlsTransport::default()))
            .register(Unchecked::of(echotool_quic::QuicTransport::default()));
        registry
    })
}

/// A transport seen only through what a config file asks of it.
struct Unchecked(Arc<dyn Transport>);

impl Unchecked {
    fn of(transport: impl Transport) -> Self {
        Unchecked(Arc::new(transport))
    }
}

#[async_trait::async_trait]
impl Transport for Unchecked {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn summary(&self) -> &'static str {
        self.0.summary()
    }
    fn family(&self) -> Family {
        self.0.family()
    }
    fn kind(&self) -> Kind {
        self.0.kind()
    }
    fn secure(&self) -> bool {
        self.0.secure()
    }
    fn binds(&self) -> Binding {
        self.0.binds()
    }
    fn reads(&self) -> Vec<Setting> {
        self.0.reads()
    }
    async fn bind(&self, _: &HostPort, _: &ServerOptions) -> Result<Box<dyn Server>> {
        Err(Error::Invalid("the fuzz registry binds nothing".into()))
    }
    async fn dial(&self, _: &HostPort, _: &ClientOptions) -> Result<Connection> {
        Err(Error::Invalid("the fuzz registry dials nothing".into()))
    }
}

/// `text` as a TOML basic string, quotes included: the way a config file would hold it.
pub fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
