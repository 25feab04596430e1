//! The Kubernetes deployment in deploy/kubernetes, checked without a cluster or the internet:
//! every manifest against the Kubernetes API schemas (`kubernetes-validate --strict`, which
//! carries them), then what a schema cannot see: that the Service, the container, the config
//! file and the bench targets agree on ports and protocols, that the probes ask `/healthz` on
//! the metrics port, that pods run unprivileged and stop within their grace period, that the
//! bench Job is Indexed, that the ConfigMap's config passes `echotool config check`, and that
//! run-bench.sh renders, waits, collects and merges as it says (against a stand-in kubectl).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use common::*;

/// deploy/kubernetes, where every manifest lives.
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");

/// The image recipe, whose USER the pods' runAsUser must match.
const CONTAINERFILE: &str = include_str!("../../../Containerfile");

/// The oldest Kubernetes the manifests are for (preStop's `sleep` is on by default from 1.30)
/// and the newest that the pinned kubernetes-validate carries schemas for.
const VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// Turns YAML documents on stdin into one JSON array (PyYAML comes with kubernetes-validate).
const YAML_TO_JSON: &str = "import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)";

/// Turns a TOML document on stdin into JSON (tomllib: Python 3.11 and later).
const TOML_TO_JSON: &str = "import json, sys, tomllib
json.dump(tomllib.loads(sys.stdin.read()), sys.stdout)";

/// A file in deploy/kubernetes.
fn deploy_file(name: &str) -> PathBuf {
    Path::new(DEPLOY).join(name)
}

/// Every manifest: the YAML files of deploy/kubernetes but kustomize's own file.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DEPLOY)
        .expect("deploy/kubernetes")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter(|path| path.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {DEPLOY}");
    files
}

/// Runs a Python snippet of the test-peers environment on `input` and parses its JSON output.
fn python_json(script: &str, input: &[u8]) -> Value {
    let mut cmd = python();
    cmd.args(["-c", script]);
    let out = run(cmd, input);
    assert!(
        out.status.success(),
        "python could not convert the input (PyYAML comes with kubernetes-validate: run the \
         test suite with scripts/test.sh, which installs it): {}",
        out.stderr
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

/// The documents of a YAML text.
fn yaml_docs(text: &str) -> Vec<Value> {
    match python_json(YAML_TO_JSON, text.as_bytes()) {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// Every resource of every manifest, read once.
fn resources() -> &'static [Value] {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        manifest_files()
            .iter()
            .flat_map(|path| yaml_docs(&std::fs::read_to_string(path).expect("manifest")))
            .collect()
    })
}

/// The one resource of this kind and name.
fn resource(kind: &str, name: &str) -> &'static Value {
    let found: Vec<&Value> = resources()
        .iter()
        .filter(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} named {name} in {DEPLOY}");
    found[0]
}

/// The string at `pointer`, or a failure that names what is missing.
fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

/// The elements of the array at `pointer` (none when absent).
fn list<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The server's pod template.
fn server_pod() -> &'static Value {
    &resource("Deployment", "echotool")["spec"]["template"]["spec"]
}

/// The server's container.
fn server_container() -> &'static Value {
    &server_pod()["containers"][0]
}

/// The value after `flag` in the server's arguments.
fn server_arg(flag: &str) -> &'static str {
    let args = list(server_container(), "/args");
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("the server runs without {flag}: {args:?}"));
    args.get(at + 1)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{flag} without a value"))
}

/// The config file that the ConfigMap holds, as text.
fn server_config_text() -> &'static str {
    text(
        resource("ConfigMap", "echotool-config"),
        "/data/echotool.toml",
    )
}

/// The config file, parsed.
fn server_config() -> Value {
    python_json(TOML_TO_JSON, server_config_text().as_bytes())
}

/// The kernel protocol under an echotool scheme: what a Service port must say.
fn protocol_of(scheme: &str) -> &'static str {
    match scheme {
        "tcp" | "tcp4" | "tcp6" | "tls" => "TCP",
        "udp" | "quic" => "UDP",
        other => panic!("unknown scheme {other}"),
    }
}

/// Splits `scheme://host:port`.
fn split_url(url: &str) -> (&str, &str, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("tcp", url));
    let (host, port) = rest
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {url}"));
    let port = port.parse().unwrap_or_else(|_| panic!("bad port in {url}"));
    (scheme, host, port)
}

