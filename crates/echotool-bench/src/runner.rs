//! Running a benchmark: start the servers, measure every protocol in every shape, stop.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use echotool_core::{
    Addressing, Channel, ClientOptions, Endpoint, HostPort, Kind, Registry, Resolved,
    ServerOptions, Transport,
};
use echotool_core::{ListenSpec, Running, bind_all, start};
use echotool_link::LinkSpec;

use crate::clock;
use crate::cpus::{self, CpuPlan};
use crate::load::BeforeFirstDial;
use crate::load::close;
use crate::measure::Measurement;
use crate::network::{LinkSummary, Network};
use crate::progress::Progress;
use crate::report::{Parameters, Report, Resolution, Row, SCHEMA, ServerSummary};
use crate::scratch::ScratchDir;
use crate::{BenchError, BenchOptions, Clock, Machine, Scenario, Shape};

/// One server to measure.
struct Target {
    name: String,
    url: String,
    transport: Arc<dyn Transport>,
    addr: HostPort,
    client: ClientOptions,
}

/// Under `--start-at`, a window that starts this many seconds after its slot started late.
const LATE_START: f64 = 0.1;

/// The embedded servers, the runtime they run on, and the directory of their socket files
/// (removed after they stop).
type Servers = (tokio::runtime::Runtime, Running, Option<ScratchDir>);

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
    refuse_local_over_link(registry, opts)?;
    let mut network = Network::new(&opts.links, opts.pcap.clone(), opts.trace)?;
    // A safety net beside the runtimes' own: a socket this thread made by mistake would be
    // inside the link's client side, never in the host's namespace.
    let _main_inside = network.enter_client()?;
    let clock = Clock::current();
    let plan = cpus::plan(opts.targets.is_empty(), opts.pin_cpus);
    let client_rt = cpus::runtime(
        "bench-client",
        plan.client_threads,
        &plan.client_cpus,
        network.client_start(),
    )
    .map_err(io_err("starting the client runtime"))?;
    let (mut targets, servers) = match opts.targets.is_empty() {
        false => {
            let targets = opts
                .targets
                .iter()
                .map(|endpoint| external_target(registry, endpoint, opts));
            (targets.collect::<Result<Vec<_>, _>>()?, None)
        }
        true => {
            let (targets, servers) = embedded_targets(registry, opts, &plan, &network)?;
            (targets, Some(servers))
        }
    };
    check_variants(&targets, &opts.variants)?;
    let resolved = resolve_ahead(&client_rt, &mut targets)?;
    let shapes = opts.shapes();
    preflight(&client_rt, &targets, &shapes)?;
    let measured = measure_all(&client_rt, &mut network, &targets, &shapes, opts)?;
    let servers = match servers {
        Some((server_rt, running, _socket_files)) => server_rt
            .block_on(running.stop())
            .into_iter()
            .map(|s| ServerSummary::from_stats(&s.url, &s.stats))
            .collect(),
        None => Vec::new(),
    };
    let external = match opts.targets.is_empty() {
        true => Vec::new(),
        false => targets.iter().map(|t| t.url.clone()).collect(),
    };
    let mut report = Report {
        schema: SCHEMA,
        echotool_version: env!("CARGO_PKG_VERSION").to_string(),
        machine: Machine::current(),
        clock,
        threads: plan,
        parameters: Parameters {
            resolved,
            ..Parameters::new(opts, external, protocols(registry, opts))
        },
        rows: measured.rows,
        servers,
        links: measured.links,
        interrupted: opts.interrupt.reason(),
        abandoned: measured.abandoned,
        sources: Vec::new(),
        findings: Vec::new(),
    };
    report.findings = report.judge();
    Ok(report)
}

/// Refuses a `--variant` that no protocol measured has, naming those they have.
fn check_variants(targets: &[Target], variants: &[String]) -> Result<(), BenchError> {
    let known = |name: &str| {
        targets.iter().any(|t| {
            let own = t.transport.setup_variants();
            own.iter().any(|v| v.name == name)
        })
    };
    let Some(unknown) = variants.iter().find(|name| !known(name)) else {
        return Ok(());
    };
    let mut have: Vec<String> = Vec::new();
    for target in targets {
        let own = target.transport.setup_variants();
        let line = match own.is_empty() {
            true => format!("{} has none", target.name),
            false => format!(
                "{} has {}",
                target.name,
                own.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
            ),
        };
        if !have.contains(&line) {
            have.push(line);
        }
    }
    Err(BenchError::Invalid(format!(
        "no protocol measured has a set-up variant '{unknown}': {}",
        have.join("; ")
    )))
}

