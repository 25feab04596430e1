#!/usr/bin/env bash
# Fuzzes echotool's parsers with cargo-fuzz (libFuzzer): builds every target in fuzz/ with the
# nightly toolchain (the product itself stays on stable), then runs each target named (all by
# default) for SECONDS, one after the other, each on one core and niced so that builds beside
# it keep going. Prints each target's executions per second and total executions (libFuzzer's
# final stats) and appends them to fuzz/runs.md, the record the README's figures come from.
#
#   scripts/fuzz.sh [--require] [--no-log] [--dev] [--build-only] [SECONDS_PER_TARGET] [TARGET...]
#
# Without a nightly toolchain or cargo-fuzz it says "skipping: ..." and exits 0, so that CI
# does not fail for a missing nightly; --require makes that an error. A crash (or a hang, or a
# huge allocation) leaves its input in fuzz/artifacts/TARGET/, prints the commands that
# reproduce and minimise it, and makes the script exit 1 once every target has run.
# --no-log runs without touching fuzz/runs.md (the smoke in scripts/test.sh).
# --dev builds without optimisation (cargo fuzz build --dev): half the build time (about 100
# against 230 s here) for about a twentieth of the executions per second, which is what a
# smoke of a few seconds wants (scripts/test.sh); long runs want the default release build.
# --build-only builds and stops (scripts/test.sh builds beside the soak, then runs).
# FUZZ_SANITIZER=none builds without AddressSanitizer (cargo fuzz -s none) for long runs of
# these safe-Rust parsers (no shadow-memory checks on every access); runs.md says so beside
# each such run. Keep its builds apart (CARGO_TARGET_DIR) or each switch rebuilds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

require=false
log_runs=true
profile=release
build_only=false
seconds=60
targets=()
sanitizer=${FUZZ_SANITIZER:-address}
for arg in "$@"; do
  case "$arg" in
    --require) require=true ;;
    --no-log) log_runs=false ;;
    --dev) profile=dev ;;
    --build-only) build_only=true ;;
    -h | --help)
      sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "error: unknown flag $arg (see --help)" >&2
      exit 2
      ;;
    *[!0-9]*) targets+=("$arg") ;;
    *) seconds="$arg" ;;
  esac
done

skip() {
  if $require; then
    echo "error: $1" >&2
    exit 1
  fi
  echo "skipping: $1" >&2
  exit 0
}
command -v rustup >/dev/null || skip "no rustup, so no nightly toolchain to build the fuzz targets"
rustup toolchain list | grep -q '^nightly' ||
  skip "no nightly toolchain (rustup toolchain install nightly); the fuzz targets need it"
cargo +nightly fuzz --version >/dev/null 2>&1 ||
  skip "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"