/// (port, protocol) of every listener in the config file, after checking that each listens
/// where the Service can reach it.
fn config_listeners() -> BTreeSet<(u16, &'static str)> {
    let config = server_config();
    list(&config, "/listener")
        .iter()
        .map(|listener| {
            let (scheme, host, port) = split_url(text(listener, "/listen"));
            assert!(
                !["127.0.0.1", "[::1]", "localhost"].contains(&host) && !host.starts_with("127."),
                "{}: a listener on loopback is out of the Service's reach",
                text(listener, "/listen")
            );
            (port, protocol_of(scheme))
        })
        .collect()
}

/// The port of the server's `--metrics` address.
fn metrics_port() -> u16 {
    split_url(server_arg("--metrics")).2
}

/// The container port (number, protocol) that a Service `targetPort` or probe `port` names.
fn container_port(port: &Value) -> (u16, &'static str) {
    let ports = list(server_container(), "/ports");
    let found = ports
        .iter()
        .find(|p| match port {
            Value::String(name) => p["name"] == name.as_str(),
            number => p["containerPort"] == *number,
        })
        .unwrap_or_else(|| panic!("the container declares no port {port}"));
    let number = found["containerPort"].as_u64().expect("containerPort") as u16;
    let protocol = match found["protocol"].as_str().unwrap_or("TCP") {
        "TCP" => "TCP",
        "UDP" => "UDP",
        other => panic!("unexpected protocol {other}"),
    };
    (number, protocol)
}

/// Durations as the config file writes them: seconds, or a number with ms, s, m or h.
fn seconds(duration: &Value) -> f64 {
    if let Some(n) = duration.as_f64() {
        return n;
    }
    let s = duration.as_str().expect("a duration");
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let n: f64 = s[..split].parse().expect("a number");
    match &s[split..] {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        unit => panic!("unknown unit {unit} in {s}"),
    }
}

/// Runs kubernetes-validate on `files` against [`VERSIONS`], strictly, and
/// asserts that every resource passed: it only warns, and exits 0, on a kind it has no
/// schema for, so its word alone would let a misspelt kind through.
fn validate(files: &[&str], resources: usize) {
    let mut cmd = python();
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    for version in VERSIONS {
        cmd.args(["-k", version]);
    }
    cmd.args(files);
    let out = run(cmd, b"");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubernetes-validate refused (is it installed? run the suite with scripts/test.sh):\n\
         {report}{}",
        out.stderr
    );
    let passed = report.lines().filter(|l| l.contains(" passed ")).count();
    assert_eq!(
        passed,
        resources * VERSIONS.len(),
        "every resource passed against every version:\n{report}"
    );
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "{report}"
    );
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas_strictly() {
    let files = manifest_files();
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    validate(&names, resources().len());
}

#[test]
fn the_kustomization_deploys_every_manifest_but_the_bench_job() {
    let kustomization = yaml_docs(
        &std::fs::read_to_string(deploy_file("kustomization.yaml")).expect("kustomization"),
    );
    let kustomization = &kustomization[0];
    let listed: BTreeSet<String> = list(kustomization, "/resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_string())
        .collect();
    let on_disk: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .filter(|name| name != "bench-job.yaml")
        .collect();
    assert_eq!(listed, on_disk, "kustomization.yaml's resources");
    // Its image override reaches a container only under the name the containers use.
    let image = text(kustomization, "/images/0/name");
    assert_eq!(text(server_container(), "/image"), image);
    assert_eq!(
        text(bench_job(), "/spec/template/spec/containers/0/image"),
        image
    );
}

#[test]
fn the_service_exposes_exactly_what_the_server_listens_on() {
    let service = resource("Service", "echotool");
    let mut served = config_listeners();
    served.insert((metrics_port(), "TCP"));
    let mut exposed = BTreeSet::new();
    for port in list(service, "/spec/ports") {
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        let target = container_port(&port["targetPort"]);
        assert_eq!(
            target.1, protocol,
            "Service port {port} leads to a {} container port",
            target.1
        );
        assert_eq!(
            port["port"], target.0,
            "Service port {port}: clients use the server's own port numbers"
        );
        assert!(
            served.contains(&target),
            "Service port {port}: the server has no {protocol} listener on {}; it serves {served:?}",
            target.0
        );
        exposed.insert(target);
    }
    assert_eq!(
        exposed, served,
        "every listener and the metrics port exposed"
    );
    let selector = service["spec"]["selector"].as_object().expect("a selector");
    for (key, value) in selector {
        assert_eq!(
            &server_pod_labels()[key],
            value,
            "the Service selects the server's pods by {key}"
        );
    }
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        annotations["prometheus.io/port"],
        metrics_port().to_string()
    );
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
}

/// The labels of the server's pod template.
fn server_pod_labels() -> &'static Value {
    &resource("Deployment", "echotool")["spec"]["template"]["metadata"]["labels"]
}

