//! Why a benchmark could not run.

/// The error type of the benchmark crate.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Options that make no sense together or alone.
    #[error("{0}")]
    Invalid(String),
    /// Starting a server or reaching the target failed.
    #[error("{0}")]
    Transport(#[from] echotool_core::Error),
    /// The runtime or an output file could not be made.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The emulated link could not start or change (`--link`): what is missing, and what to do.
    #[error("{0}")]
    Link(String),
    /// Drawing the plot failed.
    #[error("cannot draw {path}: {reason}")]
    Plot {
        /// The SVG file.
        path: String,
        /// Why.
        reason: String,
    },
}
