//! Running a benchmark: start the servers, measure every protocol in every shape, stop.

use std::sync::Arc;

use echotool_core::client::default_echo_timeout;
use echotool_core::{
    Channel, ClientOptions, Endpoint, HostPort, Kind, Registry, ServerOptions, Transport,
};
use echotool_core::{ListenSpec, Running, bind_all, start};
use tokio::task::JoinSet;

use crate::cpus::{self, CpuPlan};
use crate::load::{Drive, Window, datagram_echo, setup, stream_echo};
use crate::progress::Progress;
use crate::report::{Parameters, Report, Row, ServerSummary};
use crate::tally::Tally;
use crate::{BenchError, BenchOptions, Machine, Scenario, Shape};

/// One server to measure.
struct Target {
    name: String,
    url: String,
    transport: Arc<dyn Transport>,
    addr: HostPort,
    client: ClientOptions,
}

/// The embedded servers and the runtime they run on.
type Servers = (tokio::runtime::Runtime, Running);

fn io_err(context: &str) -> impl FnOnce(std::io::Error) -> BenchError {
    let context = context.to_string();
    move |source| BenchError::Io { context, source }
}

/// Runs the benchmark described by `opts` with the transports of `registry`.
///
/// When `opts.interrupt` is triggered, the measurement under way is abandoned and the report
/// holds every row (and every run of the current row) that finished.
pub fn run(registry: &Registry, opts: &BenchOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    let plan = cpus::plan(opts.target.is_none(), opts.pin_cpus);
    let client_rt = cpus::runtime("bench-client", plan.client_threads, &plan.client_cpus)
        .map_err(io_err("starting the client runtime"))?;
    let (targets, servers) = match &opts.target {
        Some(endpoint) => (vec![external_target(registry, endpoint, opts)?], None),
        None => {
            let (targets, servers) = embedded_targets(registry, opts, &plan)?;
            (targets, Some(servers))
        }
    };
    let shapes = opts.shapes();
    check_datagram_sizes(&client_rt, &targets, &shapes)?;
    let steps: usize = targets
        .iter()
        .map(|t| plans(t, &shapes).len() * opts.runs)
        .sum();
    let progress = Progress::new(opts.progress, steps);
    let mut rows = Vec::new();
    let mut abandoned = None;
    'targets: for target in &targets {
        for (shape, variant, resume) in plans(target, &shapes) {
            let row = RowPlan {
                target,
                shape: &shape,
                variant,
                resume,
            };
            let (done, stopped) = row.measure(&client_rt, opts, &progress);
            rows.extend(done);
            if stopped.is_some() {
                abandoned = stopped;
                break 'targets;
            }
        }
    }
    progress.finish();
    let servers = match servers {
        Some((server_rt, running)) => server_rt
            .block_on(running.stop())
            .into_iter()
            .map(|s| ServerSummary::from_stats(&s.url, &s.stats))
            .collect(),
        None => Vec::new(),
    };
    let mut report = Report {
        echotool_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: Machine::current(),
        threads: plan,
        parameters: Parameters::new(
            opts,
            opts.target
                .as_ref()
                .and(targets.first())
                .map(|t| t.url.clone()),
            protocols(registry, opts),
        ),
        rows,
        servers,
        interrupted: opts.interrupt.reason(),
        abandoned,
        findings: Vec::new(),
    };
    report.findings = report.judge();
    Ok(report)
}

/// The protocols measured: those asked for, or every one the registry compares by default.
fn protocols(registry: &Registry, opts: &BenchOptions) -> Vec<String> {
    match opts.protocols.is_empty() {
        true => registry.compared().iter().map(|p| p.to_string()).collect(),
        false => opts.protocols.clone(),
    }
}

/// Every measurement of a target: each shape that applies, in each set-up variant.
fn plans(target: &Target, shapes: &[Shape]) -> Vec<(Shape, Option<&'static str>, bool)> {
    shapes
        .iter()
        // Set-up has no meaning without connections.
        .filter(|s| !(s.scenario == Scenario::Setup && target.transport.kind() == Kind::Datagram))
        .flat_map(|shape| {
            // Set-up on a transport that can resume sessions is measured once fresh and once
            // resumed, as the transport names its variants.
            let variants: Vec<(Option<&'static str>, bool)> =
                match (shape.scenario, target.transport.setup_variants()) {
                    (Scenario::Setup, []) => vec![(None, false)],
                    (Scenario::Setup, variants) => {
                        variants.iter().map(|v| (Some(v.name), v.resume)).collect()
                    }
                    _ => vec![(None, true)],
                };
            variants.into_iter().map(|(v, r)| (*shape, v, r))
        })
        .collect()
}

/// One row of the report (two for set-up: `setup` and `first-echo`), measured `runs` times.
struct RowPlan<'a> {
    target: &'a Target,
    shape: &'a Shape,
    variant: Option<&'static str>,
    resume: bool,
}

