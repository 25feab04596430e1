//! The report: every figure with the parameters and the machine, as a table, JSON or CSV.

use std::fmt::Write as _;

use echotool_core::{StatsSnapshot, duration};
use serde::{Deserialize, Serialize};

use crate::cpus::CpuPlan;
use crate::tally::Figures;
use crate::{BenchOptions, Clock, Machine, Shape, Span};

/// The layout of the JSON document this version writes and reads (`"schema"`): raised
/// whenever a field changes meaning or goes away, so that `echotool report` never merges
/// documents it would misread. Described field by field in `docs/report-schema.md`.
pub const SCHEMA: u32 = 1;

/// Everything one `echotool bench` run measured (or several merged by `echotool report`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The document's layout, [`SCHEMA`].
    pub schema: u32,
    /// The version of echotool that measured.
    pub echotool_version: String,
    /// The machine.
    pub machine: Machine,
    /// How far its clock can be trusted, for runs put side by side with other machines'.
    pub clock: Clock,
    /// Threads and CPUs of the servers and the client.
    pub threads: CpuPlan,
    /// How the run was asked for.
    pub parameters: Parameters,
    /// One row per protocol and shape.
    pub rows: Vec<Row>,
    /// The embedded servers' own counters at the end.
    pub servers: Vec<ServerSummary>,
    /// What the emulated link did under each spec (`--link`), with its own timing error.
    pub links: Vec<crate::LinkSummary>,
    /// Why the run stopped early (`SIGINT`, `SIGTERM`), if it did; the rows are those that
    /// finished.
    pub interrupted: Option<String>,
    /// The measurement under way when the run was interrupted, abandoned.
    pub abandoned: Option<String>,
    /// The reports merged into this one by `echotool report`, one per file; empty for a
    /// run's own report.
    pub sources: Vec<Source>,
    /// The verdicts on the rows: what the figures mean beyond the numbers.
    pub findings: Vec<Finding>,
}

/// One report merged into another: which file, from which machine, measured when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    /// The file it was read from.
    pub file: String,
    /// The version of echotool that measured.
    pub echotool_version: String,
    /// The machine that measured (the load generator).
    pub machine: Machine,
    /// Its clock.
    pub clock: Clock,
    /// From the first window's start to the last one's end, over all its rows.
    pub span: Option<Span>,
}

/// The run's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Parameters {
    /// Protocols asked for (ignored with a target).
    pub protocols: Vec<String>,
    /// Scenarios asked for.
    pub scenarios: Vec<String>,
    /// Set-up variants asked for (`--variant`); empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Runs per measurement.
    pub runs: usize,
    /// Open-loop rate, messages per second in total.
    pub rate: Option<f64>,
    /// The external targets, if any (none: embedded servers).
    pub targets: Vec<String>,
    /// `--start-at`: when the first warm-up was to start, seconds since the Unix epoch.
    pub start_at_unix: Option<f64>,
    /// Under `--start-at`, seconds from one measurement's start to the next one's.
    pub start_period_s: Option<f64>,
    /// Milliseconds an echo may take (`None`: 1000 for datagrams, 5000 for streams).
    pub echo_timeout_ms: Option<u128>,
    /// The external targets' names, each resolved once before measuring (IP literals and
    /// socket paths are not resolved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<Resolution>,
}

/// A target's name, resolved once before measuring: no dial of the run resolves it again,
/// so set-up times leave name resolution out, as curl's `time_connect` and wrk's do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Resolution {
    /// The name resolved.
    pub name: String,
    /// Its addresses, in resolver order.
    pub addresses: Vec<String>,
    /// How long resolving took, in microseconds.
    pub took_us: f64,
}

impl Resolution {
    /// `localhost → 127.0.0.1, ::1 (85 µs)`.
    fn describe(&self) -> String {
        format!(
            "{} → {} ({:.0} µs)",
            self.name,
            self.addresses.join(", "),
            self.took_us
        )
    }
}

