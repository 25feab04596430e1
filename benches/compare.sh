#!/usr/bin/env bash
# The performance comparison of issue 9: echotool serve against the servers people would use
# instead, each measured in the same run on the same machine with the same load.
#
#   bash benches/compare.sh              # ROUNDS=3 DURATION=5 by default
#   ROUNDS=5 DURATION=10 bash benches/compare.sh
#   ONLY=handshakes bash benches/compare.sh   # just the TLS handshake cost against nginx
#   ONLY=secure bash benches/compare.sh       # just QUIC against TLS (bulk, set-up, 0-RTT)
#
# Builds echotool (release) and the peers in benches/peers, then for every scenario starts each
# server pinned to CPU 0 (taskset -c 0) and drives it from CPU 1 with `echotool bench --target`
# (and, where it fits, the independent C client benches/peers/echo_load.c). Rounds are
# interleaved (every server once per round) and the summary reports medians across rounds.
# Writes benches/results/latest.md, latest.json (latest-$ONLY.* for a partial run) and the raw
# measurements.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-all}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=benches/results
RAW="$OUT/raw-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
ECHOTOOL=target/release/echotool
PEERS=target/peers
CERTS=target/bench-certs
NGINX_DIR=target/bench-nginx

for tool in socat ncat taskset python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install socat ncat util-linux python3)" >&2; exit 1; }
done

echo "building echotool and the peers" >&2
cargo build --release --quiet -p echotool -p echo-peer-tokio
bash benches/peers/build.sh
"$ECHOTOOL" certs --out "$CERTS" --force >/dev/null
mkdir -p "$OUT"
: > "$RAW"

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A port below the ephemeral range that nothing uses.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(1000):
    p = random.randint(20000, 32000)
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", p)); s.close()
        print(p); break
    except OSError:
        pass
PY
}

# Waits (bounded) until a TCP port accepts, or a UDP/QUIC server printed its line.
wait_tcp() {
  for _ in $(seq 200); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2).close()" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "error: nothing listens on port $1" >&2; return 1
}
wait_udp() {  # port, log
  for _ in $(seq 200); do [ -n "$(ss -Huln "sport = :$1")" ] && return 0; sleep 0.05; done
  echo "error: nothing bound UDP port $1" >&2; cat "$2" >&2; return 1
}
wait_line() {  # file, needle
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "error: no '$2' in $1" >&2; cat "$1" >&2; return 1
}

# nginx_conf PORT: nginx's stream module terminating TLS and answering with `return`, as close
# to a bare TLS handshake server as nginx gets, on the same certificate and ciphers as echotool.
nginx_conf() {
  mkdir -p "$NGINX_DIR"
  cat > "$NGINX_DIR/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
pid nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
stream {
  server {
    listen 127.0.0.1:$1 ssl backlog=1024;
    ssl_certificate $PWD/$CERTS/server.pem;
    ssl_certificate_key $PWD/$CERTS/server-key.pem;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    return "echo\n";
  }
}
EOF
}

# start NAME PROTO: starts server NAME for PROTO on CPU $SERVER_CPU, sets PORT and SERVER_PID.
start() {
  local name=$1 proto=$2 log
  log=$(mktemp)
  PORT=$(free_port)
  case "$name/$proto" in
    echotool/tls)  taskset -c "$SERVER_CPU" "$ECHOTOOL" -q serve --proto tls -l "127.0.0.1:$PORT" --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem" 2>"$log" & ;;
    echotool/quic) taskset -c "$SERVER_CPU" "$ECHOTOOL" -q serve --proto quic -l "127.0.0.1:$PORT" --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem" 2>"$log" & ;;
    echotool/*)    taskset -c "$SERVER_CPU" "$ECHOTOOL" -q serve --proto "$proto" -l "127.0.0.1:$PORT" 2>"$log" & ;;
    tokio/*)       taskset -c "$SERVER_CPU" target/release/echo-peer-tokio "$proto" "127.0.0.1:$PORT" 2>"$log" & ;;
    epoll/*)       taskset -c "$SERVER_CPU" "$PEERS/epoll_echo" "$proto" "$PORT" 1 2>"$log" & ;;
    # socat at its best: nodelay, a real backlog (without them it stalls 40 ms per echo > 8 KiB).
    socat/tcp)     taskset -c "$SERVER_CPU" socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,nodelay,backlog=1024" PIPE 2>"$log" & ;;
    socat/tls)     taskset -c "$SERVER_CPU" socat "OPENSSL-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,nodelay,backlog=1024,cert=$CERTS/server.pem,key=$CERTS/server-key.pem,verify=0" PIPE 2>"$log" & ;;
    ncat/tls)      taskset -c "$SERVER_CPU" ncat --ssl --ssl-cert "$CERTS/server.pem" --ssl-key "$CERTS/server-key.pem" -l -k 127.0.0.1 "$PORT" --exec /bin/cat 2>"$log" & ;;
    nginx/tls)     nginx_conf "$PORT"; taskset -c "$SERVER_CPU" nginx -p "$NGINX_DIR" -c nginx.conf -e stderr 2>"$log" & ;;
    *) echo "error: no server $name for $proto" >&2; exit 1 ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  case "$name/$proto" in
    # `serve -q` prints no "listening on" line: wait for the bound UDP port instead.
    */udp|*/quic) wait_udp "$PORT" "$log" ;;
    *) wait_tcp "$PORT" ;;
  esac
}