impl RowPlan<'_> {
    fn scenario(&self, scenario: &str) -> String {
        match self.variant {
            Some(v) => format!("{scenario}/{v}"),
            None => scenario.to_string(),
        }
    }

    /// Measures every run; on an interrupt, returns the rows of the runs that finished and
    /// names the measurement abandoned.
    fn measure(
        &self,
        client_rt: &tokio::runtime::Runtime,
        opts: &BenchOptions,
        progress: &Progress,
    ) -> (Vec<Row>, Option<String>) {
        let (mut runs, mut first_echo) = (Vec::new(), Vec::new());
        let mut stopped = None;
        for run in 1..=opts.runs {
            let what = format!(
                "{} {} {} B, run {run}/{}",
                self.target.name,
                self.scenario(self.shape.scenario.name()),
                self.shape.size,
                opts.runs
            );
            progress.start(what.clone());
            tracing::debug!("measuring {what}");
            let measured = client_rt.block_on(async {
                tokio::select! {
                    measured = measure(self.target, self.shape, self.resume, opts) => Some(measured),
                    () = opts.interrupt.triggered() => None,
                }
            });
            let Some((main, extra)) = measured else {
                stopped = Some(what);
                break;
            };
            runs.push(main.figures(opts.duration));
            first_echo.extend(extra.map(|t| t.figures(opts.duration)));
            progress.step();
            tracing::debug!("measured {what}");
        }
        let interrupted = stopped.is_some();
        let mut rows = Vec::new();
        for (scenario, runs) in [
            (self.shape.scenario.name(), runs),
            ("first-echo", first_echo),
        ] {
            if runs.is_empty() {
                continue;
            }
            let t = self.target;
            let mut row = Row::new(&t.name, &self.scenario(scenario), &t.url, self.shape, runs);
            row.interrupted = interrupted;
            row.datagram = t.transport.kind() == Kind::Datagram;
            rows.push(row);
        }
        (rows, stopped)
    }
}

/// A datagram message larger than the transport carries is refused before the run, as
/// `connect` refuses it, instead of measuring "nothing was echoed".
fn check_datagram_sizes(
    client_rt: &tokio::runtime::Runtime,
    targets: &[Target],
    shapes: &[Shape],
) -> Result<(), BenchError> {
    for target in targets
        .iter()
        .filter(|t| t.transport.kind() == Kind::Datagram)
    {
        let Some(largest) = shapes.iter().map(|s| s.size).max() else {
            continue;
        };
        let dialed = client_rt.block_on(target.transport.dial(&target.addr, &target.client));
        let Ok(Channel::Datagram(socket)) = dialed.map(|c| c.channel) else {
            continue;
        };
        let max = socket.max_payload();
        if largest > max {
            let too_large = echotool_core::Error::TooLarge {
                proto: target.name.clone(),
                size: largest,
                max,
            };
            return Err(BenchError::Invalid(too_large.to_string()));
        }
    }
    Ok(())
}

fn external_target(
    registry: &Registry,
    endpoint: &Endpoint,
    opts: &BenchOptions,
) -> Result<Target, BenchError> {
    let proto = endpoint
        .proto
        .as_deref()
        .or(registry.default_protocol())
        .unwrap_or_default();
    let (transport, addr) = registry.locate(Some(endpoint), proto)?;
    Ok(Target {
        name: transport.name().to_string(),
        url: format!("{}://{addr}", transport.name()),
        transport,
        addr,
        client: opts.client.clone(),
    })
}

/// Starts one embedded server per protocol on loopback, on a runtime of its own.
fn embedded_targets(
    registry: &Registry,
    opts: &BenchOptions,
    plan: &CpuPlan,
) -> Result<(Vec<Target>, Servers), BenchError> {
    let server_rt = cpus::runtime("bench-server", plan.server_threads, &plan.server_cpus)
        .map_err(io_err("starting the server runtime"))?;
    let mut specs = Vec::new();
    for name in &protocols(registry, opts) {
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
        // The embedded servers may have throwaway credentials: the client trusts exactly
        // those.
        let mut client = opts.client.clone();
        listener.introduce(&mut client);
        targets.push(Target {
            name: spec.transport.name().to_string(),
            url: listener.url.clone(),
            transport: spec.transport.clone(),
            addr: HostPort::from(listener.local_addr),
            client,
        });
    }
    let running = server_rt.block_on(async { start(bound) });
    Ok((targets, (server_rt, running)))
}

/// One measurement of one shape against one target: the main tally, and for set-up the
/// time-to-first-echo tally too. The load runs in tasks of a [`JoinSet`], so abandoning the
/// measurement (an interrupt) stops them all.
async fn measure(
    target: &Target,
    shape: &Shape,
    resume: bool,
    opts: &BenchOptions,
) -> (Tally, Option<Tally>) {
    let kind = target.transport.kind();
    let drive = Drive {
        size: shape.size,
        depth: shape.depth,
        rate: shape.rate.map(|r| r / shape.conns as f64),
        echo_timeout: opts.echo_timeout.unwrap_or(default_echo_timeout(kind)),
        connect_timeout: target.client.connect_timeout,
    };
    if shape.scenario == Scenario::Setup {
        let mut client = target.client.clone();
        client.resume = resume;
        let window = Window::after(opts.warmup, opts.duration);
        let mut tasks = JoinSet::new();
        for _ in 0..shape.conns {
            let (transport, addr) = (target.transport.clone(), target.addr.clone());
            tasks.spawn(setup(transport, addr, client.clone(), drive, window));
        }
        let (mut connected, mut first) = (Tally::default(), Tally::default());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((c, f)) => {
                    connected.merge(&c);
                    first.merge(&f);
                }
                Err(join) => connected.error(&join),
            }
        }
        return (connected, Some(first));
    }
    let mut total = Tally::default();
    let mut channels = Vec::with_capacity(shape.conns);
    for _ in 0..shape.conns {
        match target.transport.dial(&target.addr, &target.client).await {
            Ok(conn) => channels.push(conn.channel),
            Err(err) => {
                tracing::warn!(target = %target.url, error = %err, "cannot connect");
                total.error(&err);
            }
        }
    }
    let window = Window::after(opts.warmup, opts.duration);
    let mut tasks = JoinSet::new();
    for channel in channels {
        tasks.spawn(async move {
            match channel {
                Channel::Stream(stream) => stream_echo(stream, drive, window).await,
                Channel::Datagram(socket) => datagram_echo(socket, drive, window).await,
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(&tally),
            Err(join) => total.error(&join),
        }
    }
    (total, None)
}
