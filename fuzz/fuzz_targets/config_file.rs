//! A whole config file, as `echotool serve --config` and `echotool config check` read it:
//! parsed, then turned into listeners against the binary's transports.
//!
//! Beyond "no panic": an error points at a line the file has; every listener's URL, as
//! `serve` prints it, names the same transport and address when read back; the metrics
//! address does too.

#![no_main]

use std::path::Path;

use echotool_config::{Config, Settings, parse_metrics_address};
use echotool_core::Endpoint;
use echotool_fuzz::registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let lines = text.lines().count().max(1);
    let within = |line: Option<usize>| line.is_none_or(|l| (1..=lines + 1).contains(&l));
    let config = match Config::parse(Path::new("/fuzz/echotool.toml"), text.to_string()) {
        Ok(config) => config,
        Err(e) => {
            assert!(
                within(e.line),
                "line {:?} of a {lines}-line file: {e}",
                e.line
            );
            assert!(!e.message.is_empty());
            return;
        }
    };
    if let Some(metrics) = config.metrics() {
        let again = parse_metrics_address(&metrics.to_string());
        assert_eq!(again.as_ref(), Ok(metrics), "metrics address {metrics}");
    }
    let registry = registry();
    match config.listeners(registry, "tcp", &Settings::default()) {
        Ok(specs) => {
            for spec in specs {
                let url = spec.url();
                let endpoint = Endpoint::parse(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
                let (transport, addr) = registry
                    .locate(Some(&endpoint), "tcp")
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
                assert_eq!(transport.name(), spec.transport.name(), "{url}");
                assert_eq!(addr, spec.addr, "{url}");
            }
        }
        Err(e) => {
            assert!(
                within(e.line),
                "line {:?} of a {lines}-line file: {e}",
                e.line
            );
            assert!(!e.message.is_empty());
        }
    }
});