all=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^echotool-fuzz$')
if ((${#targets[@]} == 0)); then
  read -r -a targets <<<"$(echo $all)"
fi
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || {
    echo "error: no fuzz target '$t'; there are: $(echo $all)" >&2
    exit 2
  }
done

# cargo-fuzz puts its builds under CARGO_TARGET_DIR when set, else under fuzz/target.
target_dir="${CARGO_TARGET_DIR:-fuzz/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
build=(-s "$sanitizer" --target-dir "$target_dir")
if [ "$profile" = dev ]; then
  bin="$target_dir/$host/debug"
  build+=(--dev)
  described="unoptimised"
else
  bin="$target_dir/$host/release"
  described="release with debug assertions"
fi

started=$SECONDS
echo "building the fuzz targets (nightly, $described, sanitizer: $sanitizer)" >&2
(cd fuzz && nice -n 10 cargo +nightly fuzz build "${build[@]}" >&2)
echo "built in $((SECONDS - started)) s" >&2
$build_only && exit 0

# The certificates and keys `echotool certs` writes, and keys in the encodings it accepts
# from elsewhere (PKCS#1, SEC1, encrypted PKCS#8), made afresh for the pem target's corpus:
# private keys are never committed, not even test ones.
pem_seeds() {
  local corpus="$1" dir echotool
  dir=$(mktemp -d)
  for echotool in "${CARGO_TARGET_DIR:-target}/debug/echotool" "${CARGO_TARGET_DIR:-target}/release/echotool"; do
    if [ -x "$echotool" ] && "$echotool" certs --out "$dir/certs" >/dev/null 2>&1; then
      for f in "$dir"/certs/*.pem; do cp "$f" "$corpus/generated-$(basename "$f")"; done
      cat "$dir/certs/server.pem" "$dir/certs/server-key.pem" >"$corpus/generated-cert-and-key.pem"
      break
    fi
  done
  if command -v openssl >/dev/null; then
    openssl genrsa -traditional -out "$corpus/generated-rsa-pkcs1-key.pem" 2048 2>/dev/null || true
    openssl ecparam -name prime256v1 -genkey -noout -out "$corpus/generated-sec1-key.pem" 2>/dev/null || true
    openssl genpkey -algorithm ed25519 -out "$dir/ed.pem" 2>/dev/null &&
      cp "$dir/ed.pem" "$corpus/generated-ed25519-key.pem" &&
      openssl pkcs8 -topk8 -in "$dir/ed.pem" -passout pass:fuzz \
        -out "$corpus/generated-encrypted-key.pem" 2>/dev/null || true
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=localhost -keyout "$dir/k.pem" -out "$corpus/generated-openssl-cert.pem" \
      2>/dev/null || true
  fi
  rm -rf "$dir"
}

# The working corpus starts from the committed seeds and the repository's own examples, and
# keeps what every run adds (fuzz/corpus is git-ignored).
corpus_for() {
  local t="$1" corpus="fuzz/corpus/$1"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  if [ -d "fuzz/seeds/$t" ]; then cp -n fuzz/seeds/"$t"/* "$corpus/" 2>/dev/null || true; fi
  case "$t" in
    config_file) for f in config/*.toml; do cp "$f" "$corpus/repo-$(basename "$f")"; done ;;
    pem) pem_seeds "$corpus" ;;
  esac
}

dict_for() {
  case "$1" in
    config_file | config_value) echo fuzz/dicts/config.dict ;;
    udp_guard) ;;
    *) [ -f "fuzz/dicts/$1.dict" ] && echo "fuzz/dicts/$1.dict" ;;
  esac
}

if $log_runs && [ ! -f fuzz/runs.md ]; then
  cat >fuzz/runs.md <<'EOF'
# Fuzzing sessions

One line per target per run of `scripts/fuzz.sh`, appended by the script: executions and
executions per second are libFuzzer's final stats (`-print_final_stats=1`), corpus is the
number of inputs in the working corpus afterwards. The totals per target are in the README.
A commit ending in `-dirty` ran with changes not yet committed.

| date (UTC) | commit | target | seconds | executions | execs/s | corpus | result |
|---|---|---|---:|---:|---:|---:|---|
EOF
fi

commit=$(git describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)
failed=()
printf '%-14s %8s %14s %10s %8s  %s\n' target seconds executions execs/s corpus result
for t in "${targets[@]}"; do
  corpus_for "$t"
  out=$(mktemp)
  dict=$(dict_for "$t" || true)
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
    -artifact_prefix="fuzz/artifacts/$t/")
  [ -n "$dict" ] && args+=(-dict="$dict")
  status=0
  nice -n 10 "$bin/$t" "${args[@]}" "fuzz/corpus/$t" >"$out" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)
  size=$(find "fuzz/corpus/$t" -type f | wc -l)
  result=ok
  [ "$sanitizer" = address ] || result="ok (sanitizer: $sanitizer)"
  [ "$profile" = release ] || result="$result (unoptimised)"
  if [ "$status" -ne 0 ]; then
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out" | tail -1)
    result="crash: ${artifact:-see the output above} (exit $status)"
    failed+=("$t")
    tail -40 "$out" >&2
    if [ -n "$artifact" ]; then
      echo "reproduce: (cd fuzz && cargo +nightly fuzz run $t ${artifact#fuzz/})" >&2
      echo "minimise:  (cd fuzz && cargo +nightly fuzz tmin $t ${artifact#fuzz/})" >&2
    fi
  fi
  rm -f "$out"
  printf '%-14s %8s %14s %10s %8s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$size" "$result"
  if $log_runs; then
    echo "| $(date -u '+%Y-%m-%d %H:%M') | $commit | $t | $seconds | ${execs:-?} | ${rate:-?} | $size | $result |" >>fuzz/runs.md
  fi
done

if $log_runs; then
  echo >&2
  echo "executions so far, every session in fuzz/runs.md:" >&2
  awk -F'|' 'NR > 2 && $6 ~ /[0-9]/ { gsub(/ /, "", $4); gsub(/ /, "", $6); total[$4] += $6 }
    END { for (t in total) printf "  %-14s %14d\n", t, total[t] }' fuzz/runs.md | sort >&2
fi
if ((${#failed[@]})); then
  echo "error: crashes in ${failed[*]}: turn each into a unit test next to the code it found" >&2
  exit 1
fi
