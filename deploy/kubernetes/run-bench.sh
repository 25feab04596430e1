#!/usr/bin/env bash
# Runs N echotool bench agents in the cluster against the server of deploy/kubernetes, all
# measuring the same interval, and merges their reports into one table:
#   1. renders bench-job.yaml with N agents, a start time LEAD seconds ahead and the server's
#      image (agents and server are always the same build);
#   2. replaces the previous run's Job with this one;
#   3. waits, at most --timeout seconds, for every agent to finish;
#   4. collects each agent's JSON report (its stdout) with `kubectl logs` into DIR/agent-I.json;
#   5. runs `echotool report` on them: the merged table on stdout and in DIR/merged.txt, and
#      DIR/merged.json, merged.csv and merged.svg.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
job="echotool-bench"

usage() {
  cat <<'EOF'
usage: deploy/kubernetes/run-bench.sh [-n AGENTS] [--lead SECONDS] [--start-at TIME]
           [--timeout SECONDS] [--out DIR] [--namespace NS] [--image IMAGE] [--render]

  -n, --agents N     load generators, one pod each (default 3)
  --lead SECONDS     start measuring this long from now: time for every agent's pod to be
                     scheduled, pull the image and start (default 60)
  --start-at TIME    start measuring at TIME instead (RFC 3339, e.g. 2026-12-01T10:00:00Z,
                     or Unix seconds)
  --timeout SECONDS  stop waiting for the agents this long after the Job is applied
                     (default: the lead time plus 1800)
  --out DIR          where the reports go (default bench-results/UTC-TIME)
  --namespace NS     the namespace of the server (default echotool)
  --image IMAGE      the agents' image (default: the server Deployment's)
  --render           print the Job that would be applied, and exit; needs no cluster

Environment: KUBECTL (default kubectl), ECHOTOOL (default echotool: runs the report, so it
must be a build with `echotool report`).
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

# Prints Unix time $1 as RFC 3339 in UTC, with GNU date or BSD date.
rfc3339() {
  date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ
}

agents=3
lead=60
start_at=""
timeout=""
out=""
namespace=echotool
image=""
render=false
while (($#)); do
  case "$1" in
    -n | --agents) agents="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --lead) lead="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --start-at) start_at="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --timeout) timeout="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --out) out="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --namespace) namespace="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --image) image="${2:-}"; shift 2 || die "$1 needs a value" ;;
    --render) render=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo >&2; die "unknown argument '$1'" ;;
  esac
done
if ! [[ $agents =~ ^[1-9][0-9]{0,2}$|^1000$ ]]; then
  die "-n takes a number of agents from 1 to 1000, not '$agents'"
fi
[[ $lead =~ ^(0|[1-9][0-9]*)$ ]] || die "--lead takes whole seconds, not '$lead'"
[[ -z $timeout || $timeout =~ ^(0|[1-9][0-9]*)$ ]] || die "--timeout takes whole seconds, not '$timeout'"
timeout="${timeout:-$((lead + 1800))}"
# The start time goes into YAML and sed as is: allow only what RFC 3339 and Unix seconds use.
[[ -z $start_at || $start_at =~ ^[0-9A-Za-z:.+-]+$ ]] ||
  die "--start-at takes RFC 3339 (2026-12-01T10:00:00Z) or Unix seconds, not '$start_at'"
if [[ -z $start_at ]]; then
  start_epoch=$(($(date +%s) + lead))
  start_at="$(rfc3339 "$start_epoch")"
elif [[ $start_at =~ ^[0-9]+$ ]]; then
  start_epoch="$start_at"
else
  # Only to warn about agents that start late; BSD date cannot parse it, and then no warning.
  start_epoch="$(date -u -d "$start_at" +%s 2>/dev/null || true)"
fi
[[ -z $image || $image =~ ^[0-9A-Za-z./:@_-]+$ ]] || die "'$image' is not an image reference"

# bench-job.yaml with this run's agents, start time and image. Fails rather than applying a
# Job in which one of them was not filled in (say, after an edit moved a line).
render_job() {
  local rendered
  local edits=(
    -e "s|^  completions: .*|  completions: $agents|"
    -e "s|^  parallelism: .*|  parallelism: $agents|"
    -e "/- name: START_AT\$/{n;s|value: .*|value: \"$start_at\"|;}"
  )
  [[ -z $image ]] || edits+=(-e "s|^\\( *image:\\) .*|\\1 $image|")
  rendered="$(sed "${edits[@]}" "$here/bench-job.yaml")"
  local want
  for want in "  completions: $agents" "  parallelism: $agents" "value: \"$start_at\"" \
    ${image:+"image: $image"}; do
    [[ $(grep -cF -- "$want" <<<"$rendered") == 1 ]] ||
      die "$here/bench-job.yaml no longer has the line run-bench.sh fills in with '$want'"
  done
  printf '%s\n' "$rendered"
}

