//! Beyond one machine, on one: every protocol of one `echotool serve` in one bench table,
//! several load generators started together with `--start-at` and merged exactly by
//! `echotool report`, checked with an HdrHistogram implementation that is not ours (Python's).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// A fresh directory for one test's files, removed at its end.
fn scratch(test: &str) -> TempDir {
    TempDir::new(&format!("agents-{test}"))
}

/// `echotool serve` with TCP, UDP, TLS and QUIC listeners on loopback (port 0), with a
/// certificate from `echotool certs`; returns it and the CA to trust.
fn every_protocol(dir: &Path) -> (Server, PathBuf) {
    let certs = dir.join("certs");
    let mut cmd = echotool();
    cmd.args(["-q", "certs", "--out"]).arg(&certs);
    let made = run(cmd, b"");
    assert!(made.status.success(), "{}", made.stderr);
    let config = dir.join("serve.toml");
    let secure = "cert = \"certs/server.pem\"\nkey = \"certs/server-key.pem\"";
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nlisten = \"tcp://127.0.0.1:0\"\n\
             [[listener]]\nlisten = \"udp://127.0.0.1:0\"\n\
             [[listener]]\nlisten = \"tls://127.0.0.1:0\"\n{secure}\n\
             [[listener]]\nlisten = \"quic://127.0.0.1:0\"\n{secure}\n"
        ),
    )
    .unwrap();
    let server = Server::start_n(&["--config", config.to_str().unwrap()], 4);
    (server, certs.join("ca.pem"))
}

fn bench(args: &[&str]) -> Outcome {
    let mut cmd = echotool();
    cmd.arg("bench").args(args);
    run(cmd, b"")
}

