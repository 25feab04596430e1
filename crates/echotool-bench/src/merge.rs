//! `echotool report`: reads the JSON of bench runs, and merges the runs of several load
//! generators into one report, exactly.
//!
//! Percentiles cannot be averaged, so every row carries its whole latency histogram, and
//! merging adds the histograms: the merged p99 is the p99 of every latency any agent measured.
//! Counts add up; the rate is the total over the union of the agents' windows, and how much
//! of that union they measured at once (the overlap) is reported beside it.

use std::collections::HashMap;
use std::path::Path;

use crate::histogram;
use crate::report::{Report, Row, SCHEMA, Source};
use crate::tally::{Figures, Tally};
use crate::{BenchError, Shape, Span};

/// Reads the report `bench --json` wrote to `path`.
pub fn read(path: &Path) -> Result<Report, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        context: format!("cannot read {}", path.display()),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Reads a report from its JSON text; `name` (its file) names it in errors. Documents of
/// another schema are refused, not guessed at.
pub fn parse(text: &str, name: &str) -> Result<Report, BenchError> {
    let invalid = |why: String| BenchError::Invalid(format!("{name}: {why}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "not JSON ({e}); give the file `echotool bench --json FILE` wrote"
        ))
    })?;
    match value.get("schema").and_then(|s| s.as_u64()) {
        Some(n) if n == u64::from(SCHEMA) => {}
        Some(n) => {
            return Err(invalid(format!(
                "written in report schema {n}, and this echotool {} reads schema {SCHEMA}: \
                 render it with the echotool that wrote it (its echotool_version), or re-run \
                 the bench with this one",
                env!("CARGO_PKG_VERSION")
            )));
        }
        None if value.get("rows").is_some() => {
            return Err(invalid(
                "a bench report without a \"schema\": written by an echotool from before \
                 reports carried their histograms, so it cannot be merged; re-run the bench \
                 with this one"
                    .into(),
            ));
        }
        None => {
            return Err(invalid(
                "not an echotool bench report (no \"schema\", no \"rows\"); give the file \
                 `echotool bench --json FILE` wrote"
                    .into(),
            ));
        }
    }
    let report: Report = serde_json::from_value(value).map_err(|e| {
        invalid(format!(
            "a schema {SCHEMA} report with a field missing or of the wrong type ({e}): was \
             it edited?"
        ))
    })?;
    if let Some(row) = report.rows.iter().find(|row| row.runs.is_empty()) {
        return Err(invalid(format!(
            "its row {} {} has no runs, where every row a bench writes has at least one: was \
             it edited?",
            row.protocol, row.scenario
        )));
    }
    Ok(report)
}

/// Merges the reports of several load generators (named by their files) into one: rows of
/// the same protocol, scenario, size, link and target are merged run by run. One report is
/// returned as it is, its findings judged again.
pub fn merge(mut reports: Vec<(String, Report)>) -> Result<Report, BenchError> {
    if reports.len() == 1 {
        let (_, mut report) = reports.remove(0);
        check_histograms(&report)?;
        report.findings = report.judge();
        return Ok(report);
    }
    let Some((_, first)) = reports.first() else {
        return Err(BenchError::Invalid("no report to merge".into()));
    };
    let mut merged = first.clone();
    merged.rows = merge_rows(&reports)?;
    merged.echotool_version = joined(reports.iter().map(|(_, r)| r.echotool_version.clone()));
    merged.parameters.targets = unique(
        reports
            .iter()
            .flat_map(|(_, r)| r.parameters.targets.clone()),
    );
    merged.parameters.runs = reports
        .iter()
        .map(|(_, r)| r.parameters.runs)
        .max()
        .unwrap_or(1);
    merged.servers = reports
        .iter()
        .flat_map(|(_, r)| r.servers.clone())
        .collect();
    merged.links = reports.iter().flat_map(|(_, r)| r.links.clone()).collect();
    merged.interrupted = reports.iter().find_map(|(_, r)| r.interrupted.clone());
    let abandoned: Vec<String> = reports
        .iter()
        .filter_map(|(_, r)| r.abandoned.clone())
        .collect();
    merged.abandoned = (!abandoned.is_empty()).then(|| abandoned.join("; "));
    merged.sources = reports
        .iter()
        .map(|(file, r)| Source {
            file: file.clone(),
            echotool_version: r.echotool_version.clone(),
            machine: r.machine.clone(),
            clock: r.clock.clone(),
            span: union(
                r.rows
                    .iter()
                    .flat_map(|row| row.runs.iter().map(|f| f.span)),
            ),
        })
        .collect();
    merged.findings = merged.judge();
    Ok(merged)
}