if $render; then
  render_job
  exit 0
fi

kubectl="${KUBECTL:-kubectl}"
echotool="${ECHOTOOL:-echotool}"
k() { "$kubectl" --namespace "$namespace" "$@"; }

# Everything the run needs, checked before the cluster spends minutes on it.
command -v "$echotool" >/dev/null ||
  die "no '$echotool' to merge the reports with: install echotool (cargo install --path crates/echotool) or set ECHOTOOL"
k get configmap echotool-bench >/dev/null ||
  die "no ConfigMap echotool-bench in namespace $namespace: kubectl apply -k deploy/kubernetes first"
k get configmap echotool-ca >/dev/null ||
  die "no ConfigMap echotool-ca in namespace $namespace: load ca.pem as deploy/kubernetes/README.md shows"
if [[ -z $image ]]; then
  image="$(k get deployment echotool -o 'jsonpath={.spec.template.spec.containers[0].image}')" ||
    die "cannot read the server's image: is deploy/kubernetes applied? (or pass --image)"
  [[ -n $image ]] || die "the Deployment echotool names no image: pass --image"
fi
out="${out:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

rendered="$(render_job)"
k delete job "$job" --ignore-not-found --cascade=foreground --wait=true --timeout=120s >/dev/null ||
  die "the previous run's Job $job is still being deleted; try again in a minute"
uid="$(k create -f - -o 'jsonpath={.metadata.uid}' <<<"$rendered")" || die "the cluster refused the Job"
printf '%s\n' "$rendered" >"$out/job.yaml"
echo "started $agents agents (Job $job, image $image); they measure from $start_at" >&2
pods="batch.kubernetes.io/controller-uid=$uid"

# Prints the index and log tail of every agent that failed.
show_failures() {
  local failed index pod
  failed="$(k get pods -l "$pods" --field-selector=status.phase=Failed \
    -o 'jsonpath={range .items[*]}{.metadata.labels.batch\.kubernetes\.io/job-completion-index} {.metadata.name}{"\n"}{end}')" || true
  while read -r index pod; do
    [[ -n $pod ]] || continue
    echo "agent $index ($pod) failed; the end of its output:" >&2
    k logs "$pod" -c agent --tail=20 >&2 || true
  done <<<"$failed"
}

# Waits for the Job's Complete or Failed condition, polling, for at most $timeout seconds.
deadline=$((SECONDS + timeout))
last=""
warned_late=false
while :; do
  status="$(k get job "$job" -o 'jsonpath={.status.succeeded},{.status.failed},{.status.ready},{.status.conditions[?(@.status=="True")].type}')" ||
    die "cannot read the Job $job's status"
  IFS=, read -r succeeded failed ready conditions <<<"$status"
  progress="agents: ${succeeded:-0} of $agents finished, ${ready:-0} running, ${failed:-0} failed"
  [[ $progress == "$last" ]] || echo "$progress" >&2
  last="$progress"
  # An agent not yet running at the start time measures a later interval than the others.
  if ! $warned_late && [[ -n $start_epoch ]] && (($(date +%s) >= start_epoch)); then
    warned_late=true
    started=$((${succeeded:-0} + ${ready:-0} + ${failed:-0}))
    ((started >= agents)) ||
      echo "warning: only $started of $agents agents were running at the start time; the others measure a later interval: use a longer --lead" >&2
  fi
  case " $conditions " in
    *" Complete "*) break ;;
    *" Failed "*)
      show_failures
      die "the run failed (kubectl --namespace $namespace describe job $job says why); its output is in $out"
      ;;
  esac
  ((SECONDS < deadline)) ||
    die "the agents did not finish within $timeout s; see kubectl --namespace $namespace get pods -l $pods"
  sleep 5
done

files=()
for ((i = 0; i < agents; i++)); do
  pod="$(k get pods -l "$pods,batch.kubernetes.io/job-completion-index=$i" \
    --field-selector=status.phase=Succeeded -o 'jsonpath={.items[*].metadata.name}')"
  pod="${pod%% *}"
  [[ -n $pod ]] || die "no finished pod for agent $i"
  file="$out/agent-$i.json"
  k logs "$pod" -c agent >"$file" || die "cannot read agent $i's report from $pod"
  [[ $(head -c 1 "$file") == "{" ]] || die "agent $i's output is not a JSON report: see $file"
  files+=("$file")
done
echo "collected ${#files[@]} reports in $out; merged:" >&2
"$echotool" report "${files[@]}" --json "$out/merged.json" --csv "$out/merged.csv" \
  --plot "$out/merged.svg" | tee "$out/merged.txt"
