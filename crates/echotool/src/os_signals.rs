//! SIGINT and SIGTERM, the operating system's requests to stop: caught from the moment they
//! are installed, named, and mapped to the exit status a shell expects (128 + the number).

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Which request to stop arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Stop {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// `interrupted` or `terminated`, for sentences.
    pub fn past(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        }
    }

    /// 130 or 143, what a shell reports for a process ended by the signal.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM handlers; installing them needs a tokio runtime.
pub struct OsSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl OsSignals {
    /// Installs the handlers: from now on the signals no longer kill the process.
    pub fn install() -> Result<OsSignals> {
        Ok(OsSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub async fn next(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
        }
    }
}

/// For synchronous work (the benchmark): watches for signals on a thread of its own. The first
/// signal calls `first`; a second one quits at once with the signal's exit status. Returns
/// once the handlers are installed.
pub fn watch(first: impl FnOnce(Stop) + Send + 'static) -> Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut signals = match OsSignals::install() {
                    Ok(signals) => signals,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let stop = signals.next().await;
                first(stop);
                let again = signals.next().await;
                eprintln!("{} again: quitting at once", again.past());
                std::process::exit(i32::from(again.exit_code()));
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the signal thread ended before installing its handlers"))?
}
