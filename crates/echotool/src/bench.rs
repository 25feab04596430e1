//! `echotool bench`: flags to options, run, print the table (or JSON, CSV), draw the plot.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use echotool_bench::{BenchOptions, Report, Scenario};
use echotool_core::{ClientOptions, Registry};

use crate::cli::BenchArgs;
use crate::connect::tls_options;

/// Runs the comparison and reports it; exit status 1 when any echo was wrong or a row measured
/// nothing.
pub fn run(registry: &Registry, args: BenchArgs) -> Result<()> {
    let defaults = BenchOptions::default();
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
        conns: args.conns.map(|n| n as usize),
        sizes: args.size.clone(),
        depth: args.depth.map(|n| n as usize),
        duration: args.duration,
        warmup: args.warmup,
        runs: args.runs as usize,
        rate: args.rate,
        target: args.target.clone(),
        client: ClientOptions {
            tls: tls_options(&args.tls),
            ..ClientOptions::default()
        },
        echo_timeout: args.timeout,
        pin_cpus: !args.no_pin,
        progress: true,
    };
    let report = echotool_bench::run(registry, &opts)?;
    let to_stdout = |file: &Option<std::path::PathBuf>| file.as_deref() == Some(Path::new("-"));
    let mut stdout = std::io::stdout().lock();
    if to_stdout(&args.json) {
        writeln!(stdout, "{}", report.json())?;
    } else if to_stdout(&args.csv) {
        write!(stdout, "{}", report.csv())?;
    } else {
        writeln!(stdout, "{}", report.header())?;
        write!(stdout, "{}", report.table())?;
    }
    if let Some(path) = args.json.as_deref().filter(|p| *p != Path::new("-")) {
        write_file(path, &report.json())?;
    }
    if let Some(path) = args.csv.as_deref().filter(|p| *p != Path::new("-")) {
        write_file(path, &report.csv())?;
    }
    if let Some(path) = &args.plot {
        echotool_bench::plot(&report, path)?;
    }
    verdict(&report)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Fails the run when any echo differed from what was sent or nothing was measured.
fn verdict(report: &Report) -> Result<()> {
    let mismatches = report.mismatches();
    if mismatches > 0 {
        bail!(
            "{mismatches} echoes differed from what was sent (the mismatch column): the server \
             altered, lost or reordered bytes"
        );
    }
    if let Some(row) = report.empty_rows().first() {
        let f = &row.median;
        let why = if f.lost > 0 {
            format!(
                "all {} datagrams were lost; is an echo server listening there?",
                f.lost
            )
        } else {
            format!("{} errors; is an echo server listening there?", f.errors)
        };
        bail!(
            "nothing was echoed by {} in the {} scenario: {why}",
            row.url,
            row.scenario
        );
    }
    Ok(())
}
