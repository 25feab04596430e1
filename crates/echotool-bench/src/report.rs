//! The report: every figure with the parameters and the machine, as a table, JSON or CSV.

use std::fmt::Write as _;

use echotool_core::StatsSnapshot;
use serde::Serialize;

use crate::cpus::CpuPlan;
use crate::tally::Figures;
use crate::{BenchOptions, Machine, Shape};

/// Everything one `echotool bench` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The version of echotool that measured.
    pub echotool_version: String,
    /// The machine.
    pub machine: Machine,
    /// Threads and CPUs of the servers and the client.
    pub threads: CpuPlan,
    /// How the run was asked for.
    pub parameters: Parameters,
    /// One row per protocol and shape.
    pub rows: Vec<Row>,
    /// The embedded servers' own counters at the end.
    pub servers: Vec<ServerSummary>,
}

/// The run's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    /// Protocols asked for (ignored with a target).
    pub protocols: Vec<String>,
    /// Scenarios asked for.
    pub scenarios: Vec<String>,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Runs per measurement.
    pub runs: usize,
    /// Open-loop rate, messages per second in total.
    pub rate: Option<f64>,
    /// The external target, if any.
    pub target: Option<String>,
    /// Milliseconds before a datagram counts as lost.
    pub echo_timeout_ms: u128,
}

impl Parameters {
    pub(crate) fn from_options(opts: &BenchOptions) -> Self {
        Parameters {
            protocols: opts.protocols.clone(),
            scenarios: opts
                .scenarios
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            runs: opts.runs,
            rate: opts.rate,
            target: opts.target.as_ref().map(|t| {
                format!(
                    "{}://{}",
                    t.proto.as_deref().unwrap_or("tcp"),
                    t.host_port("127.0.0.1", echotool_core::DEFAULT_PORT)
                )
            }),
            echo_timeout_ms: opts.echo_timeout.as_millis(),
        }
    }
}

/// One protocol in one shape: every run, and the median run.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Protocol name.
    pub protocol: String,
    /// `latency`, `throughput`, `setup` or `first-echo`.
    pub scenario: String,
    /// The server measured.
    pub url: String,
    /// Connections (sockets).
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Open-loop rate, if any.
    pub rate: Option<f64>,
    /// The run with the median messages per second, with errors, mismatches and losses summed
    /// over all runs.
    pub median: Figures,
    /// (max - min) / median of messages per second, in percent, when there were several runs.
    pub spread_pct: Option<f64>,
    /// Every run.
    pub runs: Vec<Figures>,
}

impl Row {
    pub(crate) fn new(
        protocol: &str,
        scenario: &str,
        url: &str,
        shape: &Shape,
        runs: Vec<Figures>,
    ) -> Row {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| {
            runs[a]
                .messages_per_sec
                .total_cmp(&runs[b].messages_per_sec)
        });
        let mut median = runs[order[order.len() / 2]].clone();
        median.errors = runs.iter().map(|r| r.errors).sum();
        median.mismatches = runs.iter().map(|r| r.mismatches).sum();
        median.lost = runs.iter().map(|r| r.lost).sum();
        let spread_pct = (runs.len() > 1 && median.messages_per_sec > 0.0).then(|| {
            let lo = runs[order[0]].messages_per_sec;
            let hi = runs[order[order.len() - 1]].messages_per_sec;
            (hi - lo) / median.messages_per_sec * 100.0
        });
        Row {
            protocol: protocol.to_string(),
            scenario: scenario.to_string(),
            url: url.to_string(),
            conns: shape.conns,
            size: shape.size,
            depth: shape.depth,
            rate: shape.rate,
            median,
            spread_pct,
            runs,
        }
    }
}

/// An embedded server's counters.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSummary {
    /// Its URL.
    pub url: String,
    /// Connections accepted.
    pub connections: u64,
    /// Messages echoed.
    pub messages: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Connection errors.
    pub errors: u64,
}

impl ServerSummary {
    pub(crate) fn from_stats(url: &str, s: &StatsSnapshot) -> Self {
        ServerSummary {
            url: url.to_string(),
            connections: s.connections,
            messages: s.messages,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            errors: s.errors,
        }
    }
}

impl Report {
    /// Echoes that differed from what was sent, over every row.
    pub fn mismatches(&self) -> u64 {
        self.rows.iter().map(|r| r.median.mismatches).sum()
    }

