//! Running a benchmark: start the servers, measure every protocol in every shape, stop.

use std::sync::Arc;
use std::time::Duration;

use echotool_core::server::{ListenSpec, Running, bind_all, start};
use echotool_core::{
    Channel, ClientOptions, Endpoint, HostPort, Kind, Registry, ServerOptions, Transport,
};

use crate::cpus::{self, CpuPlan};
use crate::load::{Drive, Window, datagram_echo, setup, stream_echo};
use crate::progress::Progress;
use crate::report::{Parameters, Report, Row, ServerSummary};
use crate::tally::{Figures, Tally};
use crate::{BenchError, BenchOptions, Machine, Scenario, Shape};

/// Streams allow an echo this long before calling the connection broken.
const STREAM_ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// One server to measure.
struct Target {
    name: String,
    url: String,
    transport: Arc<dyn Transport>,
    addr: HostPort,
    client: ClientOptions,
}

/// Runs the benchmark described by `opts` with the transports of `registry`.
pub fn run(registry: &Registry, opts: &BenchOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    let embedded = opts.target.is_none();
    let plan = cpus::plan(embedded, opts.pin_cpus);
    let io_err = |context: &str| {
        let context = context.to_string();
        move |source| BenchError::Io { context, source }
    };
    let client_rt = cpus::runtime("bench-client", plan.client_threads, &plan.client_cpus)
        .map_err(io_err("starting the client runtime"))?;
    let mut servers = None;
    let targets = match &opts.target {
        Some(endpoint) => vec![external_target(registry, endpoint, opts)?],
        None => {
            let server_rt = cpus::runtime("bench-server", plan.server_threads, &plan.server_cpus)
                .map_err(io_err("starting the server runtime"))?;
            let (targets, running) = embedded_targets(registry, opts, &plan, &server_rt)?;
            servers = Some((server_rt, running));
            targets
        }
    };
    let shapes = opts.shapes();
    let plan_steps = targets
        .iter()
        .map(|t| {
            shapes
                .iter()
                .filter(|s| applies(t, s))
                .map(|s| variants(t, s).len())
                .sum::<usize>()
        })
        .sum::<usize>()
        * opts.runs;
    let progress = Progress::new(opts.progress, plan_steps);
    let mut rows = Vec::new();
    for target in &targets {
        for shape in shapes.iter().filter(|s| applies(target, s)) {
            for (variant, resume) in variants(target, shape) {
                let mut runs = Vec::with_capacity(opts.runs);
                let mut first_echo = Vec::new();
                for run in 1..=opts.runs {
                    progress.start(format!(
                        "{} {}{} {} B, run {run}/{}",
                        target.name,
                        shape.scenario,
                        variant.map(|v| format!("/{v}")).unwrap_or_default(),
                        shape.size,
                        opts.runs
                    ));
                    let (main, extra) = client_rt.block_on(measure(target, shape, resume, opts));
                    runs.push(main.figures(opts.duration));
                    if let Some(extra) = extra {
                        first_echo.push(extra.figures(opts.duration));
                    }
                    progress.step();
                }
                let name = |scenario: &str| match variant {
                    Some(v) => format!("{scenario}/{v}"),
                    None => scenario.to_string(),
                };
                let row = |scenario: &str, runs: Vec<Figures>| {
                    Row::new(&target.name, &name(scenario), &target.url, shape, runs)
                };
                rows.push(row(shape.scenario.name(), runs));
                if !first_echo.is_empty() {
                    rows.push(row("first-echo", first_echo));
                }
            }
        }
    }
    progress.finish();
    let server_summaries = match servers {
        Some((server_rt, running)) => server_rt
            .block_on(running.stop())
            .into_iter()
            .map(|s| ServerSummary::from_stats(&s.url, &s.stats))
            .collect(),
        None => Vec::new(),
    };
    Ok(Report {
        echotool_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: Machine::current(),
        threads: plan,
        parameters: Parameters::from_options(opts),
        rows,
        servers: server_summaries,
    })
}

/// The ways a shape is measured: once, or for set-up on a transport that can resume sessions,
/// once fresh and once resumed (TLS full/resumed, QUIC 1-RTT/0-RTT).
fn variants(target: &Target, shape: &Shape) -> Vec<(Option<&'static str>, bool)> {
    match (shape.scenario, target.transport.setup_kinds()) {
        (Scenario::Setup, Some([fresh, resumed])) => {
            vec![(Some(fresh), false), (Some(resumed), true)]
        }
        (Scenario::Setup, None) => vec![(None, false)],
        _ => vec![(None, true)],
    }
}