#[test]
fn the_probes_ask_healthz_on_the_metrics_port() {
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &server_container()[probe]["httpGet"];
        assert_eq!(get["path"], "/healthz", "{probe}: {get}");
        assert_eq!(
            container_port(&get["port"]),
            (metrics_port(), "TCP"),
            "{probe} asks the metrics port"
        );
    }
}

/// The uid the Containerfile's USER runs as.
fn image_uid() -> u64 {
    let user = CONTAINERFILE
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the Containerfile sets USER");
    user.split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("a numeric uid")
}

#[test]
fn every_pod_runs_unprivileged_within_its_limits() {
    let job_pod = &bench_job()["spec"]["template"]["spec"];
    for (what, pod) in [("server", server_pod()), ("bench agent", job_pod)] {
        let context = &pod["securityContext"];
        assert_eq!(context["runAsNonRoot"], true, "{what}: runAsNonRoot");
        assert_eq!(context["runAsUser"], image_uid(), "{what}: the image's uid");
        for container in list(pod, "/containers") {
            let context = &container["securityContext"];
            assert_eq!(context["allowPrivilegeEscalation"], false, "{what}");
            assert_eq!(context["readOnlyRootFilesystem"], true, "{what}");
            assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
            assert!(
                context["capabilities"]["add"].is_null(),
                "{what}: no capability added"
            );
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        container["resources"][bound][resource].is_string(),
                        "{what}: {bound}.{resource}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_grace_period_outlasts_the_pre_stop_pause_and_the_drain() {
    let config = server_config();
    let drain = std::iter::once(&config["defaults"])
        .chain(list(&config, "/listener"))
        .filter_map(|table| table.get("drain-timeout"))
        .map(seconds)
        .fold(5.0, f64::max); // serve's default when nothing sets it
    let pause = server_container()["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_f64()
        .unwrap_or(0.0);
    let grace = server_pod()["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap_or(30.0);
    assert!(
        grace > pause + drain,
        "terminationGracePeriodSeconds {grace} must exceed the preStop pause {pause} s plus \
         the drain-timeout {drain} s, or SIGKILL cuts the drain short"
    );
}

/// A fresh directory for one test.
fn scratch(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "echotool-deploy-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_configmaps_config_passes_config_check_with_the_secrets_certificate() {
    // Where the Secret is mounted, and the files a kubernetes.io/tls Secret holds there.
    let secret = list(server_pod(), "/volumes")
        .iter()
        .find(|v| v["secret"].is_object())
        .expect("a Secret volume");
    let mount = list(server_container(), "/volumeMounts")
        .iter()
        .find(|m| m["name"] == secret["name"])
        .expect("the Secret volume is mounted");
    assert_eq!(mount["readOnly"], true, "the Secret is mounted read-only");
    let dir = text(mount, "/mountPath");
    let (cert, key) = (format!("{dir}/tls.crt"), format!("{dir}/tls.key"));
    let config = server_config_text();
    assert!(
        config.contains(&format!("\"{cert}\"")) && config.contains(&format!("\"{key}\"")),
        "the config's cert and key are the Secret's {cert} and {key}"
    );
    // The config file itself is the ConfigMap's key, where --config looks for it.
    let volume = list(server_pod(), "/volumes")
        .iter()
        .find(|v| v["configMap"]["name"] == "echotool-config")
        .expect("the ConfigMap volume");
    let config_mount = list(server_container(), "/volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the ConfigMap volume is mounted");
    assert_eq!(
        server_arg("--config"),
        format!("{}/echotool.toml", text(config_mount, "/mountPath"))
    );

    let scratch = scratch("config");
    let certs = scratch.join("certs");
    let mut make = echotool();
    make.args(["certs", "--san", "echotool", "--out"])
        .arg(&certs);
    let made = run(make, b"");
    assert!(made.status.success(), "{}", made.stderr);
    let local = config
        .replace(&cert, certs.join("server.pem").to_str().unwrap())
        .replace(&key, certs.join("server-key.pem").to_str().unwrap());
    let path = scratch.join("echotool.toml");
    std::fs::write(&path, local).unwrap();
    let mut check = echotool();
    check.args(["config", "check"]).arg(&path);
    let checked = run(check, b"");
    assert!(
        checked.status.success(),
        "config check refused the ConfigMap's config (its lines count from the first line \
         under echotool.toml: in server-config.yaml):\n{}",
        checked.stderr
    );
}

/// The bench agents' Job as committed.
fn bench_job() -> &'static Value {
    resource("Job", "echotool-bench")
}

/// The value of the environment variable `name` in a bench Job.
fn job_env<'a>(job: &'a Value, name: &str) -> &'a Value {
    list(job, "/spec/template/spec/containers/0/env")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the agents' environment"))
}

/// Asserts that the Job runs `agents` Indexed pods, each writing its report to stdout.
fn assert_indexed(job: &Value, agents: u64) {
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], agents, "completions");
    assert_eq!(
        job["spec"]["parallelism"], agents,
        "parallelism = completions"
    );
    let args = list(job, "/spec/template/spec/containers/0/args");
    let flag = |f: &str| {
        let at = args.iter().position(|a| a == f);
        at.and_then(|i| args.get(i + 1)).and_then(Value::as_str)
    };
    assert_eq!(flag("--start-at"), Some("$(START_AT)"), "{args:?}");
    assert_eq!(flag("--json"), Some("-"), "the report on stdout: {args:?}");
}

