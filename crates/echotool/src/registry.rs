//! The one place that names every transport crate: one line each, present when its cargo
//! feature is (all by default).

use echotool_core::Registry;

/// Every transport this build knows.
pub fn all() -> Registry {
    let mut registry = Registry::new();
    #[cfg(feature = "tcp")]
    registry
        .register(echotool_tcp::TcpTransport::any())
        .register_variant(echotool_tcp::TcpTransport::v4())
        .register_variant(echotool_tcp::TcpTransport::v6());
    #[cfg(feature = "udp")]
    registry.register(echotool_udp::UdpTransport);
    #[cfg(feature = "tls")]
    registry.register(echotool_tls::TlsTransport::default());
    #[cfg(feature = "quic")]
    registry.register(echotool_quic::QuicTransport::default());
    #[cfg(all(feature = "unix", target_os = "linux"))]
    registry
        .register_variant(echotool_unix::UnixTransport::stream())
        .register_variant(echotool_unix::UnixTransport::datagram());
    #[cfg(feature = "ws")]
    registry
        .register_variant(echotool_ws::WsTransport::plain())
        .register_variant(echotool_ws::WsTransport::secure());
    registry
}