impl Parameters {
    /// The parameters of a run of `opts`, against the external `targets` if there are any,
    /// measuring `protocols`.
    pub(crate) fn new(opts: &BenchOptions, targets: Vec<String>, protocols: Vec<String>) -> Self {
        Parameters {
            protocols,
            scenarios: opts
                .scenarios
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            variants: opts.variants.clone(),
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            runs: opts.runs,
            rate: opts.rate,
            targets,
            start_at_unix: opts.start_at.map(crate::clock::unix),
            start_period_s: opts.start_at.map(|_| opts.period().as_secs_f64()),
            echo_timeout_ms: opts.echo_timeout.map(|t| t.as_millis()),
            resolved: Vec::new(),
        }
    }
}

/// One protocol in one shape: every run, and the median run.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// The run was interrupted before every run of this row was done.
    pub interrupted: bool,
    /// Whether the transport carries datagrams (which can be lost, late or duplicated).
    pub datagram: bool,
    /// The emulated link's short label (`4g`, `rtt=20ms`), when measured over one.
    pub link: Option<String>,
    /// The emulated link's spec, canonical.
    pub link_spec: Option<String>,
    /// Under `--start-at`: how many seconds after its slot the latest of its runs started
    /// its window, when one started late (the measurement before it ran long).
    pub late_start_s: Option<f64>,
    /// Load generators (reports) whose runs were merged into this row: 1 for a run's own.
    pub agents: usize,
    /// Merged rows: the share of the union of the agents' windows in which all of them
    /// measured at once, in percent (100: they measured together), the least over the runs.
    pub overlap_pct: Option<f64>,
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
        // Saturating: an edited report's counts can be anything, and a sum is only shown.
        let sum = |f: fn(&Figures) -> u64| runs.iter().map(f).fold(0, u64::saturating_add);
        median.errors = sum(|r| r.errors);
        median.mismatches = sum(|r| r.mismatches);
        median.lost = sum(|r| r.lost);
        median.late = sum(|r| r.late);
        median.duplicated = sum(|r| r.duplicated);
        median.scheduled = sum(|r| r.scheduled);
        median.unsent = sum(|r| r.unsent);
        if median.first_mismatch.is_none() {
            median.first_mismatch = runs.iter().find_map(|r| r.first_mismatch.clone());
        }
        if median.first_error.is_none() {
            median.first_error = runs.iter().find_map(|r| r.first_error.clone());
        }
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
            interrupted: false,
            datagram: false,
            link: None,
            link_spec: None,
            late_start_s: None,
            agents: 1,
            overlap_pct: None,
        }
    }

    /// `PROTOCOL latency 64 B over 4g`: the row as findings name it.
    fn label(&self) -> String {
        let over = self
            .link
            .as_ref()
            .map(|l| format!(" over {l}"))
            .unwrap_or_default();
        format!(
            "{} {} {}{over}",
            self.protocol,
            self.scenario,
            bytes(self.size)
        )
    }

    /// Whether no run of this row measured anything.
    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(|f| f.messages == 0)
    }

    /// Open loop: the share of the scheduled messages that went out, when it fell short.
    fn rate_shortfall(&self) -> Option<f64> {
        let f = &self.median;
        (f.scheduled > 0 && f.unsent * 100 > f.scheduled)
            .then(|| 1.0 - f.unsent as f64 / f.scheduled as f64)
    }

    /// What merging (or `--start-at`) says about this row: it started late, its agents did
    /// not measure together, or not all of the `sources` agents measured it.
    fn merge_notes(&self, sources: usize) -> Vec<Finding> {
        let label = self.label();
        let mut notes = Vec::new();
        if let Some(late) = self.late_start_s {
            notes.push(Finding::note(format!(
                "{label}: a run started {late:.1} s after its --start-at slot (the measurement \
                 before ran long): other agents may have measured it earlier"
            )));
        }
        match self.overlap_pct {
            Some(pct) if pct <= 0.0 => notes.push(Finding::note(format!(
                "{label}: the {} agents' windows did not overlap at all: they measured one \
                 after the other, so the rate (over the union of their windows) is theirs in \
                 turn, not together; start them with one --start-at",
                self.agents
            ))),
            Some(pct) if pct < OVERLAP_WARNING => notes.push(Finding::note(format!(
                "{label}: the agents measured together for only {pct:.0}% of the union of \
                 their windows, so the rate understates what they did at once; start them \
                 with one --start-at"
            ))),
            _ => {}
        }
        if sources > 1 && self.agents < sources {
            notes.push(Finding::note(format!(
                "{label}: measured by {} of the {sources} agents",
                self.agents
            )));
        }
        notes
    }

    /// Short flags for the table's notes column.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(sent) = self.rate_shortfall() {
            notes.push(format!("rate not reached ({} sent)", percent(sent)));
        }
        if self.median.duplicated > 0 {
            notes.push(format!("{} duplicated", self.median.duplicated));
        }
        if !self.is_empty() && self.median.samples < FEW_SAMPLES {
            let n = self.median.samples;
            notes.push(format!("only {n} {}", plural(n, "sample", "samples")));
        }
        if self.interrupted {
            notes.push(format!("interrupted after {} runs", self.runs.len()));
        }
        notes
    }
}

