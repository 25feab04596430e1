//! `echotool bench`: flags to options, run, print the table (or JSON, CSV), draw the plot,
//! and give the verdicts. A first Ctrl-C (or SIGTERM) ends the run early and still reports
//! what finished; the exit status then says which signal it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use echotool_bench::{BenchOptions, Interrupt, Report, Scenario};
use echotool_core::{ClientOptions, Registry};

use crate::cli::{BenchArgs, OutputArgs};
use crate::connect::{tls_flags_given, tls_options};
use crate::exit::Exit;
use crate::os_signals;

/// Runs the comparison and reports it. Exit status 1 when any echo came back altered or a row
/// measured nothing; 130 or 143 when a signal ended the run early.
pub fn run(registry: &Registry, args: BenchArgs, quiet: bool) -> Result<()> {
    let outputs = Outputs::check(&args.output)?;
    refuse_unused_tls_flags(registry, &args)?;
    let defaults = BenchOptions::default();
    let interrupt = Interrupt::new();
    let opts = BenchOptions {
        protocols: if args.proto.is_empty() {
            defaults.protocols
        } else {
            args.proto.clone()
        },
        scenarios: match (args.connect_rate, args.scenario.is_empty()) {
            (true, _) => vec![Scenario::Setup],
            (false, true) => defaults.scenarios,
            (false, false) => args.scenario.clone(),
        },
        variants: args.variant.clone(),
        conns: args.conns.map(|n| n as usize),
        sizes: args.size.clone(),
        depth: args.depth.map(|n| n as usize),
        duration: args.duration,
        warmup: args.warmup,
        runs: args.runs as usize,
        rate: args.rate,
        targets: args.target.clone(),
        start_at: args.start_at,
        client: ClientOptions {
            tls: tls_options(&args.tls),
            ..ClientOptions::default()
        },
        echo_timeout: args.timeout,
        pin_cpus: !args.no_pin,
        progress: !quiet,
        interrupt: interrupt.clone(),
        links: args.link.iter().flatten().cloned().collect(),
        pcap: args.pcap.clone(),
        trace: args.trace,
    };
    let on_signal = interrupt.clone();
    let stopped = std::sync::Arc::new(std::sync::OnceLock::new());
    let stop = stopped.clone();
    os_signals::watch(move |signal| {
        let _ = stop.set(signal);
        eprintln!(
            "{}: finishing with what was measured (again to quit at once)",
            signal.past()
        );
        on_signal.trigger(signal.name());
    })?;
    // Told once Ctrl-C is watched: a signal after a note ends the run in order.
    if !quiet {
        let mut notices = opts.notices();
        // A time in the past is refused by the run, with its reason.
        let ahead = args
            .start_at
            .and_then(|at| Some((at, at.duration_since(std::time::SystemTime::now()).ok()?)));
        if let Some((at, ahead)) = ahead {
            let secs = ahead.as_secs_f64();
            notices.push(format!(
                "waiting until {} (--start-at, {secs:.0} s from now) to start the first warm-up; \
                 later ones start every {}",
                echotool_bench::clock::rfc3339(at),
                echotool_core::duration::display(opts.period())
            ));
        }
        if args.no_pin && !args.target.is_empty() {
            notices.push("--no-pin does nothing with --target: only the client runs here".into());
        }
        for notice in notices {
            eprintln!("note: {notice}");
        }
    }
    let report = echotool_bench::run(registry, &opts)?;
    outputs.write(&report)?;
    let verdict = verdict(&report, quiet);
    match stopped.get() {
        // Interrupted: everything that finished is out; the status names the signal.
        Some(signal) => Err(Exit::code(signal.exit_code()).into()),
        None => verdict,
    }
}

