//! The one place that names every transport crate: one line each.

use echotool_core::Registry;

/// Every transport this build knows.
pub fn all() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(echotool_tcp::TcpTransport::any())
        .register_variant(echotool_tcp::TcpTransport::v4())
        .register_variant(echotool_tcp::TcpTransport::v6())
        .register(echotool_udp::UdpTransport)
        .register(echotool_tls::TlsTransport::default())
        .register(echotool_quic::QuicTransport::default());
    registry
}
