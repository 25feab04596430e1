//! Log output: tracing to stderr, as text for people or JSON for machines.

use std::io::IsTerminal;

use echotool_config::{LogLevel, LogSettings};
use tracing_subscriber::EnvFilter;

use echotool_config::LogFormat;

use crate::cli::LogArgs;

/// Colour on stderr only for a terminal, and never when `NO_COLOR` is set to anything
/// (<https://no-color.org>).
pub fn colors_wanted() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

/// Installs the global subscriber and returns the format chosen. `RUST_LOG` wins over
/// `-v`/`-q`, which win over the config file's `[log]`.
pub fn init(args: &LogArgs, file: Option<&LogSettings>) -> LogFormat {
    let file_level = file.and_then(|f| f.level).map(|level| match level {
        LogLevel::Error => -1,
        LogLevel::Warn | LogLevel::Info => 0,
        LogLevel::Debug => 1,
        LogLevel::Trace => 2,
    });
    let flags = i16::from(args.verbose) - i16::from(args.quiet);
    let verbosity = if flags != 0 {
        flags
    } else {
        file_level.unwrap_or(0)
    };
    // echotool's own events at info by default; other crates (rustls, quinn) only when they
    // fail, since their warnings about misbehaving peers are the server's business, not news.
    let (ours, theirs) = match verbosity {
        i16::MIN..=-1 => ("error", "error"),
        0 if file.and_then(|f| f.level) == Some(LogLevel::Warn) => ("warn", "error"),
        0 => ("info", "error"),
        1 => ("debug", "warn"),
        2 => ("trace", "debug"),
        _ => ("trace", "trace"),
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{theirs},echotool={ours}")));
    let format = args
        .log_format
        .or(file.and_then(|f| f.format))
        .unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colors_wanted())
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    format
}
