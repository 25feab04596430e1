//! Where `echotool serve` answers scrapes and health checks: the `[metrics]` table of the
//! config file and the address `--metrics` takes, read by the same function.

use echotool_core::{Endpoint, HostPort};
use serde::Deserialize;

/// The port of the metrics address when none is given, the one the Kubernetes deployment uses.
pub const DEFAULT_METRICS_PORT: u16 = 9555;

/// The `[metrics]` table: present means served.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where to serve `/metrics` and `/healthz`, e.g. `"0.0.0.0:9555"`; `--metrics` overrides it.
    pub listen: toml::Spanned<String>,
}

/// Parses a metrics address as `--metrics` and `[metrics] listen` take it: `HOST:PORT`,
/// `[V6]:PORT`, `:PORT` (loopback) or a bare host (port 9555); the URL the server prints,
/// `http://HOST:PORT/metrics`, is taken too.
pub fn parse_metrics_address(text: &str) -> Result<HostPort, String> {
    let trimmed = text.trim();
    let address = trimmed.strip_suffix("/metrics").unwrap_or(trimmed);
    let endpoint = Endpoint::parse(address).map_err(|e| e.to_string())?;
    if let Some(proto) = endpoint.proto.as_deref().filter(|&p| p != "http") {
        return Err(format!(
            "'{text}' is not a metrics address: metrics are served over HTTP, not {proto}; \
             expected HOST:PORT, e.g. 0.0.0.0:{DEFAULT_METRICS_PORT} or 127.0.0.1:{DEFAULT_METRICS_PORT}"
        ));
    }
    if endpoint.path.is_some() {
        return Err(format!(
            "'{text}' is not a metrics address: metrics are served over HTTP at HOST:PORT, not \
             at a path; expected e.g. 0.0.0.0:{DEFAULT_METRICS_PORT}"
        ));
    }
    Ok(endpoint.fill(&HostPort::new("127.0.0.1", DEFAULT_METRICS_PORT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        parse_metrics_address(text).unwrap().to_string()
    }

    #[test]
    fn addresses_take_the_forms_listeners_do() {
        assert_eq!(parsed("0.0.0.0:9555"), "0.0.0.0:9555");
        assert_eq!(parsed("[::]:9100"), "[::]:9100");
        assert_eq!(parsed(":0"), "127.0.0.1:0");
        assert_eq!(parsed("localhost"), "localhost:9555");
        assert_eq!(parsed("http://127.0.0.1:9555/metrics"), "127.0.0.1:9555");
    }

    #[test]
    fn other_protocols_and_bad_ports_are_refused() {
        let e = parse_metrics_address("udp://0.0.0.0:9555").unwrap_err();
        assert!(e.contains("served over HTTP, not udp"), "{e}");
        let e = parse_metrics_address("0.0.0.0:99999").unwrap_err();
        assert!(e.contains("not a port number"), "{e}");
    }
}