/// Resolves each target's name once, before anything is measured, so that no dial of the run
/// resolves it again: set-up times then measure connecting, as wrk's and h2load's do, and every
/// dial goes to the same addresses. A name several targets share (`tcp://h:5555,quic://h:5556`)
/// is resolved once for all of them. IP literals and socket paths have nothing to resolve.
fn resolve_ahead(
    client_rt: &tokio::runtime::Runtime,
    targets: &mut [Target],
) -> Result<Vec<Resolution>, BenchError> {
    let mut resolutions = Vec::new();
    let mut by_name: Vec<Resolved> = Vec::new();
    for target in targets {
        let addr = target.addr.clone();
        if addr.host.is_empty() || addr.ip().is_some() {
            continue;
        }
        let resolved = match by_name.iter().find(|r| r.target.host == addr.host) {
            Some(earlier) => Resolved {
                addrs: earlier
                    .addrs
                    .iter()
                    .map(|a| std::net::SocketAddr::new(a.ip(), addr.port))
                    .collect(),
                target: addr,
                took: earlier.took,
            },
            None => {
                let name = addr.clone();
                // On the runtime's threads: with a link, only they are inside its client side.
                let resolved = client_rt
                    .block_on(client_rt.spawn(async move { Resolved::ahead(&name).await }))
                    .map_err(|e| BenchError::Io {
                        context: format!("resolving {}", addr.host),
                        source: std::io::Error::other(e),
                    })?
                    .map_err(BenchError::Transport)?;
                resolutions.push(Resolution {
                    name: addr.host.clone(),
                    addresses: resolved.addrs.iter().map(|a| a.ip().to_string()).collect(),
                    took_us: resolved.took.as_secs_f64() * 1e6,
                });
                by_name.push(resolved.clone());
                resolved
            }
        };
        target.client.resolved = Some(resolved);
    }
    Ok(resolutions)
}

/// Refuses `--link` for a transport addressed by a socket path: nothing it sends crosses a
/// network, so a link cannot be put in its way (its rows would measure the host, not the
/// link).
fn refuse_local_over_link(registry: &Registry, opts: &BenchOptions) -> Result<(), BenchError> {
    if opts.links.is_empty() {
        return Ok(());
    }
    for name in protocols(registry, opts) {
        if registry.get(&name)?.addressing() == Addressing::Path {
            return Err(BenchError::Invalid(format!(
                "{name} is a local socket: nothing it sends crosses a network, so --link cannot \
                 be put in its way; measure {name} without --link"
            )));
        }
    }
    Ok(())
}

/// What the measurements gave.
struct Measured {
    rows: Vec<Row>,
    links: Vec<LinkSummary>,
    abandoned: Option<String>,
}

/// Every target in every shape, over every path (loopback, or each link spec in turn).
fn measure_all(
    client_rt: &tokio::runtime::Runtime,
    network: &mut Network,
    targets: &[Target],
    shapes: &[Shape],
    opts: &BenchOptions,
) -> Result<Measured, BenchError> {
    let paths = network.paths();
    let steps: usize = targets
        .iter()
        .map(|t| plans(t, shapes, &opts.variants).len() * opts.runs * paths.len())
        .sum();
    let progress = Progress::new(opts.progress, steps);
    let mut measured = Measured {
        rows: Vec::new(),
        links: Vec::new(),
        abandoned: None,
    };
    // Under --start-at, the nth measurement has the nth slot.
    let mut slots = 0..;
    'paths: for path in &paths {
        if let Some(spec) = path {
            network.switch_to(spec)?;
        }
        for target in targets {
            for (shape, variant, resume, shared_endpoint) in plans(target, shapes, &opts.variants) {
                let row = RowPlan {
                    target,
                    shape: &shape,
                    variant,
                    resume,
                    shared_endpoint,
                    link: path.as_ref(),
                    network,
                };
                let (done, stopped) = row.measure(client_rt, opts, &progress, &mut slots);
                measured.rows.extend(done);
                if stopped.is_some() {
                    measured.abandoned = stopped;
                    measured.links.extend(network.summary());
                    break 'paths;
                }
            }
        }
        measured.links.extend(network.summary());
    }
    progress.finish();
    Ok(measured)
}