/// What makes rows the same measurement: protocol, scenario, size, link, and the target
/// (embedded servers count as one, wherever they listened), plus how many rows with all of
/// that came before it in its report (the same target given twice).
type Key = (String, String, usize, Option<String>, String, usize);

fn merge_rows(reports: &[(String, Report)]) -> Result<Vec<Row>, BenchError> {
    let mut order: Vec<Key> = Vec::new();
    let mut groups: HashMap<Key, Vec<(&str, &Row)>> = HashMap::new();
    for (file, report) in reports {
        let mut seen: HashMap<Key, usize> = HashMap::new();
        for row in &report.rows {
            let target = match report.parameters.targets.is_empty() {
                true => String::new(),
                false => row.url.clone(),
            };
            let mut key: Key = (
                row.protocol.clone(),
                row.scenario.clone(),
                row.size,
                row.link_spec.clone(),
                target,
                0,
            );
            let n = seen.entry(key.clone()).or_default();
            key.5 = *n;
            *n += 1;
            let group = groups.entry(key.clone()).or_default();
            if group.is_empty() {
                order.push(key);
            }
            group.push((file, row));
        }
    }
    order.iter().map(|key| merge_row(&groups[key])).collect()
}

/// One row from every report that has it: run `i` of the merged row is run `i` of each.
fn merge_row(parts: &[(&str, &Row)]) -> Result<Row, BenchError> {
    let (first_file, first) = parts[0];
    for &(file, row) in &parts[1..] {
        if (row.conns, row.depth, row.rate) != (first.conns, first.depth, first.rate) {
            return Err(BenchError::Invalid(format!(
                "{} {} {}: {first_file} measured {} and {file} {}: rows of different shapes \
                 cannot be merged; run every agent with the same --conns, --depth and --rate",
                first.protocol,
                first.scenario,
                crate::report::bytes(first.size),
                shape(first),
                shape(row)
            )));
        }
    }
    let runs = parts.iter().map(|(_, r)| r.runs.len()).max().unwrap_or(0);
    let mut merged_runs = Vec::with_capacity(runs);
    let mut overlap: Option<f64> = None;
    for i in 0..runs {
        let mut tally = Tally::default();
        let mut spans = Vec::new();
        for &(file, row) in parts {
            let Some(figures) = row.runs.get(i) else {
                continue;
            };
            let what = format!("{file}: {} {} run {}", row.protocol, row.scenario, i + 1);
            tally.merge_exactly(&tally_of(figures, &what)?, &what)?;
            spans.push(figures.span);
        }
        let union = union(spans.iter().copied()).unwrap_or_default();
        if spans.len() > 1 {
            let pct = shared(&spans) / union.duration().as_secs_f64().max(1e-9) * 100.0;
            overlap = Some(overlap.map_or(pct, |o: f64| o.min(pct)));
        }
        merged_runs.push(tally.figures(union));
    }
    // Row::new reads the counts and sizes of the shape; the scenario is the row's own name.
    let shape = Shape {
        scenario: crate::Scenario::Latency,
        conns: first.conns,
        size: first.size,
        depth: first.depth,
        rate: first.rate,
    };
    let url = joined(parts.iter().map(|(_, r)| r.url.clone()));
    let mut row = Row::new(&first.protocol, &first.scenario, &url, &shape, merged_runs);
    row.interrupted = parts.iter().any(|(_, r)| r.interrupted);
    row.datagram = first.datagram;
    row.link = first.link.clone();
    row.link_spec = first.link_spec.clone();
    row.late_start_s = parts
        .iter()
        .filter_map(|(_, r)| r.late_start_s)
        .reduce(f64::max);
    row.agents = parts.iter().map(|(_, r)| r.agents).sum();
    row.overlap_pct = overlap;
    Ok(row)
}

