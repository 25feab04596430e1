//! `echotool serve`: settings from a config file and flags, bind every listener (and the
//! metrics server, when asked for), print, serve until a signal, print a summary.

use anyhow::Result;
use echotool_config::{Bytes, Config, FileMode, Parsed, Seconds, Settings, refuse_unread_flags};
use echotool_core::{BoundListener, ListenSpec, bind_all, start};
use echotool_core::{CancellationToken, OnLimit, Registry, ServerOptions, StatsSnapshot};
use echotool_metrics::{BuildInfo, Metrics, MetricsServer};

use tracing::info;

use echotool_config::LogFormat;

use crate::cli::{LogArgs, OnLimitArg, ServeArgs};
use crate::logging;
use crate::os_signals::OsSignals;

/// The server's runtime: one worker per CPU this process may run on, as tokio's default; but
/// tokio's current-thread scheduler when that is one CPU (`taskset -c 0`, a container given one
/// CPU), which runs the same tasks on one thread without the work-stealing machinery that one
/// worker has no use for (no queue to steal from, no sibling to wake).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = if cpus == 1 {
        tracing::debug!("runtime: one CPU, so tokio's current-thread scheduler");
        tokio::runtime::Builder::new_current_thread()
    } else {
        tracing::debug!(
            "runtime: {cpus} CPUs, so tokio's multi-thread scheduler with {cpus} workers"
        );
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

/// Runs the server until Ctrl-C or SIGTERM, then prints a summary per listener.
pub fn run(registry: &Registry, log: &LogArgs, args: ServeArgs) -> Result<()> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let status = Status {
        json: logging::init(log, config.as_ref().map(Config::log)) == LogFormat::Json,
        quiet: log.quiet > 0,
    };
    let specs = listen_specs(registry, &args, config.as_ref())?;
    let metrics_addr = args
        .metrics
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.metrics().cloned()));
    let runtime = runtime()?;
    runtime.block_on(async {
        // Handlers first: a signal sent the moment `listening on` appears must already find
        // them, or it kills the process without a summary.
        let mut signals = OsSignals::install()?;
        // The metrics server first: it answers 503 on /healthz while the listeners bind, and a
        // metrics address that cannot be bound leaves no listener half-started.
        let metrics_server = match &metrics_addr {
            Some(addr) => Some(MetricsServer::bind(addr).await?),
            None => None,
        };
        let metrics_url = metrics_server.as_ref().map(MetricsServer::url);
        let metrics = Metrics::new(build_info());
        let stop_metrics = CancellationToken::new();
        let scrapes = metrics_server
            .map(|server| tokio::spawn(server.serve(metrics.clone(), stop_metrics.clone())));
        let bound = bind_all(&specs).await?;
        status.bound(&bound);
        let running = start(bound);
        metrics.ready(running.stats());
        // Once /healthz answers 200, so that whoever waits for the line can rely on it.
        if let Some(url) = &metrics_url {
            status.metrics(url);
        }
        let stop = signals.next().await;
        metrics.stopping();
        status.say(&format!(
            "{}: finishing in-flight echoes (Ctrl-C again to quit at once)",
            stop.past()
        ));
        let summaries = tokio::select! {
            summaries = running.stop() => summaries,
            again = signals.next() => {
                status.say(&format!("{} again: quitting without draining", again.past()));
                std::process::exit(i32::from(again.exit_code()));
            }
        };
        for summary in summaries {
            status.summary(&summary.url, &summary.stats);
        }
        stop_metrics.cancel();
        if let Some(scrapes) = scrapes {
            let _ = scrapes.await;
        }
        Ok(())
    })
}

/// The versions `echotool_build_info` reports, as build.rs found them in Cargo.lock; `none` for
/// a library this build leaves out.
fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        rustls: if cfg!(feature = "secure") {
            env!("ECHOTOOL_DEP_RUSTLS")
        } else {
            "none"
        },
        quinn: if cfg!(feature = "quic") {
            env!("ECHOTOOL_DEP_QUINN")
        } else {
            "none"
        },
        target: env!("ECHOTOOL_TARGET"),
    }
}

/// The server's own lines on stderr: for people, or as JSON events when the log format is
/// JSON (so machines reading stderr see nothing but JSON); none with `-q`, which leaves only
/// errors.
struct Status {
    json: bool,
    quiet: bool,
}

impl Status {
    /// Every listener's `listening on` line, its notes, and a notice when it can be reached
    /// from other machines.
    fn bound(&self, bound: &[BoundListener]) {
        for listener in bound {
            let url = &listener.url;
            self.listening(url);
            for note in &listener.notes {
                self.say(&format!("  {note}"));
            }
            // A socket path has no IP address: only this machine reaches it.
            if listener.local_addr.ip().is_some_and(|ip| !ip.is_loopback()) {
                self.say(&format!(
                    "notice: {url} accepts connections from other machines; anyone who can \
                     reach it can use this echo server"
                ));
            }
        }
    }

