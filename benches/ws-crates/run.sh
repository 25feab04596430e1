#!/usr/bin/env bash
# The WebSocket crate comparison of issue 18: the three candidate echo servers in src/bin, each
# pinned to CPU 0, driven by the one independent client (ws-load) pinned to CPU 1, rounds
# interleaved (every server once per round, the order rotated), medians over the rounds.
#
#   bash benches/ws-crates/run.sh                 # ROUNDS=5 SECS=5 by default
#   ROUNDS=7 SECS=10 bash benches/ws-crates/run.sh
#
# Writes the raw JSON lines to benches/results/ws-crates-raw.jsonl and prints the summary table
# (summarize.py) that benches/results/ws-crates.md quotes. Check that the machine is quiet
# first: the load average is recorded with every measurement.
set -euo pipefail
cd "$(dirname "$0")"

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
IDLE=${IDLE:-1000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
MAX=1048576
RAW=../results/ws-crates-raw.jsonl
BIN=target/release
SERVERS=(tungstenite tungstenite-8k tokio-websockets fastwebsockets fastwebsockets-own)

command -v taskset >/dev/null || { echo "error: taskset is needed (apt-get install util-linux)" >&2; exit 1; }
cargo build --release --locked --quiet
: > "$RAW"

SERVER_PID=""
cleanup() { [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# start NAME: starts server NAME on CPU $SERVER_CPU; sets SERVER_PID and ADDR.
start() {
  local log cmd
  log=$(mktemp)
  case "$1" in
    fastwebsockets-own) cmd=("$BIN/ws-fastwebsockets" --own-handshake) ;;
    tungstenite-8k) cmd=("$BIN/ws-tungstenite" --small-buffers) ;;
    *) cmd=("$BIN/ws-$1") ;;
  esac
  taskset -c "$SERVER_CPU" "${cmd[@]}" 127.0.0.1:0 --max-message "$MAX" 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    ADDR=$(sed -n 's|^listening on ws://||p' "$log")
    [ -n "$ADDR" ] && { rm -f "$log"; return 0; }
    sleep 0.05
  done
  echo "error: $1 did not start:" >&2; cat "$log" >&2; exit 1
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

# load NAME ROUND ARGS...: one ws-load run on CPU $CLIENT_CPU, tagged and appended to $RAW.
# Other engineers build on this machine: a run during which anything but the server and the
# client used more than $FOREIGN_MAX of a CPU is repeated (after a pause, at most $TRIES times;
# the last one is kept, with its foreign_cpu, when the machine never calms down: the server's CPU
# time per operation, server_us_per_op, is the figure that survives a busy machine best).
FOREIGN_MAX=${FOREIGN_MAX:-0.10}
TRIES=${TRIES:-4}
load() {
  local name=$1 round=$2; shift 2
  local out try
  for try in $(seq "$TRIES"); do
    out=$(taskset -c "$CLIENT_CPU" "$BIN/ws-load" "$@")
    if python3 -c 'import json,sys; f=json.loads(sys.argv[1]).get("foreign_cpu"); sys.exit(0 if f is None or f <= float(sys.argv[2]) else 1)' "$out" "$FOREIGN_MAX"; then
      break
    fi
    echo "busy machine, again in 20 s: $out" >&2
    [ "$try" -lt "$TRIES" ] && sleep 20
  done
  python3 -c 'import json,os,sys; r=json.loads(sys.argv[1]); r.update(server=sys.argv[2], round=int(sys.argv[3]), tries=int(sys.argv[4]), load1=os.getloadavg()[0]); print(json.dumps(r))' \
    "$out" "$name" "$round" "$try" | tee -a "$RAW" >&2
}

for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS, $(uptime)" >&2
  n=${#SERVERS[@]}
  for i in $(seq 0 $((n - 1))); do
    name=${SERVERS[$(((i + round) % n))]}
    start "$name"
    load "$name" "$round" latency "$ADDR" --secs "$SECS" --pid "$SERVER_PID"
    load "$name" "$round" throughput "$ADDR" --secs "$SECS" --pid "$SERVER_PID"
    load "$name" "$round" setup "$ADDR" --secs "$SECS" --pid "$SERVER_PID"
    stop
    # A fresh server, so that the buffers of the runs above do not count as idle memory.
    start "$name"
    load "$name" "$round" idle "$ADDR" --conns "$IDLE" --pid "$SERVER_PID"
    stop
  done
done
python3 summarize.py "$RAW"