/// The protocols measured: those asked for, or every one the registry compares by default.
fn protocols(registry: &Registry, opts: &BenchOptions) -> Vec<String> {
    match opts.protocols.is_empty() {
        true => registry.compared().iter().map(|p| p.to_string()).collect(),
        false => opts.protocols.clone(),
    }
}

/// One measurement of a target: its shape, and for set-up its variant's name, whether it
/// resumes and whether it shares one client endpoint.
type Plan = (Shape, Option<&'static str>, bool, bool);

/// Every measurement of a target: each shape that applies, in each set-up variant (of
/// `variants`, when it names any).
fn plans(target: &Target, shapes: &[Shape], variants: &[String]) -> Vec<Plan> {
    shapes
        .iter()
        // Set-up and streams have no meaning without connections.
        .filter(|s| {
            let connections = matches!(s.scenario, Scenario::Setup | Scenario::Multistream);
            !(connections && target.transport.kind() == Kind::Datagram)
        })
        .flat_map(|shape| {
            // Set-up on a transport that can resume sessions is measured once fresh and once
            // resumed, as the transport names its variants.
            let variants: Vec<(Option<&'static str>, bool, bool)> =
                match (shape.scenario, target.transport.setup_variants()) {
                    (Scenario::Setup, []) => vec![(None, false, false)],
                    (Scenario::Setup, own) => own
                        .iter()
                        .filter(|v| variants.is_empty() || variants.iter().any(|n| n == v.name))
                        .map(|v| (Some(v.name), v.resume, v.shared_endpoint))
                        .collect(),
                    _ => vec![(None, true, false)],
                };
            variants.into_iter().map(|(v, r, s)| (*shape, v, r, s))
        })
        .collect()
}

/// One row of the report (two for set-up: `setup` and `first-echo`), measured `runs` times.
struct RowPlan<'a> {
    target: &'a Target,
    shape: &'a Shape,
    variant: Option<&'static str>,
    resume: bool,
    /// Dial through one shared client endpoint (QUIC's `*-shared` set-up variants).
    shared_endpoint: bool,
    /// The link in force, if any.
    link: Option<&'a LinkSpec>,
    network: &'a Network,
}

impl RowPlan<'_> {
    /// One run of this row, owned so it can run as a task; with `--trace`, the first run
    /// traces its first connection; under `--start-at`, it waits for its slot.
    fn measurement(
        &self,
        opts: &BenchOptions,
        first_run: bool,
        slot: Option<SystemTime>,
    ) -> Measurement {
        let before_first_dial = (opts.trace && first_run)
            .then(|| Arc::new(self.network.aim_trace()) as BeforeFirstDial);
        Measurement {
            transport: self.target.transport.clone(),
            addr: self.target.addr.clone(),
            client: ClientOptions {
                shared_endpoint: self.shared_endpoint,
                ..self.target.client.clone()
            },
            shape: *self.shape,
            resume: self.resume,
            warmup: opts.warmup,
            duration: opts.duration,
            echo_timeout: opts.echo_timeout,
            before_first_dial,
            not_before: slot,
        }
    }

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
        slots: &mut std::ops::RangeFrom<usize>,
    ) -> (Vec<Row>, Option<String>) {
        let (mut runs, mut first_echo) = (Vec::new(), Vec::new());
        let mut stopped = None;
        let mut late_start: Option<f64> = None;
        for run in 1..=opts.runs {
            let over = self
                .link
                .map(|l| format!(" over {}", l.label()))
                .unwrap_or_default();
            let what = format!(
                "{} {} {} B{over}, run {run}/{}",
                self.target.name,
                self.scenario(self.shape.scenario.name()),
                self.shape.size,
                opts.runs
            );
            let slot = slots.next().and_then(|n| opts.slot(n));
            match slot {
                Some(at) if at > SystemTime::now() => {
                    progress.start(format!("{what}: waiting for {}", clock::rfc3339(at)))
                }
                _ => progress.start(what.clone()),
            }
            tracing::debug!("measuring {what}");
            let measurement = self.measurement(opts, run == 1, slot);
            // On the runtime's threads: with a link, only they are inside its client side.
            let measured = client_rt.block_on(async {
                let mut task = client_rt.spawn(measurement.run());
                tokio::select! {
                    measured = &mut task => measured.ok(),
                    () = opts.interrupt.triggered() => {
                        task.abort();
                        None
                    }
                }
            });
            let Some((main, extra, span)) = measured else {
                stopped = Some(what);
                break;
            };
            if let Some(at) = slot {
                // The window opens a warm-up after the slot; later means it started late.
                let late = span.start_unix - opts.warmup.as_secs_f64() - clock::unix(at);
                if late > LATE_START {
                    late_start = Some(late_start.unwrap_or_default().max(late));
                }
            }
            runs.push(main.figures(span));
            first_echo.extend(extra.map(|t| t.figures(span)));
            progress.step();
            let trace = self.network.take_trace();
            if opts.trace && !trace.is_empty() {
                progress.suspend(|| eprint!("trace: {what}, its first connection:\n{trace}"));
            }
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
            row.link = self.link.map(|l| l.label());
            row.link_spec = self.link.map(|l| l.to_string());
            row.datagram = t.transport.kind() == Kind::Datagram;
            row.late_start_s = late_start;
            rows.push(row);
        }
        (rows, stopped)
    }
}