    /// Rows in which nothing at all was measured.
    pub fn empty_rows(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.runs.iter().all(|f| f.messages == 0))
            .collect()
    }

    /// The JSON document: every figure, the parameters, the machine.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One CSV line per row (median run), with a header.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "protocol,scenario,conns,size,depth,rate,messages_per_sec,mb_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,errors,mismatches,lost,spread_pct\n",
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        for r in &self.rows {
            let f = &r.median;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{:.1},{:.3},{},{},{},{},{},{},{},{},{}",
                r.protocol,
                r.scenario,
                r.conns,
                r.size,
                r.depth,
                opt(r.rate),
                f.messages_per_sec,
                f.mb_per_sec,
                opt(f.rtt_us.p50),
                opt(f.rtt_us.p90),
                opt(f.rtt_us.p99),
                opt(f.rtt_us.p999),
                opt(f.rtt_us.max),
                f.errors,
                f.mismatches,
                f.lost,
                opt(r.spread_pct)
            );
        }
        out
    }

    /// The side-by-side table people read.
    pub fn table(&self) -> String {
        let mut cells: Vec<Vec<String>> = vec![
            [
                "protocol", "scenario", "conns", "size", "depth", "msgs/s", "MB/s", "p50", "p90",
                "p99", "p99.9", "max", "errors", "mismatch", "lost",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ];
        let runs = self.parameters.runs;
        if runs > 1 {
            cells[0].push("spread".into());
        }
        for r in &self.rows {
            let f = &r.median;
            let p = f.rtt_us;
            let lost = if r.protocol.starts_with("udp") || f.lost > 0 {
                f.lost.to_string()
            } else {
                "-".into()
            };
            let mut line = vec![
                r.protocol.clone(),
                r.scenario.clone(),
                r.conns.to_string(),
                bytes(r.size),
                if r.rate.is_some() {
                    "open".into()
                } else {
                    r.depth.to_string()
                },
                thousands(f.messages_per_sec),
                // Set-up moves no payload worth a rate.
                if r.scenario.starts_with("setup") {
                    "-".into()
                } else {
                    format!("{:.2}", f.mb_per_sec)
                },
                micros(p.p50),
                micros(p.p90),
                micros(p.p99),
                micros(p.p999),
                micros(p.max),
                f.errors.to_string(),
                f.mismatches.to_string(),
                lost,
            ];
            if runs > 1 {
                line.push(
                    r.spread_pct
                        .map(|s| format!("±{:.0}%", s / 2.0))
                        .unwrap_or_default(),
                );
            }
            cells.push(line);
        }
        let widths: Vec<usize> = (0..cells[0].len())
            .map(|c| {
                cells
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &cells {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    // Names left, figures right.
                    if c < 2 {
                        format!("{cell:<w$}", w = widths[c])
                    } else {
                        format!("{cell:>w$}", w = widths[c])
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// One line about how the figures were taken.
    pub fn header(&self) -> String {
        let t = &self.threads;
        let cpus = |list: &[usize]| {
            if list.is_empty() {
                "any CPU".to_string()
            } else {
                format!(
                    "CPU {}",
                    list.iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        };
        let where_ = if self.parameters.target.is_some() {
            format!(
                "client: {} thread(s) on {}",
                t.client_threads,
                cpus(&t.client_cpus)
            )
        } else {
            format!(
                "servers: {} thread(s) on {}; client: {} thread(s) on {}",
                t.server_threads,
                cpus(&t.server_cpus),
                t.client_threads,
                cpus(&t.client_cpus)
            )
        };
        format!(
            "echotool {} bench: {} s per run after {} s warm-up, {} run(s); {}; {} ({} CPUs), Linux {}",
            self.echotool_version,
            self.parameters.duration_s,
            self.parameters.warmup_s,
            self.parameters.runs,
            where_,
            self.machine.cpu_model,
            self.machine.cpus,
            self.machine.kernel
        )
    }
}

/// `16 KiB`, `64 B`: sizes as the table and plot show them.
pub(crate) fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn micros(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(us) if us >= 10_000.0 => format!("{:.1} ms", us / 1000.0),
        Some(us) if us >= 1000.0 => format!("{:.2} ms", us / 1000.0),
        Some(us) if us >= 100.0 => format!("{us:.0} µs"),
        Some(us) => format!("{us:.1} µs"),
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}
