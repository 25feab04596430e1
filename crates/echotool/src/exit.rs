//! Turning results into `error: ...` lines and exit codes: 2 for usage mistakes, 1 for
//! failures at run time, and never a panic message or debug dump.

use std::process::ExitCode;

use echotool_core::Error;

/// An exit status decided by the binary itself: a usage mistake it caught (2, with its
/// message), or a status without a message (a run ended by a signal already said why).
#[derive(Debug)]
pub struct Exit {
    code: u8,
    message: Option<String>,
}

impl Exit {
    /// A mistake on the command line: `error: MESSAGE`, exit status 2.
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Exit {
            code: 2,
            message: Some(message.into()),
        }
        .into()
    }

    /// Exit with `code` and print nothing more.
    pub fn code(code: u8) -> Exit {
        Exit {
            code,
            message: None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(message) => f.write_str(message),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// Prints the error, if any, and picks the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(exit) = err.downcast_ref::<Exit>() {
                if let Some(message) = &exit.message {
                    eprintln!("error: {message}");
                }
                return ExitCode::from(exit.code);
            }
            eprintln!("error: {}", chain(&err));
            ExitCode::from(code(&err))
        }
    }
}

/// The error on one line. echotool's own errors already carry their cause; other errors get
/// their chain of causes appended.
fn chain(err: &anyhow::Error) -> String {
    if err.downcast_ref::<Error>().is_some()
        || err.downcast_ref::<echotool_config::ConfigError>().is_some()
        || err.downcast_ref::<echotool_bench::BenchError>().is_some()
        || err
            .downcast_ref::<echotool_metrics::MetricsError>()
            .is_some()
    {
        err.to_string()
    } else {
        format!("{err:#}")
    }
}

fn code(err: &anyhow::Error) -> u8 {
    use echotool_bench::BenchError;
    if err.downcast_ref::<echotool_config::ConfigError>().is_some() {
        return 2;
    }
    let core = match err.downcast_ref::<BenchError>() {
        Some(BenchError::Invalid(_)) => return 2,
        Some(BenchError::Transport(inner)) => Some(inner),
        Some(_) => None,
        None => err.downcast_ref::<Error>(),
    };
    match core {
        Some(Error::UnknownProtocol { .. } | Error::BadAddress { .. } | Error::Invalid(_)) => 2,
        _ => 1,
    }
}

/// Replaces Rust's panic message with a short line asking for a bug report.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: echotool hit a bug ({what}{place}); please report it with the command you ran"
        );
    }));
}