# The servers of a scenario in an order that turns every round, so no server always runs first
# (position in a round showed up as a 15 % bias on this VM).
rotated() {
  local shift=$(( ROUND % $# )) i
  local items=("$@")
  for i in $(seq 0 $(( $# - 1 ))); do echo "${items[$(( (i + shift) % $# ))]}"; done
}

stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

# CPU seconds the server has used (user + system), and wall-clock seconds, for the server's
# own cost per message. Forking servers (socat, ncat) are left out: their work is in children.
# nginx's handshakes happen in its worker, a child of the process started: children count too.
server_cpu() {
  local pids p
  pids="$SERVER_PID $(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null)"
  for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{t += $14 + $15} END {printf "%.2f", t / 100}'
}
now() { date +%s.%N; }

# bench SCENARIO_ID SERVER URL ARGS...: runs echotool bench on CPU $CLIENT_CPU and records the
# median row of the given bench scenario as one JSON line.
bench() {
  local id=$1 server=$2 url=$3 row=$4 cpu0 t0 report; shift 4
  cpu0=$(server_cpu); t0=$(now)
  report=$(taskset -c "$CLIENT_CPU" "$ECHOTOOL" -q bench --target "$url" --duration "$DURATION" --warmup "$WARMUP" --json "$@")
  echo "$report" | python3 -c '
import json, sys
report = json.load(sys.stdin)
row = next(r for r in report["rows"] if r["scenario"] == sys.argv[4])
f = row["median"]
cpu = float(sys.argv[6]) - float(sys.argv[5]); wall = float(sys.argv[8]) - float(sys.argv[7])
forks = sys.argv[2] in ("socat", "ncat")
print(json.dumps({"scenario": sys.argv[1], "server": sys.argv[2], "client": "echotool-bench", "round": int(sys.argv[3]),
  "msgs_per_sec": f["messages_per_sec"], "mb_per_sec": f["mb_per_sec"], "p50_us": f["rtt_us"]["p50"], "p99_us": f["rtt_us"]["p99"],
  "server_cpu_us_per_msg": None if forks or not f["messages_per_sec"] else cpu * 1e6 / (f["messages_per_sec"] * wall),
  "errors": f["errors"], "mismatches": f["mismatches"], "lost": f["lost"]}))' "$id" "$server" "$ROUND" "$row" "$cpu0" "$(server_cpu)" "$t0" "$(now)" >> "$RAW"
}

# load SCENARIO_ID SERVER PROTO ARGS...: the independent C client, same shape.
load() {
  local id=$1 server=$2 proto=$3 cpu0 t0 result; shift 3
  [ -x "$PEERS/echo_load" ] || return 0
  cpu0=$(server_cpu); t0=$(now)
  result=$(taskset -c "$CLIENT_CPU" "$PEERS/echo_load" "$proto" 127.0.0.1 "$PORT" --duration "$DURATION" --warmup "$WARMUP" "$@")
  echo "$result" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
cpu = float(sys.argv[5]) - float(sys.argv[4]); wall = float(sys.argv[7]) - float(sys.argv[6])
forks = sys.argv[2] in ("socat", "ncat")
print(json.dumps({"scenario": sys.argv[1], "server": sys.argv[2], "client": "echo_load", "round": int(sys.argv[3]),
  "msgs_per_sec": r["msgs_per_sec"], "mb_per_sec": r["mb_per_sec"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
  "server_cpu_us_per_msg": None if forks or not r["msgs_per_sec"] else cpu * 1e6 / (r["msgs_per_sec"] * wall),
  "errors": r["errors"], "mismatches": r["mismatches"], "lost": r.get("lost", 0)}))' "$id" "$server" "$ROUND" "$cpu0" "$(server_cpu)" "$t0" "$(now)" >> "$RAW"
}

# bench_rows SERVER URL ROW:ID[:SERVER-LABEL],... ARGS...: one echotool bench run on CPU
# $CLIENT_CPU whose rows (set-up variants, say) each become a measurement of their own; the
# server's CPU is not divided among them (null).
bench_rows() {
  local server=$1 url=$2 rows=$3 report; shift 3
  report=$(taskset -c "$CLIENT_CPU" "$ECHOTOOL" -q bench --target "$url" --duration "$DURATION" --warmup "$WARMUP" --json "$@")
  echo "$report" | python3 -c '
import json, sys
report = json.load(sys.stdin)
for spec in sys.argv[3].split(","):
    name, id, *label = spec.split(":")
    row = next(r for r in report["rows"] if r["scenario"] == name)
    f = row["median"]
    print(json.dumps({"scenario": id, "server": label[0] if label else sys.argv[1], "client": "echotool-bench",
      "round": int(sys.argv[2]), "row": name, "msgs_per_sec": f["messages_per_sec"], "mb_per_sec": f["mb_per_sec"],
      "p50_us": f["rtt_us"]["p50"], "p99_us": f["rtt_us"]["p99"], "server_cpu_us_per_msg": None,
      "errors": f["errors"], "mismatches": f["mismatches"], "lost": f["lost"]}))' "$server" "$ROUND" "$rows" >> "$RAW"
}

# An OpenSSL client configuration that offers X25519 only, so both servers of the handshake
# comparison use the same key exchange (OpenSSL 3.0 has no X25519MLKEM768 to offer anyway).
S_TIME_CONF=target/bench-openssl.cnf
cat > "$S_TIME_CONF" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Groups = X25519
EOF

# handshakes SERVER: full TLS 1.3 handshakes (ECDSA P-256 certificate, X25519, AES-128-GCM) from
# `openssl s_time -new`, an independent client making one at a time, for $DURATION s. Records
# handshakes/s and the server's CPU per handshake (what "handshakes/s per server core" is the
# inverse of), and the group the server chose, as `openssl s_client` sees it.
handshakes() {
  local server=$1 group cpu0 t0 out
  group=$(OPENSSL_CONF=$S_TIME_CONF timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 </dev/null 2>&1 | sed -n 's/^\(Server\|Peer\) Temp Key: //p' | head -1)
  cpu0=$(server_cpu); t0=$(now)
  out=$(OPENSSL_CONF=$S_TIME_CONF taskset -c "$CLIENT_CPU" openssl s_time -connect "127.0.0.1:$PORT" -new -tls1_3 \
    -ciphersuites TLS_AES_128_GCM_SHA256 -time "$DURATION" 2>&1)
  echo "$out" | python3 -c '
import json, re, sys
out = sys.stdin.read()
m = re.search(r"(\d+) connections in \d+ real seconds", out)
if not m:
    sys.exit("error: no count of connections in the output of openssl s_time:\n" + out)
n = int(m.group(1)); cpu = float(sys.argv[4]) - float(sys.argv[3]); wall = float(sys.argv[6]) - float(sys.argv[5])
print(json.dumps({"scenario": "tls-full-handshake", "server": sys.argv[1], "client": "openssl-s_time", "round": int(sys.argv[2]),
  "group": sys.argv[7], "msgs_per_sec": n / wall, "mb_per_sec": None, "p50_us": None, "p99_us": None,
  "server_cpu_us_per_msg": cpu * 1e6 / n if n else None,
  "handshakes_per_server_core_sec": n / cpu if cpu else None, "errors": 0, "mismatches": 0, "lost": 0}))' \
    "$server" "$ROUND" "$cpu0" "$(server_cpu)" "$t0" "$(now)" "$group" >> "$RAW"
}

# The TLS handshake cost against nginx (issue 19): installs nginx's stream module if missing.
if [ "$ONLY" = all ] || [ "$ONLY" = handshakes ]; then
  if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
    echo "installing nginx and its stream module" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light libnginx-mod-stream >&2
  fi
fi

for ROUND in $(seq "$ROUNDS"); do
  echo "round $ROUND of $ROUNDS" >&2
  if [ "$ONLY" = all ] || [ "$ONLY" = handshakes ]; then
    for server in $(rotated echotool nginx); do
      start "$server" tls
      handshakes "$server"
      stop
    done
  fi
  if [ "$ONLY" = all ] || [ "$ONLY" = secure ]; then
    # QUIC against TLS, turn by turn: bulk, then set-up (a new endpoint per connection, and one
    # shared endpoint as real clients use), and the first echo of a resumed connection.
    for server in $(rotated quic tls); do
      start echotool "$server"
      case $server in
        quic)
          bench secure-10x16k echotool-quic "quic://localhost:$PORT" throughput --scenario throughput --conns 10 --size 16K --depth 1 --ca "$CERTS/ca.pem"
          bench_rows echotool-quic "quic://localhost:$PORT" \
            setup/1-rtt:secure-setup,setup/1-rtt-shared:secure-setup:echotool-quic-shared,first-echo/0-rtt:secure-first-echo-resumed,first-echo/0-rtt-shared:secure-first-echo-resumed:echotool-quic-shared \
            --scenario setup --conns 1 --size 64 --ca "$CERTS/ca.pem" ;;
        tls)
          bench secure-10x16k echotool-tls "tls://localhost:$PORT" throughput --scenario throughput --conns 10 --size 16K --depth 1 --ca "$CERTS/ca.pem"
          bench_rows echotool-tls "tls://localhost:$PORT" setup/full:secure-setup,first-echo/resumed:secure-first-echo-resumed \
            --scenario setup --conns 1 --size 64 --ca "$CERTS/ca.pem" ;;
      esac
      stop
    done
  fi
  [ "$ONLY" = all ] || continue
  for server in $(rotated echotool tokio socat); do
    start "$server" tcp
    bench tcp-50x64 "$server" "tcp://127.0.0.1:$PORT" throughput --scenario throughput --conns 50 --size 64 --depth 1
    load tcp-50x64 "$server" tcp --conns 50 --size 64
    stop
  done
  for server in $(rotated echotool epoll); do
    start "$server" tcp
    bench tcp-1x64 "$server" "tcp://127.0.0.1:$PORT" latency --scenario latency --conns 1 --size 64
    load tcp-1x64 "$server" tcp --conns 1 --size 64
    bench tcp-10x16k "$server" "tcp://127.0.0.1:$PORT" throughput --scenario throughput --conns 10 --size 16K --depth 1
    load tcp-10x16k "$server" tcp --conns 10 --size 16384
    stop
  done
  for server in $(rotated echotool tokio epoll); do
    start "$server" udp
    bench udp-16x64 "$server" "udp://127.0.0.1:$PORT" throughput --scenario throughput --conns 16 --size 64 --depth 1
    load udp-16x64 "$server" udp --conns 16 --size 64
    stop
  done
  for server in $(rotated echotool socat ncat); do
    start "$server" tls
    bench tls-handshakes "$server" "tls://localhost:$PORT" setup/full --connect-rate --conns 4 --ca "$CERTS/ca.pem"
    stop
  done
  for server in $(rotated echotool ncat); do
    start "$server" tls
    bench tls-10x16k "$server" "tls://localhost:$PORT" throughput --scenario throughput --conns 10 --size 16K --depth 1 --ca "$CERTS/ca.pem"
    stop
  done
  start echotool tls
  bench secure-1x64 echotool-tls "tls://localhost:$PORT" latency --scenario latency --ca "$CERTS/ca.pem"
  stop
  start echotool quic
  bench secure-1x64 echotool-quic "quic://localhost:$PORT" latency --scenario latency --ca "$CERTS/ca.pem"
  bench secure-handshakes echotool-quic "quic://localhost:$PORT" setup/1-rtt --connect-rate --conns 4 --ca "$CERTS/ca.pem"
  stop
  start echotool tls
  bench secure-handshakes echotool-tls "tls://localhost:$PORT" setup/full --connect-rate --conns 4 --ca "$CERTS/ca.pem"
  stop
done

if [ "$ONLY" = all ]; then
  echo "10000 idle connections" >&2
  python3 benches/idle_rss.py "$ECHOTOOL" 10000 "$SERVER_CPU" >> "$RAW"
fi

# A partial run (ONLY=...) must not replace the full comparison's summary.
NAME=latest; [ "$ONLY" = all ] || NAME="latest-$ONLY"
python3 benches/summarize.py "$RAW" "$OUT/$NAME.md" "$OUT/$NAME.json"
cat "$OUT/$NAME.md"
