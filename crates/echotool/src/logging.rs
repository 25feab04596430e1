//! Log output: tracing to stderr, as text for people or JSON for machines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `-v`/`-q`.
pub fn init(args: &LogArgs) {
    // echotool's own events at info by default; other crates (rustls, quinn) only when they
    // fail, since their warnings about misbehaving peers are the server's business, not news.
    let (ours, theirs) = match i16::from(args.verbose) - i16::from(args.quiet) {
        i16::MIN..=-1 => ("error", "error"),
        0 => ("info", "error"),
        1 => ("debug", "warn"),
        2 => ("trace", "debug"),
        _ => ("trace", "trace"),
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{theirs},echotool={ours}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
