//! `echotool bench`: the same echo over every transport, measured side by side.
//!
//! A run starts the embedded servers (the very code `echotool serve` runs) on loopback, or
//! aims at an external `--target`, then measures each protocol in each scenario
//! ([`Scenario`]): round-trip latency, throughput, and connection set-up. Every payload carries
//! a sequence number and is checked byte for byte; latencies go into HDR histograms.
//!
//! The servers and the client run on separate tokio runtimes whose threads are pinned to
//! separate halves of the CPUs ([`cpus`]), so one does not distort the other. With `--link`,
//! the servers and the client sit on the two sides of an emulated link (`echotool-link`) and
//! every packet between them crosses it. Nothing here names a transport: the binary hands over
//! its [`echotool_core::Registry`].

#![warn(missing_docs)]

pub mod cpus;
mod error;
mod interrupt;
mod load;
mod machine;
mod measure;
mod network;
mod options;
pub mod payload;
mod plot;
mod progress;
mod report;
mod runner;
mod tally;

pub use error::BenchError;
pub use interrupt::Interrupt;
pub use machine::Machine;
pub use network::LinkSummary;
pub use options::{BenchOptions, Scenario, Shape};
pub use plot::plot;
pub use report::{Report, Row, ServerSummary};
pub use runner::run;
pub use tally::{Figures, Percentiles};
