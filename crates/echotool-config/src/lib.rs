//! echotool's config file: every listener of `echotool serve` with its settings, in TOML.
//!
//! ```toml
//! [log]
//! level = "info"            # error, warn, info, debug, trace
//! format = "text"           # text or json
//!
//! [defaults]                # for every listener
//! idle-timeout = "300s"
//!
//! [[listener]]
//! listen = "tcp://127.0.0.1:5555"
//!
//! [[listener]]
//! listen = "udp://127.0.0.1:5555"
//! workers = 2
//!
//! [metrics]                 # optional: Prometheus metrics and /healthz
//! listen = "0.0.0.0:9555"
//! ```
//!
//! Keys are the long names of `echotool serve`'s flags, and accept the same values (both ask
//! [`echotool_core::Setting`]). A listener's settings are layered: built-in defaults, then
//! `[defaults]`, then the listener's own table, then the flags on the command line, which win.
//! A listener gets only the settings its transport reads ([`echotool_core::Transport::reads`]):
//! in its own table any other key is an error, from `[defaults]` it is skipped. Unknown keys are
//! errors, and every error names the file, the line, the key, what was found and what was
//! expected. Paths are relative to the file.

#![warn(missing_docs)]

mod error;
mod file;
mod metrics;
mod reads;
mod settings;

pub use error::ConfigError;
pub use file::{Config, LogFormat, LogLevel, LogSettings};
pub use metrics::{DEFAULT_METRICS_PORT, MetricsSettings, parse_metrics_address};
pub use reads::{readers, refuse_unread_flags, suggestion};
pub use settings::{Bytes, Expecting, FileMode, Parsed, Seconds, Settings};
