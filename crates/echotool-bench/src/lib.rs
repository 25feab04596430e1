//! `echotool bench`: the same echo over every transport, measured side by side.
//!
//! A run starts the embedded servers (the very code `echotool serve` runs) on loopback, or
//! aims at external `--target`s, then measures each protocol in each scenario
//! ([`Scenario`]): round-trip latency, throughput, and connection set-up. Every payload carries
//! a sequence number and is checked byte for byte; latencies go into HDR histograms.
//!
//! The servers and the client run on separate tokio runtimes whose threads are pinned to
//! separate halves of the CPUs ([`cpus`]), so one does not distort the other. With `--link`,
//! the servers and the client sit on the two sides of an emulated link (`echotool-link`) and
//! every packet between them crosses it. Nothing here names a transport: the binary hands over
//! its [`echotool_core::Registry`].
//!
//! Every row of the report carries its whole latency histogram ([`histogram`]: HdrHistogram
//! V2, deflated, base64) with its exact counts and wall-clock window ([`Span`]), so that
//! [`merge`] can add the reports of several load generators exactly (`echotool report`), and
//! `--start-at` ([`BenchOptions::start_at`]) starts them together. The JSON's layout is
//! versioned ([`SCHEMA`]) and described in `docs/report-schema.md`.
//!
//! Dependencies, each for a reason: `hdrhistogram` (the histograms, and their standard V2
//! encoding that every HdrHistogram library reads), `base64` (that encoding's text form in
//! JSON), `flate2` (the very inflater hdrhistogram uses, to check a histogram's header before
//! hdrhistogram allocates what it asks for; see [`histogram`]), `time` (RFC 3339 for `--start-at` and the headers), `serde`/`serde_json` (the
//! report), `indicatif` (the progress bar), `plotters` (SVG), `libc` (CPU affinity,
//! `uname`, `adjtimex`).

#![warn(missing_docs)]

pub mod clock;
pub mod cpus;
mod error;
pub mod histogram;
mod interrupt;
mod load;
mod machine;
mod measure;
mod merge;
mod network;
mod options;
pub mod payload;
mod plot;
mod progress;
mod report;
mod runner;
mod scratch;
mod tally;

pub use clock::Clock;
pub use error::BenchError;
pub use interrupt::Interrupt;
pub use machine::Machine;
pub use merge::{merge, parse, read};
pub use network::LinkSummary;
pub use options::{BenchOptions, Scenario, Shape, parse_rate, send_interval};
pub use plot::plot;
pub use report::{Finding, Parameters, Report, Row, SCHEMA, ServerSummary, Source};
pub use runner::run;
pub use tally::{Figures, Percentiles, Span};
