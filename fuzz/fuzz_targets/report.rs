//! The bench JSON that `echotool report` reads: parsed, merged alone (shown again) and with
//! itself (two agents that measured the same), then rendered as table, CSV and JSON. Merging
//! decodes every row's base64 HdrHistogram, so a damaged histogram must be an error, not a
//! panic or a huge allocation (libFuzzer's -rss_limit_mb and -malloc_limit_mb catch those).
//!
//! Beyond "no panic": a report that merges alone merges with itself too, into the same rows
//! and runs with every count exactly doubled (unless doubling overflows, or a histogram holds
//! latencies a merged one cannot, which must be refused with an error).

#![no_main]

use echotool_bench::{Figures, Report, merge, parse};
use libfuzzer_sys::fuzz_target;

/// Every count of a run, in one order.
fn counts(f: &Figures) -> [u64; 11] {
    [
        f.messages,
        f.bytes,
        f.samples,
        f.errors,
        f.mismatches,
        f.lost,
        f.late,
        f.duplicated,
        f.scheduled,
        f.unsent,
        f.resumed,
    ]
}

fn render(report: &Report) {
    let _ = report.table();
    let _ = report.csv();
    let _ = report.json();
}

fn assert_doubled(merged: &Report, original: &Report) {
    assert_eq!(merged.rows.len(), original.rows.len());
    for (m, o) in merged.rows.iter().zip(&original.rows) {
        assert_eq!(m.runs.len(), o.runs.len(), "{} {}", o.protocol, o.scenario);
        for (mf, of) in m.runs.iter().zip(&o.runs) {
            let twice = counts(of).map(|n| n * 2);
            assert_eq!(counts(mf), twice, "{} {}", o.protocol, o.scenario);
        }
    }
}

fuzz_target!(|text: &str| {
    let Ok(report) = parse(text, "a.json") else {
        return;
    };
    let Ok(alone) = merge(vec![("a.json".into(), report.clone())]) else {
        return;
    };
    render(&alone);
    let pair = merge(vec![
        ("a.json".into(), report.clone()),
        ("b.json".into(), report.clone()),
    ]);
    let huge = report
        .rows
        .iter()
        .flat_map(|r| &r.runs)
        .any(|f| counts(f).iter().any(|&n| n > u64::MAX / 2));
    match pair {
        Ok(merged) => {
            assert!(!huge, "counts beyond u64::MAX / 2 doubled without an error");
            assert_doubled(&merged, &report);
            render(&merged);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                huge || text.contains("cannot be added"),
                "merges alone but not with itself: {text}"
            );
        }
    }
});