fn report(args: &[&str]) -> Outcome {
    let mut cmd = echotool();
    cmd.arg("report").args(args);
    run(cmd, b"")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Every object key in `value`, however deep.
fn field_names(value: &serde_json::Value, names: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                names.push(key.clone());
                field_names(inner, names);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| field_names(v, names)),
        _ => {}
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Runs Python (with the `hdrhistogram` package scripts/test.sh installs) on `script` with
/// `args`, and returns what it printed; the script fails the test by raising.
fn python_check(script: &str, args: &[&Path]) -> String {
    let mut cmd = python();
    cmd.arg("-c").arg(script).args(args);
    let out = run(cmd, b"");
    assert!(
        out.status.success(),
        "the Python check failed (scripts/test.sh installs hdrhistogram into the test \
         Python):\n{}",
        out.stderr
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn several_targets_make_one_table_and_the_tls_flags_serve_tls_and_quic_alike() {
    let dir = scratch("targets");
    let (server, ca) = every_protocol(&dir);
    let [tcp, udp, tls, quic] = [0, 1, 2, 3].map(|i| server.urls[i].clone());
    // A comma-separated list and a repeated flag, mixed; TCP twice, at the same server.
    let first = format!("{tcp},{udp}");
    let out = bench(&[
        "--target",
        &first,
        "--target",
        &tls,
        "--target",
        &format!("{quic},{tcp}"),
        "--ca",
        ca.to_str().unwrap(),
        "--scenario",
        "latency",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    let protocols: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(protocols, ["tcp", "udp", "tls", "quic", "tcp"], "{table}");
    assert!(
        !table.lines().nth(1).unwrap().contains("target"),
        "one server per protocol needs no target column: {table}"
    );

    // The same protocol at two servers: the table names each row's.
    let other = Server::start(&["--proto", "tcp", "--listen", "127.0.0.1:0"]);
    let out = bench(&[
        "--target",
        &format!("{tcp},{}", other.url()),
        "--scenario",
        "latency",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--json",
        dir.join("two.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().nth(1).unwrap().contains("target"), "{table}");
    assert!(
        table.contains(&tcp) && table.contains(other.url()),
        "{table}"
    );
    let written = json(&dir.join("two.json"));
    assert_eq!(
        written["parameters"]["targets"].as_array().unwrap().len(),
        2
    );

    // The TLS flags need a secure target among them, and say so otherwise.
    bench(&[
        "--target",
        &format!("{tcp},{udp}"),
        "--ca",
        ca.to_str().unwrap(),
    ])
    .assert_error(2, &["--ca does nothing for", "TLS and QUIC targets"]);
    // A target that cannot be measured stops the run before it starts, with its reason.
    let port = free_tcp_port();
    bench(&[
        "--target",
        &format!("{tcp},tcp://127.0.0.1:{port}"),
        "--duration",
        "300ms",
    ])
    .assert_error(1, &["connection refused"]);
}

#[test]
fn every_row_carries_its_histogram_which_another_implementation_decodes() {
    let dir = scratch("histogram");
    let (server, ca) = every_protocol(&dir);
    let file = dir.join("run.json");
    let targets = server.urls.join(",");
    let out = bench(&[
        "--target",
        &targets,
        "--ca",
        ca.to_str().unwrap(),
        "--scenario",
        "latency,setup",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--json",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let doc = json(&file);
    assert_eq!(doc["schema"], 1);
    assert!(
        doc["clock"]["source"].as_str().is_some(),
        "{}",
        doc["clock"]
    );
    for row in doc["rows"].as_array().unwrap() {
        let f = &row["runs"][0];
        let span = &f["span"];
        let length = span["end_unix"].as_f64().unwrap() - span["start_unix"].as_f64().unwrap();
        assert!(
            (length - 0.3).abs() < 1e-6,
            "the window, by the wall clock: {span}"
        );
        assert!(f["bytes"].as_u64().is_some() && f["messages"].as_u64().unwrap() > 0);
    }
    // Python's HdrHistogram reads every histogram back: the same count, the same largest,
    // the same median as the row says (within the histogram's three digits).
    let printed = python_check(
        r#"
import json, sys
from hdrh.histogram import HdrHistogram
doc = json.load(open(sys.argv[1]))
for row in doc["rows"]:
    for f in row["runs"]:
        h = HdrHistogram.decode(f["histogram"])
        assert h.get_total_count() == f["samples"] == f["messages"], (row["protocol"], row["scenario"])
        mx = h.get_max_value() / 1000
        assert abs(mx - f["rtt_us"]["max"]) <= f["rtt_us"]["max"] * 0.001 + 0.002, (mx, f["rtt_us"])
        p50 = h.get_value_at_percentile(50) / 1000
        assert abs(p50 - f["rtt_us"]["p50"]) <= f["rtt_us"]["p50"] * 0.002 + 0.002, (p50, f["rtt_us"])
print(len(doc["rows"]), "rows decoded")
"#,
        &[&file],
    );
    assert!(printed.contains("rows decoded"), "{printed}");

    // Given one file, report shows that run again: the same rows, the same figures.
    let again = dir.join("again.json");
    let out = report(&[file.to_str().unwrap(), "--json", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(json(&again)["rows"], doc["rows"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("echotool 0") && table.contains("quic"),
        "{table}"
    );
}

#[test]
fn agents_started_together_merge_exactly() {
    let dir = scratch("merge");
    let (server, ca) = every_protocol(&dir);
    let targets = format!("{},{}", server.urls[0], server.urls[3]);
    let start_at = format!("{:.3}", unix_now() + 4.0);
    let files: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("agent-{i}.json")))
        .collect();
    let agents: Vec<Running> = files
        .iter()
        .map(|file| {
            let mut cmd = echotool();
            cmd.args(["bench", "--target", &targets, "--ca", ca.to_str().unwrap()])
                .args(["--scenario", "latency,throughput", "--duration", "1s"])
                .args(["--warmup", "200ms", "--start-at", &start_at, "--json"])
                .arg(file);
            Running::spawn(cmd)
        })
        .collect();
    for agent in agents {
        let (status, lines) = agent.wait();
        assert!(status.success(), "{lines:#?}");
    }
    // Every agent waited for the time it was given: its first window opened a warm-up later.
    let start: f64 = start_at.parse().unwrap();
    for file in &files {
        let first = &json(file)["rows"][0]["runs"][0]["span"]["start_unix"];
        let opened = first.as_f64().unwrap();
        assert!(
            (start + 0.2..start + 0.5).contains(&opened),
            "{file:?}: the window opened at {opened}, --start-at {start}"
        );
    }

    let merged = dir.join("merged.json");
    let (csv, plot) = (dir.join("merged.csv"), dir.join("merged.svg"));
    let mut args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.extend(["--json", merged.to_str().unwrap()]);
    args.extend([
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let out = report(&args);
    assert!(out.status.success(), "{}", out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("echotool report: 3 agents merged"),
        "{table}"
    );
    assert!(
        table.contains("agents") && table.contains("overlap"),
        "{table}"
    );
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() == 5);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    let doc = json(&merged);
    assert_eq!(doc["sources"].as_array().unwrap().len(), 3);
    for row in doc["rows"].as_array().unwrap() {
        assert_eq!(row["agents"], 3, "{}", row["protocol"]);
        let overlap = row["overlap_pct"].as_f64().unwrap();
        assert!(
            overlap > 90.0,
            "started together, measured together: {overlap}"
        );
    }

    // Every field the document has is described in the schema's page.
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/report-schema.md"),
    )
    .unwrap();
    let mut keys = Vec::new();
    field_names(&doc, &mut keys);
    for key in keys {
        assert!(
            page.contains(&format!("`{key}`")),
            "docs/report-schema.md does not describe `{key}`"
        );
    }

    // The merged histogram is the sum of the parts, exactly: decoded and added by Python's
    // HdrHistogram, compared in count, min, max and every percentile; counts add up, and the
    // rate is the total over the union of the windows.
    let mut paths: Vec<&Path> = vec![&merged];
    paths.extend(files.iter().map(|f| f.as_path()));
    let printed = python_check(
        r#"
import json, sys
from hdrh.histogram import HdrHistogram
merged = json.load(open(sys.argv[1]))
parts = [json.load(open(p)) for p in sys.argv[2:]]
points = [p / 10 for p in range(0, 1000)] + [99.9, 99.99, 99.999, 100.0]
for i, row in enumerate(merged["rows"]):
    f = row["runs"][0]
    ours = HdrHistogram.decode(f["histogram"])
    total = None
    for part in parts:
        h = HdrHistogram.decode(part["rows"][i]["runs"][0]["histogram"])
        if total is None:
            total = h
        else:
            total.add(h)
    name = (row["protocol"], row["scenario"])
    assert ours.get_total_count() == total.get_total_count() == f["samples"], name
    assert ours.get_min_value() == total.get_min_value(), name
    assert ours.get_max_value() == total.get_max_value(), name
    for q in points:
        assert ours.get_value_at_percentile(q) == total.get_value_at_percentile(q), (name, q)
    for key in ["messages", "bytes", "errors", "mismatches", "lost"]:
        assert f[key] == sum(p["rows"][i]["runs"][0][key] for p in parts), (name, key)
    spans = [p["rows"][i]["runs"][0]["span"] for p in parts]
    start = min(s["start_unix"] for s in spans)
    end = max(s["end_unix"] for s in spans)
    assert abs(f["messages_per_sec"] - f["messages"] / (end - start)) < 1e-6 * f["messages_per_sec"], name
print(len(merged["rows"]), "rows merged exactly")
"#,
        &paths,
    );
    assert!(printed.contains("4 rows merged exactly"), "{printed}");
}

#[test]
fn report_refuses_what_it_cannot_merge_and_start_at_what_it_cannot_keep() {
    let dir = scratch("refuse");
    let server = Server::start(&["--proto", "tcp", "--listen", "127.0.0.1:0"]);
    let run_with = |conns: &str, file: &Path| {
        let out = bench(&[
            "--target",
            server.url(),
            "--scenario",
            "latency",
            "--conns",
            conns,
            "--duration",
            "200ms",
            "--warmup",
            "50ms",
            "--json",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", out.stderr);
    };
    let (one, two) = (dir.join("one.json"), dir.join("two.json"));
    run_with("1", &one);
    run_with("2", &two);
    report(&[one.to_str().unwrap(), two.to_str().unwrap()]).assert_error(
        2,
        &[
            "tcp latency 64 B",
            "measured 1 connection at depth 1",
            "2 connections at depth 1",
            "rows of different shapes cannot be merged",
        ],
    );

    let mut future = json(&one);
    future["schema"] = 2.into();
    let later = dir.join("later.json");
    std::fs::write(&later, future.to_string()).unwrap();
    report(&[one.to_str().unwrap(), later.to_str().unwrap()]).assert_error(
        2,
        &["later.json: written in report schema 2", "reads schema 1"],
    );
    report(&[dir.join("absent.json").to_str().unwrap()]).assert_error(1, &["absent.json"]);
    let none = report(&[]);
    assert_eq!(none.code(), 2, "{}", none.stderr);
    assert!(none.stderr.contains("<FILE>"), "{}", none.stderr);

    // A time already past, or absurdly far ahead, is refused before anything runs.
    let past = format!("{}", unix_now() as u64 - 60);
    bench(&["--target", server.url(), "--start-at", &past])
        .assert_error(2, &["--start-at", "ago", "far enough ahead"]);
    bench(&["--start-at", "2999-01-01T00:00:00Z"]).assert_error(2, &["more than a day ahead"]);
    bench(&["--start-at", "noon"]).assert_error(2, &["'noon' is not a time", "RFC 3339"]);

    // Ctrl-C while waiting for the time ends the wait at once.
    let later = format!("{}", unix_now() as u64 + 3600);
    let mut cmd = echotool();
    cmd.args(["bench", "--target", server.url(), "--start-at", &later]);
    let mut agent = Running::spawn(cmd);
    agent.wait_for_line("waiting until");
    let asked = std::time::Instant::now();
    agent.signal(2);
    let (status, lines) = agent.wait();
    assert_eq!(status.code(), Some(130), "{lines:#?}");
    assert!(asked.elapsed() < Duration::from_secs(5), "{lines:#?}");
}