    /// `metrics on http://ADDR/metrics`, with the real port, for scripts to find as they find
    /// `listening on`; printed once every listener serves.
    fn metrics(&self, url: &str) {
        if self.json {
            info!(metrics = %url, "metrics on {url}");
        } else if !self.quiet {
            eprintln!("metrics on {url}");
        }
    }

    /// `listening on URL`, the line scripts wait for.
    fn listening(&self, url: &str) {
        if self.json {
            info!(listener = %url, "listening on {url}");
        } else if !self.quiet {
            eprintln!("listening on {url}");
        }
    }

    /// Any other status line.
    fn say(&self, line: &str) {
        if self.json {
            info!("{}", line.trim_start());
        } else if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A listener's final counters.
    fn summary(&self, url: &str, s: &StatsSnapshot) {
        if self.json {
            info!(listener = %url, connections = s.connections, messages = s.messages,
                bytes_in = s.bytes_in, bytes_out = s.bytes_out, errors = s.errors,
                failed_handshakes = s.failed_handshakes_total(),
                failed_handshake_causes = %s.failed_handshake_causes(),
                refused = s.refused, dropped = s.dropped_total(),
                dropped_reflection = s.dropped_reflection, dropped_rate_limit = s.dropped_rate_limit,
                "summary {url}: {s}");
        } else if !self.quiet {
            eprintln!("summary {url}: {s}");
        }
    }
}

/// The listeners to start: `-l` flags if any (with the file's `[defaults]`), else the file's
/// listeners, else the default listener; flags override every file setting. A flag that no
/// listener reads is refused.
pub fn listen_specs(
    registry: &Registry,
    args: &ServeArgs,
    config: Option<&Config>,
) -> Result<Vec<ListenSpec>> {
    let flags = flag_settings(args);
    let (specs, by_proto) = match (config, args.listen.is_empty()) {
        (Some(config), true) => (config.listeners(registry, &args.proto, &flags)?, false),
        _ => (
            flag_listeners(registry, args, config, &flags)?,
            args.listen.iter().all(|e| e.proto.is_none()),
        ),
    };
    refuse_unread_flags(registry, &flags, &specs, by_proto)?;
    Ok(specs)
}

/// The listeners of `-l` (or the default one), each with the file's `[defaults]` and the flags
/// it reads.
fn flag_listeners(
    registry: &Registry,
    args: &ServeArgs,
    config: Option<&Config>,
    flags: &Settings,
) -> echotool_core::Result<Vec<ListenSpec>> {
    let settings = match config {
        Some(config) => config.defaults().overlay(flags),
        None => flags.clone(),
    };
    let endpoints = if args.listen.is_empty() {
        vec![None]
    } else {
        args.listen.iter().map(Some).collect()
    };
    endpoints
        .into_iter()
        .map(|endpoint| {
            let (transport, addr) = registry.locate(endpoint, &args.proto)?;
            let mut options = ServerOptions::default();
            settings.only(&transport.reads()).apply(&mut options);
            Ok(ListenSpec {
                transport,
                addr,
                options,
                origin: None,
            })
        })
        .collect()
}

/// The settings given as flags; unset flags leave the file's or built-in value.
fn flag_settings(args: &ServeArgs) -> Settings {
    Settings {
        listen: None,
        max_conns: args.max_conns,
        on_limit: args.on_limit.map(|p| {
            Parsed(match p {
                OnLimitArg::Wait => OnLimit::Wait,
                OnLimitArg::Refuse => OnLimit::Refuse,
            })
        }),
        idle_timeout: args.idle_timeout.map(Seconds),
        handshake_timeout: args.handshake_timeout.map(Seconds),
        drain_timeout: args.drain_timeout.map(Seconds),
        backlog: args.backlog,
        nodelay: args.nagle.then_some(false),
        recv_buffer: args.recv_buffer.map(Bytes),
        send_buffer: args.send_buffer.map(Bytes),
        workers: args.workers,
        udp_rate_limit: args.udp_rate_limit,
        mode: args.mode.map(FileMode),
        ws_max_message: args.ws_max_message.map(Bytes),
        cert: args.tls.cert.clone(),
        key: args.tls.key.clone(),
        client_ca: args.tls.client_ca.clone(),
        tls_version: args.tls.tls_version.map(Parsed),
        alpn: (!args.tls.alpn.is_empty()).then(|| args.tls.alpn.clone()),
    }
}

/// `echotool config check FILE`: everything `serve --config FILE` would check before binding.
pub fn check(registry: &Registry, file: &std::path::Path) -> Result<()> {
    let config = Config::load(file)?;
    let specs = config.listeners(registry, "tcp", &Settings::default())?;
    let urls: Vec<String> = specs.iter().map(ListenSpec::url).collect();
    let metrics = match config.metrics() {
        Some(addr) => format!("; metrics on http://{addr}/metrics"),
        None => String::new(),
    };
    println!(
        "{}: OK, {} listeners: {}{metrics}",
        file.display(),
        urls.len(),
        urls.join(", ")
    );
    Ok(())
}