/// Every target is dialed once before anything is measured: one that cannot be reached (a
/// refused port, a CA file that is not there, a certificate not trusted) stops the run with
/// its reason, instead of a table of empty rows. A datagram message larger than the transport
/// carries is refused too, as `connect` refuses it, instead of measuring "nothing was echoed".
fn preflight(
    client_rt: &tokio::runtime::Runtime,
    targets: &[Target],
    shapes: &[Shape],
) -> Result<(), BenchError> {
    let largest = shapes.iter().map(|s| s.size).max().unwrap_or_default();
    for target in targets {
        let (transport, addr, client) = (
            target.transport.clone(),
            target.addr.clone(),
            target.client.clone(),
        );
        let dial = async move {
            let conn = transport.dial(&addr, &client).await?;
            Ok(match conn.channel {
                Channel::Datagram(socket) => Some(socket.max_payload()),
                Channel::Stream(stream) => {
                    // In order, so that the server does not count an abrupt end as an error.
                    let _ = tokio::time::timeout(Duration::from_secs(1), close(stream)).await;
                    None
                }
            })
        };
        // Dialed on the runtime's threads: with a link, only they are inside its client side.
        let dialed = client_rt
            .block_on(client_rt.spawn(dial))
            .map_err(|e| BenchError::Io {
                context: format!("dialing {}", target.url),
                source: std::io::Error::other(e),
            })?;
        match dialed {
            // Its own words name the target, and its kind picks the exit status.
            Err(err) => return Err(BenchError::Transport(err)),
            Ok(Some(max)) if largest > max => {
                let too_large = echotool_core::Error::TooLarge {
                    proto: target.name.clone(),
                    size: largest,
                    max,
                };
                return Err(BenchError::Invalid(too_large.to_string()));
            }
            Ok(_) => {}
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
    network: &Network,
) -> Result<(Vec<Target>, Servers), BenchError> {
    let server_rt = cpus::runtime(
        "bench-server",
        plan.server_threads,
        &plan.server_cpus,
        network.server_start(),
    )
    .map_err(io_err("starting the server runtime"))?;
    let mut specs = Vec::new();
    let mut socket_files = None;
    for name in &protocols(registry, opts) {
        let transport = registry.get(name)?;
        let mut options = ServerOptions::default();
        options.datagram.workers = Some(plan.server_threads.max(1));
        let addr = match transport.addressing() {
            Addressing::Path => {
                let dir = match &mut socket_files {
                    Some(dir) => dir,
                    None => socket_files.insert(
                        ScratchDir::new().map_err(io_err("making a directory for socket files"))?,
                    ),
                };
                let path = dir.path().join(format!("{name}.sock"));
                HostPort::at_path(path.display().to_string())
            }
            // Port 0 picks a free one; a URL path stays the transport's own.
            Addressing::HostPort | Addressing::Url => HostPort {
                path: transport.default_addr().path,
                ..HostPort::new(network.server_host(transport.family()), 0)
            },
        };
        specs.push(ListenSpec {
            addr,
            transport,
            options,
            origin: None,
        });
    }
    // Bound on the runtime's threads: with a link, only they are inside its server side.
    let binding = specs.clone();
    let bound = server_rt
        .block_on(server_rt.spawn(async move { bind_all(&binding).await }))
        .map_err(|e| BenchError::Io {
            context: "binding the embedded servers".into(),
            source: std::io::Error::other(e),
        })??;
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
            addr: listener.local_addr.clone(),
            client,
        });
    }
    let running = server_rt.block_on(async { start(bound) });
    Ok((targets, (server_rt, running, socket_files)))
}