#[test]
fn the_bench_job_is_indexed_and_reads_only_keys_its_configmap_has() {
    let job = bench_job();
    assert_indexed(
        job,
        job["spec"]["completions"].as_u64().expect("completions"),
    );
    let data = &resource("ConfigMap", "echotool-bench")["data"];
    for env in list(job, "/spec/template/spec/containers/0/env") {
        let reference = &env["valueFrom"]["configMapKeyRef"];
        if reference.is_object() {
            assert_eq!(reference["name"], "echotool-bench");
            let key = text(reference, "/key");
            assert!(data[key].is_string(), "echotool-bench has no key {key}");
        }
    }
}

#[test]
fn run_bench_renders_n_agents_starting_together() {
    let script = deploy_file("run-bench.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).args([
        "--render",
        "-n",
        "5",
        "--start-at",
        "2026-12-01T10:00:00Z",
        "--image",
        "registry.test/echotool:7",
    ]);
    let out = run(cmd, b"");
    assert!(out.status.success(), "{}", out.stderr);
    let rendered = String::from_utf8(out.stdout).expect("YAML");
    let job = &yaml_docs(&rendered)[0];
    assert_indexed(job, 5);
    assert_eq!(job_env(job, "START_AT")["value"], "2026-12-01T10:00:00Z");
    assert_eq!(
        text(job, "/spec/template/spec/containers/0/image"),
        "registry.test/echotool:7"
    );
    // Read twice, once per version: a file, not stdin.
    let file = scratch("render").join("bench-job.yaml");
    std::fs::write(&file, &rendered).unwrap();
    validate(&[file.to_str().unwrap()], 1);

    let mut bad = Command::new("bash");
    bad.arg(&script).args(["--render", "-n", "0"]);
    let refused = run(bad, b"");
    assert_eq!(refused.code(), 1);
    assert!(
        refused.stderr.contains("error: -n takes"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_bench_targets_are_the_services_ports() {
    let bench = &resource("ConfigMap", "echotool-bench")["data"];
    let service = resource("Service", "echotool");
    let ports: BTreeSet<(u64, &str)> = list(service, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            (p["port"].as_u64().expect("port"), protocol)
        })
        .collect();
    let mut schemes = BTreeSet::new();
    for target in text(bench, "/targets").split(',') {
        let (scheme, host, port) = split_url(target);
        assert_eq!(host, "echotool", "{target}: the Service's name");
        assert!(
            ports.contains(&(u64::from(port), protocol_of(scheme))),
            "{target}: the Service has no {} port {port}",
            protocol_of(scheme)
        );
        schemes.insert(scheme);
    }
    assert_eq!(
        schemes,
        BTreeSet::from(["quic", "tcp", "tls", "udp"]),
        "every protocol compared"
    );
}

/// A stand-in for kubectl: records every call in `calls`, answers as a cluster whose Job's
/// status (`succeeded,failed,ready,conditions`) is the file `job-status`, whose agent I's
/// pod is `agent-pod-I` with the report `report-I.json`, and whose agent 1 is the one that
/// fails when the Job does.
const FAKE_KUBECTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >>"$dir/calls"
case "$*" in
  *" get configmap "*) ;;
  *" get deployment echotool "*) printf 'registry.test/echotool:7' ;;
  *" delete job "*) ;;
  *" create -f - "*) cat >"$dir/applied.yaml"; printf 'uid-42' ;;
  *" get job "*) cat "$dir/job-status" ;;
  *"status.phase=Failed"*) printf '1 agent-pod-1\n' ;;
  *" get pods "*) printf 'agent-pod-%s' "$(echo "$*" | sed -n 's/.*completion-index=\([0-9]*\).*/\1/p')" ;;
  *" logs "*) cat "$dir/report-$(echo "$*" | sed -n 's/.*agent-pod-\([0-9]*\).*/\1/p').json" ;;
  *) echo "fake kubectl: unexpected call: $*" >&2; exit 1 ;;
