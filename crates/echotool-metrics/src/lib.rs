//! `echotool serve --metrics ADDR`: every listener's live counters over HTTP, in the Prometheus
//! text format, and a health check, so a server on Kubernetes is scraped and probed like any
//! other.
//!
//! [`MetricsServer`] answers two requests and refuses the rest: `GET /metrics`, the counters of
//! every listener read from its live [`echotool_core::EchoStats`] at scrape time (a collector,
//! not a copy kept in sync) and the tokio tasks alive in the server's runtime
//! (`RuntimeMetrics::num_alive_tasks`, stable tokio: a leak of tasks shows), and
//! `GET /healthz`, `200 ok` once every listener is bound and serving, `503` before and while
//! draining ([`Metrics::ready`], [`Metrics::stopping`]). Any other path is 404, any other
//! method 405. Requests are bounded: headers must arrive within a few
//! seconds and fit in 16 KiB, a connection lives at most a minute, few connections are served at
//! once, each in its own task, so a slow client holds up no other.
//!
//! Kept crates, not hand-written protocol code:
//! - `prometheus-client`, the Prometheus project's own Rust client: its registry, its
//!   [`prometheus_client::collector::Collector`] (called on each scrape, which is what reading
//!   live counters needs), and both encodings a scraper may ask for: OpenMetrics text (which
//!   Prometheus prefers) and the Prometheus text format 0.0.4 (curl, older scrapers), with label
//!   escaping, `_total` suffixes and `# EOF` done right.
//! - `hyper` 1 (with `hyper-util` for its tokio glue and timer, `http-body-util` for a
//!   whole-body response): a conforming HTTP/1.1 server on the tokio runtime the listeners
//!   already run on, with a header-read timeout and a limit on header size, so no request
//!   parsing of our own.
//!
//! This crate names no transport: a listener's `protocol` label is its URL's scheme.

#![warn(missing_docs)]

mod collector;
mod error;
mod http;

pub use collector::{BuildInfo, Format, Metrics, Phase};
pub use error::MetricsError;
pub use http::MetricsServer;