/// A row's counts and histogram back as a tally, checked against each other.
fn tally_of(f: &Figures, what: &str) -> Result<Tally, BenchError> {
    let latency = histogram::decode(&f.histogram, what)?;
    if latency.len() != f.samples {
        return Err(BenchError::Invalid(format!(
            "{what}: the histogram holds {} latencies but \"samples\" says {}: the file was \
             edited or damaged",
            latency.len(),
            f.samples
        )));
    }
    Ok(Tally {
        latency,
        messages: f.messages,
        bytes: f.bytes,
        errors: f.errors,
        mismatches: f.mismatches,
        lost: f.lost,
        late: f.late,
        duplicated: f.duplicated,
        scheduled: f.scheduled,
        unsent: f.unsent,
        resumed: f.resumed,
        first_mismatch: f.first_mismatch.clone(),
        first_error: f.first_error.clone(),
    })
}

/// Every histogram of a report decodes and agrees with its counts.
fn check_histograms(report: &Report) -> Result<(), BenchError> {
    for row in &report.rows {
        for (i, f) in row.runs.iter().enumerate() {
            tally_of(
                f,
                &format!("{} {} run {}", row.protocol, row.scenario, i + 1),
            )?;
        }
    }
    Ok(())
}

/// `4 connections at depth 2` (and the rate).
fn shape(row: &Row) -> String {
    let conns = format!(
        "{} {}",
        row.conns,
        crate::report::plural(row.conns as u64, "connection", "connections")
    );
    match row.rate {
        Some(rate) => format!("{conns} at --rate {rate}"),
        None => format!("{conns} at depth {}", row.depth),
    }
}

/// From the earliest start to the latest end.
fn union(spans: impl Iterator<Item = Span>) -> Option<Span> {
    spans.reduce(|a, b| Span {
        start_unix: a.start_unix.min(b.start_unix),
        end_unix: a.end_unix.max(b.end_unix),
    })
}

/// Seconds in which every span was open at once.
fn shared(spans: &[Span]) -> f64 {
    let start = spans.iter().map(|s| s.start_unix).fold(f64::MIN, f64::max);
    let end = spans.iter().map(|s| s.end_unix).fold(f64::MAX, f64::min);
    (end - start).max(0.0)
}