/// One column of the table: its title, its alignment, and how a row fills it.
struct Column {
    title: &'static str,
    left: bool,
    cell: Box<dyn Fn(&Row) -> String>,
}

/// Merged rows whose agents measured together for less than this share of the time, in
/// percent, are flagged.
const OVERLAP_WARNING: f64 = 90.0;

/// Below this many latencies a row is flagged: p99 does not exist yet.
const FEW_SAMPLES: u64 = 100;

/// A verdict on a run beyond its figures: what they mean and what to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Whether it fails the run: altered echoes (corruption), or a row that measured nothing.
    pub fails: bool,
    /// The sentence.
    pub text: String,
}

impl Finding {
    fn note(text: String) -> Self {
        Finding { fails: false, text }
    }

    fn failure(text: String) -> Self {
        Finding { fails: true, text }
    }
}

/// An embedded server's counters.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Handshakes that failed, by any cause.
    pub failed_handshakes: u64,
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
            failed_handshakes: s.failed_handshakes_total(),
        }
    }
}

impl Report {
    /// Echoes that differed from what was sent, over every row.
    pub fn mismatches(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| r.median.mismatches)
            .fold(0, u64::saturating_add)
    }

    /// Every verdict of the run, row by row: altered echoes and empty rows fail it; loss,
    /// late echoes, a rate not reached, errors, thin samples and an interruption are told.
    pub fn judge(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Only datagrams are lost, so without --timeout their default applies.
        let datagram_timeout = match self.parameters.echo_timeout_ms {
            Some(ms) => duration::display(std::time::Duration::from_millis(ms as u64)),
            None => duration::display(echotool_core::client::DATAGRAM_ECHO_TIMEOUT),
        };
        for row in &self.rows {
            let (f, label) = (&row.median, row.label());
            if f.mismatches > 0 {
                let first = f.first_mismatch.as_deref().unwrap_or("no detail kept");
                findings.push(Finding::failure(format!(
                    "{label}: {} {} came back altered, bytes differing from what was sent: the \
                     server corrupted them (first: {first})",
                    f.mismatches,
                    plural(f.mismatches, "echo", "echoes")
                )));
            }
            if row.is_empty() {
                // No connection, no first echo: the set-up row above says why, once.
                let told =
                    row.scenario.starts_with("first-echo") && f.errors == 0 && f.mismatches == 0;
                if !told {
                    findings.push(Finding::failure(empty_row(row)));
                }
                continue;
            }
            if let Some(sent) = row.rate_shortfall() {
                findings.push(Finding::note(format!(
                    "{label}: --rate {} not reached: only {} of the scheduled messages went \
                     out ({}/s); the client or the server is saturated and the latencies \
                     include the backlog. Lower --rate or add --conns",
                    thousands(row.rate.unwrap_or_default()),
                    percent(sent),
                    thousands(f.sent_per_sec.unwrap_or_default())
                )));
            }
            if f.lost > 0 {
                findings.push(Finding::note(format!(
                    "{label}: {} {} got no echo within {} (lost){}",
                    f.lost,
                    plural(f.lost, "datagram", "datagrams"),
                    datagram_timeout,
                    match f.late {
                        0 => String::new(),
                        n => format!("; {n} of them came back later (late, not corrupted)"),
                    }
                )));
            }
            if f.errors > 0 {
                findings.push(Finding::note(format!(
                    "{label}: {} {} (failed connections, stalled echoes or I/O errors){}",
                    f.errors,
                    plural(f.errors, "error", "errors"),
                    first_error(f)
                )));
            }
            if f.samples < FEW_SAMPLES {
                findings.push(Finding::note(format!(
                    "{label}: only {} {} measured, too few for p99 and beyond; measure longer \
                     (--duration)",
                    f.samples,
                    plural(f.samples, "latency", "latencies")
                )));
            }
        }
        for row in &self.rows {
            findings.extend(row.merge_notes(self.sources.len()));
        }
        // Agents on one machine share its clock, synchronized or not.
        let hosts = self
            .sources
            .iter()
            .map(|s| s.machine.hostname.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        let several_hosts = hosts.len() > 1;
        for source in self
            .sources
            .iter()
            .filter(|s| several_hosts && !s.clock.synchronized)
        {
            findings.push(Finding::note(format!(
                "{} ({}): its clock was not synchronized, so its windows may be off the \
                 others' by an unknown amount and the overlaps are only as good as its clock; \
                 run NTP (chrony) on every agent",
                source.file, source.machine.hostname
            )));
        }
        if self.sources.is_empty() && self.parameters.start_at_unix.is_some() {
            findings.push(Finding::note(match self.clock.synchronized {
                true => format!(
                    "--start-at: this machine's {}, as good as the agents' windows line up",
                    self.clock.summary()
                ),
                false => "--start-at: this machine's clock is not synchronized (no NTP or PTP \
                          daemon): agents on other machines may not measure together with it; \
                          run chrony on every agent"
                    .into(),
            }));
        }
        for link in &self.links {
            findings.push(Finding::note(format!(
                "link {}: {} of {} packets dropped client to server and {} of {} server to \
                 client by the emulation; the forwarder's own lateness p50 {:.0} µs, p99 \
                 {:.0} µs, max {:.0} µs",
                link.label,
                link.up_dropped,
                link.up_packets,
                link.down_dropped,
                link.down_packets,
                link.lateness_p50_us,
                link.lateness_p99_us,
                link.lateness_max_us
            )));
        }
        if let Some(signal) = &self.interrupted {
            let abandoned = match &self.abandoned {
                Some(what) => format!("; {what} was abandoned"),
                None => String::new(),
            };
            findings.push(Finding::note(format!(
                "the run was interrupted ({signal}){abandoned}: the rows shown are those that \
                 finished"
            )));
        }
        findings
    }

    /// The JSON document: every figure, the parameters, the machine.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One CSV line per row (median run), with a header.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "protocol,scenario,conns,size,depth,rate,messages_per_sec,mb_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,errors,mismatches,lost,spread_pct,late,duplicated,scheduled,unsent,samples,interrupted,link,url,agents,overlap_pct\n",
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        for r in &self.rows {
            let f = &r.median;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{:.1},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\",\"{}\",{},{}",
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
                opt(r.spread_pct),
                f.late,
                f.duplicated,
                f.scheduled,
                f.unsent,
                f.samples,
                r.interrupted,
                r.link_spec.as_deref().unwrap_or_default(),
                r.url,
                r.agents,
                opt(r.overlap_pct)
            );
        }
        out
    }

    /// The side-by-side table people read.
    pub fn table(&self) -> String {
        let columns = self.columns();
        let mut cells: Vec<Vec<String>> =
            vec![columns.iter().map(|c| c.title.to_string()).collect()];
        for row in &self.rows {
            cells.push(columns.iter().map(|c| (c.cell)(row)).collect());
        }
        let widths: Vec<usize> = (0..columns.len())
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
                .zip(&columns)
                .zip(&widths)
                .map(|((cell, column), &w)| match column.left {
                    true => format!("{cell:<w$}"),
                    false => format!("{cell:>w$}"),
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// The table's columns: names and notes left, figures right; `spread` with several runs
    /// and `notes` when a row has any.
    fn columns(&self) -> Vec<Column> {
        let figure = |title, cell: fn(&Row) -> String| Column {
            title,
            left: false,
            cell: Box::new(cell),
        };
        // Only datagrams can be lost or late; a dash says "cannot happen" rather than 0.
        fn datagram_count(r: &Row, n: u64) -> String {
            match r.datagram || n > 0 {
                true => n.to_string(),
                false => "-".into(),
            }
        }
        let mut columns = vec![
            Column {
                title: "protocol",
                left: true,
                cell: Box::new(|r| r.protocol.clone()),
            },
            Column {
                title: "scenario",
                left: true,
                cell: Box::new(|r| r.scenario.clone()),
            },
        ];
        if self.rows.iter().any(|r| r.link.is_some()) {
            columns.push(Column {
                title: "link",
                left: true,
                cell: Box::new(|r| r.link.clone().unwrap_or_default()),
            });
        }
        if self.several_urls() {
            columns.push(Column {
                title: "target",
                left: true,
                cell: Box::new(|r| r.url.clone()),
            });
        }
        if !self.sources.is_empty() {
            columns.push(figure("agents", |r| r.agents.to_string()));
            columns.push(figure("overlap", |r| match r.overlap_pct {
                Some(pct) => format!("{pct:.0}%"),
                None => "-".into(),
            }));
        }
        columns.extend([
            figure("conns", |r| r.conns.to_string()),
            figure("size", |r| bytes(r.size)),
            figure("depth", |r| match r.rate {
                Some(_) => "open".into(),
                None => r.depth.to_string(),
            }),
            figure("msgs/s", |r| thousands(r.median.messages_per_sec)),
            // Set-up moves no payload worth a rate.
            figure("MB/s", |r| match r.scenario.starts_with("setup") {
                true => "-".into(),
                false => format!("{:.2}", r.median.mb_per_sec),
            }),
            figure("p50", |r| micros(r.median.rtt_us.p50)),
            figure("p90", |r| micros(r.median.rtt_us.p90)),
            figure("p99", |r| micros(r.median.rtt_us.p99)),
            figure("p99.9", |r| micros(r.median.rtt_us.p999)),
            figure("max", |r| micros(r.median.rtt_us.max)),
            figure("errors", |r| r.median.errors.to_string()),
            figure("mismatch", |r| r.median.mismatches.to_string()),
            figure("lost", |r| datagram_count(r, r.median.lost)),
            figure("late", |r| datagram_count(r, r.median.late)),
        ]);
        if self.parameters.runs > 1 {
            columns.push(figure("spread", |r| {
                r.spread_pct
                    .map(|s| format!("±{:.0}%", s / 2.0))
                    .unwrap_or_default()
            }));
        }
        if self.rows.iter().any(|r| !r.notes().is_empty()) {
            columns.push(Column {
                title: "notes",
                left: true,
                cell: Box::new(|r| r.notes().join(", ")),
            });
        }
        columns
    }

    /// Whether one protocol was measured at several servers (`--target` twice): the table
    /// then names each row's.
    fn several_urls(&self) -> bool {
        self.rows.iter().any(|a| {
            self.rows
                .iter()
                .any(|b| a.protocol == b.protocol && a.url != b.url)
        })
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
        let threads = |n: usize| format!("{n} {}", plural(n as u64, "thread", "threads"));
        let client = format!(
            "client: {} on {}",
            threads(t.client_threads),
            cpus(&t.client_cpus)
        );
        let where_ = match (
            self.parameters.targets.is_empty(),
            &self.parameters.resolved[..],
        ) {
            (false, []) => client,
            (false, resolved) => format!(
                "{client}; resolved once, before measuring: {}",
                resolved
                    .iter()
                    .map(Resolution::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            (true, _) => format!(
                "servers: {} on {}; {client}",
                threads(t.server_threads),
                cpus(&t.server_cpus)
            ),
        };
        if !self.sources.is_empty() {
            return self.merged_header();
        }
        let (runs, cpu_count) = (self.parameters.runs as u64, self.machine.cpus as u64);
        format!(
            "echotool {} bench: {} s per run after {} s warm-up, {runs} {}; {where_}; {} ({cpu_count} \
             {}), Linux {}",
            self.echotool_version,
            self.parameters.duration_s,
            self.parameters.warmup_s,
            plural(runs, "run", "runs"),
            self.machine.cpu_model,
            plural(cpu_count, "CPU", "CPUs"),
            self.machine.kernel
        )
    }
}

impl Report {
    /// The header of merged reports: how many agents, and each one's machine and clock.
    fn merged_header(&self) -> String {
        let runs = self.parameters.runs as u64;
        let mut out = format!(
            "echotool report: {} agents merged, histograms added; {} s per run after {} s \
             warm-up, {runs} {}",
            self.sources.len(),
            self.parameters.duration_s,
            self.parameters.warmup_s,
            plural(runs, "run", "runs"),
        );
        for s in &self.sources {
            let when = s
                .span
                .map(|span| {
                    format!(
                        ", measured {} to {}",
                        crate::clock::rfc3339(crate::clock::from_unix(span.start_unix)),
                        crate::clock::rfc3339(crate::clock::from_unix(span.end_unix))
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "\n  {}: {} ({} {}, echotool {}), {}{when}",
                s.file,
                s.machine.hostname,
                s.machine.cpus,
                plural(s.machine.cpus as u64, "CPU", "CPUs"),
                s.echotool_version,
                s.clock.summary()
            );
        }
        out
    }
}

/// Why a row measured nothing, in words.
fn empty_row(row: &Row) -> String {
    let f = &row.median;
    let what = format!("nothing was measured by {} in {}", row.url, row.label());
    if f.scheduled > 0 && f.unsent * 100 >= f.scheduled * 99 {
        return format!(
            "{what}: the client could not send at --rate {} (the schedule fell behind before \
             the window opened); lower --rate or add --conns",
            thousands(row.rate.unwrap_or_default())
        );
    }
    if f.lost > 0 {
        return format!(
            "{what}: all {} datagrams were lost; is an echo server listening there?",
            f.lost
        );
    }
    if f.mismatches > 0 {
        return format!("{what}: every echo came back altered");
    }
    let first = first_error(f);
    // Refusals already ask it.
    let ask = match first.contains("listening there") {
        true => "",
        false => "; is an echo server listening there?",
    };
    format!(
        "{what}: {} {}{first}{ask}",
        f.errors,
        plural(f.errors, "error", "errors"),
    )
}

/// `; the first: connection refused`, when an error was kept.
fn first_error(f: &Figures) -> String {
    match &f.first_error {
        Some(err) => format!("; the first: {err}"),
        None => String::new(),
    }
}

/// A share as a percentage with as many decimals as it needs to not read as 0 or 100.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    match p {
        p if !(1.0..=99.0).contains(&p) => format!("{p:.2}%"),
        p if !(10.0..=90.0).contains(&p) => format!("{p:.1}%"),
        p => format!("{p:.0}%"),
    }
}

/// `one` or `many`, by count.
pub(crate) fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `16 KiB`, `64 B`: sizes as the table and plot show them.
pub(crate) fn bytes(n: usize) -> String {
    echotool_core::size::display(n)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;
    use crate::tally::Tally;

    fn row(datagram: bool, tally: &Tally, rate: Option<f64>) -> Row {
        let shape = Shape {
            scenario: Scenario::Latency,
            conns: 1,
            size: 64,
            depth: 1,
            rate,
        };
        let figures = tally.figures(crate::tally::Span::lasting(std::time::Duration::from_secs(
            1,
        )));
        let mut row = Row::new("p", "latency", "p://x", &shape, vec![figures]);
        row.datagram = datagram;
        row
    }

    fn judge(rows: Vec<Row>) -> Vec<Finding> {
        let report = Report {
            schema: SCHEMA,
            echotool_version: "0".into(),
            machine: Machine::current(),
            clock: Clock::default(),
            threads: crate::cpus::plan(false, false),
            parameters: Parameters::new(&BenchOptions::default(), Vec::new(), Vec::new()),
            rows,
            servers: Vec::new(),
            links: Vec::new(),
            interrupted: None,
            abandoned: None,
            sources: Vec::new(),
            findings: Vec::new(),
        };
        report.judge()
    }

    #[test]
    fn four_verdicts_each_with_its_sentence() {
        let mut t = Tally::default();
        for _ in 0..200 {
            t.record(std::time::Duration::from_micros(50), 64);
        }
        t.lost = 3;
        t.late = 2;
        t.scheduled = 1000;
        t.unsent = 500;
        let found = judge(vec![row(true, &t, Some(1000.0))]);
        let texts: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
        assert!(found.iter().all(|f| !f.fails), "{texts:?}");
        assert!(
            texts
                .iter()
                .any(|t| t.contains("--rate 1 000 not reached: only 50%")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t
                .contains("3 datagrams got no echo within 1 s (lost); 2 of them came back later")),
            "{texts:?}"
        );

        t.mismatch(b"hello", b"HELLO");
        let found = judge(vec![row(true, &t, None)]);
        let altered = found.iter().find(|f| f.fails).expect("a failure");
        assert!(
            altered.text.contains("1 echo came back altered"),
            "{}",
            altered.text
        );
        assert!(altered.text.contains("letters' case"), "{}", altered.text);
    }

    #[test]
    fn the_table_aligns_names_left_and_figures_right_with_dashes_where_nothing_can_happen() {
        let mut t = Tally::default();
        for us in [40, 50, 60] {
            t.record(std::time::Duration::from_micros(us), 64);
        }
        let mut report = Report {
            schema: SCHEMA,
            echotool_version: "0".into(),
            machine: Machine::current(),
            clock: Clock::default(),
            threads: crate::cpus::plan(false, false),
            parameters: Parameters::new(&BenchOptions::default(), Vec::new(), Vec::new()),
            rows: vec![row(false, &t, None), row(true, &t, None)],
            servers: Vec::new(),
            links: Vec::new(),
            interrupted: None,
            abandoned: None,
            sources: Vec::new(),
            findings: Vec::new(),
        };
        report.rows[1].protocol = "datagrams".into();
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(header[..2], ["protocol", "scenario"]);
        assert_eq!(
            header.last(),
            Some(&"notes"),
            "thin rows bring the notes column"
        );
        assert!(lines[1].starts_with("p          latency"), "{table}");
        // Right-aligned: a figure ends where its title ends (counted in characters: µ).
        let chars: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
        let lost_end = lines[0].find("lost").unwrap() + "lost".len() - 1;
        assert_eq!(chars[1][lost_end], '-', "a stream loses nothing: {table}");
        assert_eq!(chars[2][lost_end], '0', "a datagram row counts: {table}");
        assert!(lines[1].contains("50.0 µs"), "{table}");
        assert!(lines[1].ends_with("only 3 samples"), "{table}");
    }

    #[test]
    fn an_empty_row_fails_and_thin_samples_are_noted() {
        let none = Tally {
            errors: 1,
            ..Tally::default()
        };
        let found = judge(vec![row(false, &none, None)]);
        assert!(
            found[0].fails
                && found[0]
                    .text
                    .contains("1 error; is an echo server listening"),
            "{found:?}"
        );
        let mut thin = Tally::default();
        thin.record(std::time::Duration::from_micros(5), 64);
        let r = row(false, &thin, None);
        assert_eq!(r.median.rtt_us.p50, None, "one sample has no median");
        assert_eq!(r.notes(), ["only 1 sample"]);
    }
}