esac
"#;

/// A directory holding the stand-in kubectl, with `job-status` and three agents' reports.
fn fake_cluster(job_status: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("cluster");
    let path = dir.join("kubectl");
    std::fs::write(&path, FAKE_KUBECTL).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("job-status"), job_status).unwrap();
    for (i, report) in agent_reports().iter().enumerate() {
        std::fs::write(dir.join(format!("report-{i}.json")), report).unwrap();
    }
    dir
}

/// What three agents print as the Job runs them (`bench -q ... --start-at T --json -`), here
/// against one `echotool serve` on loopback: real reports, made once.
fn agent_reports() -> &'static [Vec<u8>] {
    static REPORTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let server = Server::start(&["--proto", "tcp", "--listen", "127.0.0.1:0"]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start_at = format!("{:.3}", now + 3.0);
        let agents: Vec<_> = (0..3)
            .map(|_| {
                let mut cmd = echotool();
                cmd.args(["bench", "-q", "--target", server.url(), "--scenario"])
                    .args(["latency", "--warmup", "100ms", "--duration", "300ms"])
                    .args(["--start-at", &start_at, "--json", "-"]);
                std::thread::spawn(move || run(cmd, b""))
            })
            .collect();
        agents
            .into_iter()
            .map(|agent| {
                let out = agent.join().expect("agent thread");
                assert!(out.status.success(), "{}", out.stderr);
                out.stdout
            })
            .collect()
    })
}

/// run-bench.sh with 3 agents against the stand-in in `cluster` and the real echotool,
/// results into `cluster/out`.
fn run_bench(cluster: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg(deploy_file("run-bench.sh"))
        .args(["-n", "3", "--start-at", "2026-12-01T10:00:00Z", "--out"])
        .arg(cluster.join("out"))
        .args(extra)
        .env("KUBECTL", cluster.join("kubectl"))
        .env("ECHOTOOL", env!("CARGO_BIN_EXE_echotool"));
    run(cmd, b"")
}

#[test]
fn run_bench_collects_every_agents_report_and_merges_them() {
    let cluster = fake_cluster("3,,0,Complete");
    let out = run_bench(&cluster, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let applied = std::fs::read_to_string(cluster.join("applied.yaml")).unwrap();
    let job = &yaml_docs(&applied)[0];
    assert_indexed(job, 3);
    assert_eq!(job_env(job, "START_AT")["value"], "2026-12-01T10:00:00Z");
    assert_eq!(
        text(job, "/spec/template/spec/containers/0/image"),
        "registry.test/echotool:7",
        "the agents run the server's image"
    );
    let calls = std::fs::read_to_string(cluster.join("calls")).unwrap();
    let delete = calls
        .find(" delete job echotool-bench")
        .expect("the old Job deleted");
    assert!(
        delete < calls.find(" create -f -").expect("created"),
        "{calls}"
    );

    let results = cluster.join("out");
    for (i, report) in agent_reports().iter().enumerate() {
        assert_eq!(
            &std::fs::read(results.join(format!("agent-{i}.json"))).unwrap(),
            report,
            "agent {i}'s report, from its own pod"
        );
    }
    // echotool report merged the three, and wrote every file the script names.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("echotool report: 3 agents merged"),
        "{table}"
    );
    assert_eq!(
        std::fs::read_to_string(results.join("merged.txt")).unwrap(),
        table
    );
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("merged.json")).unwrap())
            .unwrap();
    assert_eq!(merged["sources"].as_array().map(Vec::len), Some(3));
    assert_eq!(merged["rows"][0]["agents"], 3);
    for file in ["merged.csv", "merged.svg"] {
        assert!(results.join(file).is_file(), "{file}");
    }
}

#[test]
fn run_bench_names_the_agent_that_failed_and_merges_nothing() {
    let cluster = fake_cluster("2,1,0,FailureTarget Failed");
    let out = run_bench(&cluster, &[]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("agent 1 (agent-pod-1) failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: the run failed"),
        "{}",
        out.stderr
    );
    assert!(
        !cluster.join("out/merged.json").exists(),
        "no report of a failed run"
    );
}

#[test]
fn run_bench_gives_up_waiting_at_its_timeout() {
    let cluster = fake_cluster("0,,3,");
    let out = run_bench(&cluster, &["--timeout", "0"]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: the agents did not finish within 0 s"),
        "{}",
        out.stderr
    );
    assert!(
        !cluster.join("out/merged.json").exists(),
        "no report of an unfinished run"
    );
}