/// The distinct values, in order of first appearance.
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The distinct values, comma separated.
fn joined(values: impl Iterator<Item = String>) -> String {
    unique(values).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn span(start: f64, end: f64) -> Span {
        Span {
            start_unix: start,
            end_unix: end,
        }
    }

    #[test]
    fn overlap_is_the_time_all_measured_at_once() {
        let spans = [span(10.0, 20.0), span(15.0, 25.0)];
        assert_eq!(shared(&spans), 5.0);
        assert_eq!(union(spans.iter().copied()), Some(span(10.0, 25.0)));
        assert_eq!(shared(&[span(0.0, 1.0), span(2.0, 3.0)]), 0.0);
    }

    #[test]
    fn a_tally_comes_back_from_its_figures_and_a_damaged_one_is_refused() {
        let mut t = Tally::default();
        for us in [10, 20, 30_000] {
            t.record(Duration::from_micros(us), 64);
        }
        t.error(&"reset");
        let f = t.figures(Span::lasting(Duration::from_secs(1)));
        let back = tally_of(&f, "x").unwrap();
        assert_eq!(back.latency, t.latency);
        assert_eq!((back.messages, back.bytes, back.errors), (3, 192, 1));
        let damaged = Figures { samples: 4, ..f };
        let err = tally_of(&damaged, "a.json: tcp latency run 1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds 3 latencies but \"samples\" says 4"),
            "{err}"
        );
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            schema: SCHEMA,
            echotool_version: "0".into(),
            machine: crate::Machine::current(),
            clock: crate::Clock::default(),
            threads: crate::cpus::plan(false, false),
            parameters: crate::report::Parameters::new(
                &crate::BenchOptions::default(),
                vec!["tcp://h:7".into()],
                Vec::new(),
            ),
            rows,
            servers: Vec::new(),
            links: Vec::new(),
            interrupted: None,
            abandoned: None,
            sources: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn row(conns: usize, latencies_us: &[u64], window: Span) -> Row {
        let mut t = Tally::default();
        for &us in latencies_us {
            t.record(Duration::from_micros(us), 64);
        }
        let shape = Shape {
            scenario: crate::Scenario::Latency,
            conns,
            size: 64,
            depth: 1,
            rate: None,
        };
        Row::new(
            "tcp",
            "latency",
            "tcp://h:7",
            &shape,
            vec![t.figures(window)],
        )
    }

    #[test]
    fn rows_merge_exactly_over_the_union_of_their_windows() {
        let a = report(vec![row(1, &[10, 20, 30], span(100.0, 110.0))]);
        let b = report(vec![row(1, &[40, 5000], span(105.0, 115.0))]);
        let merged = merge(vec![("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        let r = &merged.rows[0];
        assert_eq!((r.agents, r.median.messages, r.median.samples), (2, 5, 5));
        assert_eq!(r.median.span, span(100.0, 115.0));
        assert!((r.median.messages_per_sec - 5.0 / 15.0).abs() < 1e-12);
        assert!((r.overlap_pct.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        // Three significant digits: the largest is 5 ms within 0.1 %.
        assert!((r.median.rtt_us.max.unwrap() - 5000.0).abs() <= 5.0);
        let h = histogram::decode(&r.median.histogram, "merged").unwrap();
        assert_eq!((h.len(), h.min() / 1000, h.max() / 1000), (5, 10, 5001));
        assert_eq!(merged.sources.len(), 2);
        let texts: Vec<&str> = merged.findings.iter().map(|f| f.text.as_str()).collect();
        assert!(
            texts.iter().any(|t| t.contains("together for only 33%")),
            "{texts:?}"
        );
    }

    #[test]
    fn rows_of_different_shapes_are_refused() {
        let a = report(vec![row(1, &[10], span(0.0, 1.0))]);
        let b = report(vec![row(4, &[10], span(0.0, 1.0))]);
        let err = merge(vec![("a.json".into(), a), ("b.json".into(), b)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.json measured 1 connection at depth 1 and b.json 4 connections"),
            "{err}"
        );
    }

    #[test]
    fn other_schemas_and_other_documents_are_refused_by_name() {
        let err = |text: &str| parse(text, "old.json").unwrap_err().to_string();
        assert!(
            err(r#"{"schema": 2, "rows": []}"#).contains("old.json: written in report schema 2")
        );
        assert!(err(r#"{"rows": []}"#).contains("without a \"schema\""));
        assert!(err(r#"{"hello": 1}"#).contains("not an echotool bench report"));
        assert!(err("nope").contains("not JSON"));
        assert!(err(r#"{"schema": 1, "rows": []}"#).contains("field missing"));
    }

    /// Found while writing the report fuzz target, and run through it (byte mutations seldom
    /// delete a whole run object and keep the JSON valid): a row with `"runs": []` merged
    /// with itself made a row of no runs, and taking its median indexed an empty list.
    #[test]
    fn a_row_without_runs_is_refused() {
        let mut damaged = report(vec![row(1, &[10], span(0.0, 1.0))]);
        damaged.rows[0].runs.clear();
        let err = parse(&damaged.json(), "a.json").unwrap_err().to_string();
        assert!(
            err.contains("a.json: its row tcp latency has no runs"),
            "{err}"
        );
    }

    /// Found the same way (`"messages": 18446744073709551615`): merging added counts with
    /// `+`, which overflowed (a panic with debug assertions, a wrong total without); and a
    /// report's own errors and mismatches were added to judge it.
    #[test]
    fn counts_too_large_to_add_are_refused_and_judged_without_overflow() {
        let mut huge = report(vec![row(1, &[10], span(0.0, 1.0))]);
        huge.rows[0].runs[0].messages = u64::MAX;
        huge.rows[0].median.errors = u64::MAX;
        huge.rows[0].median.mismatches = u64::MAX;
        let alone = merge(vec![("a.json".into(), huge.clone())]).unwrap();
        assert_eq!(alone.mismatches(), u64::MAX);
        let err = merge(vec![
            ("a.json".into(), huge.clone()),
            ("b.json".into(), huge),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("b.json: tcp latency run 1: its counts are too large to add"),
            "{err}"
        );
    }
}