/// The TLS flags set trust for a `--target` that speaks TLS; the embedded servers are
/// trusted by their certificates' fingerprints, so the flags would do nothing for them.
fn refuse_unused_tls_flags(registry: &Registry, args: &BenchArgs) -> Result<()> {
    let Some(flag) = tls_flags_given(&args.tls).first().copied() else {
        return Ok(());
    };
    if args.target.is_empty() {
        return Err(Exit::usage(format!(
            "{flag} does nothing for the embedded servers, which are trusted by their \
             certificates' fingerprints: the TLS flags apply to a --target"
        )));
    }
    let mut plain = Vec::new();
    for target in &args.target {
        let (transport, addr) = registry.locate(Some(target), "tcp")?;
        match transport.secure() {
            true => return Ok(()),
            false => plain.push(format!("{}://{addr}", transport.name())),
        }
    }
    Err(Exit::usage(format!(
        "{flag} does nothing for {}: the TLS flags apply to TLS and QUIC targets",
        plain.join(", ")
    )))
}

/// Where the report goes, checked before the run so that a bad path does not cost a run.
pub(crate) struct Outputs {
    json: Option<PathBuf>,
    csv: Option<PathBuf>,
    plot: Option<PathBuf>,
}

impl Outputs {
    pub(crate) fn check(args: &OutputArgs) -> Result<Outputs> {
        let is_stdout = |file: &Option<PathBuf>| file.as_deref() == Some(Path::new("-"));
        if is_stdout(&args.json) && is_stdout(&args.csv) {
            return Err(Exit::usage(
                "--json and --csv cannot both go to standard output: give one of them a FILE",
            ));
        }
        if let Some(plot) = &args.plot {
            let svg = plot
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
            if !svg {
                return Err(Exit::usage(format!(
                    "--plot writes SVG, so {} would hold SVG under another name: name the file \
                     .svg (e.g. --plot latency.svg), and convert it if you need another format",
                    plot.display()
                )));
            }
        }
        for (flag, path) in [
            ("--json", &args.json),
            ("--csv", &args.csv),
            ("--plot", &args.plot),
        ] {
            if let Some(path) = path.as_deref().filter(|p| *p != Path::new("-")) {
                writable(flag, path)?;
            }
        }
        Ok(Outputs {
            json: args.json.clone(),
            csv: args.csv.clone(),
            plot: args.plot.clone(),
        })
    }

    /// The table (or JSON or CSV) on standard output, and every file asked for.
    pub(crate) fn write(&self, report: &Report) -> Result<()> {
        let to_stdout = |file: &Option<PathBuf>| file.as_deref() == Some(Path::new("-"));
        let mut stdout = std::io::stdout().lock();
        if to_stdout(&self.json) {
            writeln!(stdout, "{}", report.json())?;
        } else if to_stdout(&self.csv) {
            write!(stdout, "{}", report.csv())?;
        } else {
            writeln!(stdout, "{}", report.header())?;
            write!(stdout, "{}", report.table())?;
        }
        stdout.flush()?;
        if let Some(path) = self.json.as_deref().filter(|p| *p != Path::new("-")) {
            write_file(path, &report.json())?;
        }
        if let Some(path) = self.csv.as_deref().filter(|p| *p != Path::new("-")) {
            write_file(path, &report.csv())?;
        }
        if let Some(path) = &self.plot {
            echotool_bench::plot(report, path)?;
        }
        Ok(())
    }
}

/// Refuses an output path that cannot be written, without leaving anything behind.
fn writable(flag: &str, path: &Path) -> Result<()> {
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path);
    match opened {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(Exit::usage(format!(
            "{flag} {}: cannot write there ({}); check that the directory exists and is writable",
            path.display(),
            match e.kind() {
                std::io::ErrorKind::NotFound => "no such directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            }
        ))),
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Tells every finding; fails the run when an echo came back altered or a row measured
/// nothing.
pub(crate) fn verdict(report: &Report, quiet: bool) -> Result<()> {
    let failures: Vec<_> = report.findings.iter().filter(|f| f.fails).collect();
    for finding in report.findings.iter().filter(|f| !f.fails) {
        if !quiet {
            eprintln!("note: {}", finding.text);
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        [only] => bail!("{}", only.text),
        [first, rest @ ..] => {
            for other in rest {
                eprintln!("note: {}", other.text);
            }
            bail!("{} (and {} more, above)", first.text, rest.len())
        }
    }
}