/// Set-up has no meaning without connections.
fn applies(target: &Target, shape: &Shape) -> bool {
    !(shape.scenario == Scenario::Setup && target.transport.kind() == Kind::Datagram)
}

fn external_target(
    registry: &Registry,
    endpoint: &Endpoint,
    opts: &BenchOptions,
) -> Result<Target, BenchError> {
    let proto = endpoint.proto.as_deref().unwrap_or("tcp");
    let (transport, addr) = registry.locate(Some(endpoint), proto)?;
    Ok(Target {
        name: transport.name().to_string(),
        url: format!("{}://{addr}", transport.name()),
        transport,
        addr,
        client: opts.client.clone(),
    })
}

/// Starts one embedded server per protocol on loopback, on the servers' runtime.
fn embedded_targets(
    registry: &Registry,
    opts: &BenchOptions,
    plan: &CpuPlan,
    server_rt: &tokio::runtime::Runtime,
) -> Result<(Vec<Target>, Running), BenchError> {
    let mut specs = Vec::new();
    for name in &opts.protocols {
        let transport = registry.get(name)?;
        let mut options = ServerOptions::default();
        options.datagram.workers = Some(plan.server_threads.max(1));
        specs.push(ListenSpec {
            addr: HostPort {
                host: transport.family().loopback().to_string(),
                port: 0,
            },
            transport,
            options,
            origin: None,
        });
    }
    let bound = server_rt.block_on(bind_all(&specs))?;
    let mut targets = Vec::new();
    for (spec, listener) in specs.iter().zip(&bound) {
        let mut client = opts.client.clone();
        // The embedded TLS-like servers use throwaway certificates: trust exactly that one.
        if let Some(pin) = &listener.certificate_pin {
            client.tls.pin = Some(pin.clone());
            client.tls.insecure = false;
        }
        targets.push(Target {
            name: spec.transport.name().to_string(),
            url: listener.url.clone(),
            transport: spec.transport.clone(),
            addr: HostPort::from(listener.local_addr),
            client,
        });
    }
    let running = server_rt.block_on(async { start(bound) });
    Ok((targets, running))
}

/// One measurement of one shape against one target: the main tally, and for set-up the
/// time-to-first-echo tally too.
async fn measure(
    target: &Target,
    shape: &Shape,
    resume: bool,
    opts: &BenchOptions,
) -> (Tally, Option<Tally>) {
    let echo_timeout = match target.transport.kind() {
        Kind::Stream => opts.echo_timeout.max(STREAM_ECHO_TIMEOUT),
        Kind::Datagram => opts.echo_timeout,
    };
    let drive = Drive {
        size: shape.size,
        depth: shape.depth,
        rate: shape.rate.map(|r| r / shape.conns as f64),
        echo_timeout,
    };
    if shape.scenario == Scenario::Setup {
        let mut client = target.client.clone();
        client.resume = resume;
        let window = Window::after(opts.warmup, opts.duration);
        let tasks: Vec<_> = (0..shape.conns)
            .map(|_| {
                tokio::spawn(setup(
                    target.transport.clone(),
                    target.addr.clone(),
                    client.clone(),
                    drive,
                    window,
                ))
            })
            .collect();
        let (mut connected, mut first) = (Tally::default(), Tally::default());
        for task in tasks {
            match task.await {
                Ok((c, f)) => {
                    connected.merge(&c);
                    first.merge(&f);
                }
                Err(_) => connected.errors += 1,
            }
        }
        return (connected, Some(first));
    }
    let mut channels = Vec::with_capacity(shape.conns);
    let mut failed = Tally::default();
    for _ in 0..shape.conns {
        match target.transport.dial(&target.addr, &target.client).await {
            Ok(conn) => channels.push(conn.channel),
            Err(err) => {
                tracing::warn!(target = %target.url, error = %err, "cannot connect");
                failed.errors += 1;
            }
        }
    }
    let window = Window::after(opts.warmup, opts.duration);
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|channel| {
            tokio::spawn(async move {
                match channel {
                    Channel::Stream(stream) => stream_echo(stream, drive, window).await,
                    Channel::Datagram(socket) => datagram_echo(socket, drive, window).await,
                }
            })
        })
        .collect();
    let mut total = failed;
    for task in tasks {
        match task.await {
            Ok(tally) => total.merge(&tally),
            Err(_) => total.errors += 1,
        }
    }
    (total, None)
}
