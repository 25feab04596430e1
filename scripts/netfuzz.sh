#!/usr/bin/env bash
# The long version of the network fuzzer (issue 20): the test
# crates/echotool/tests/netfuzz.rs, which in CI fuzzes for 14 s, run for SECONDS (default 600)
# with SEED (default: a fresh one, printed). One `echotool serve` with TCP, UDP, TLS and QUIC
# listeners takes crates/echotool/tests/peers/netfuzz.py's random datagrams, mutated QUIC
# Initials, broken TLS records and connection storms while `echotool bench` echoes on each
# listener; it prints what was sent per kind, the clients' exact echoes and p99, and the
# server's descriptors and RSS before and after. Exit status 0 when every check held.
#
#   scripts/netfuzz.sh [SECONDS] [SEED]
#
# The fuzzer and the clients run niced (nice -n 19, with the test), so that builds beside
# them keep going; the p99 bound then holds the server to account for the shared CPUs too.
# The Python peer is stdlib-only; the interpreter is $ECHOTOOL_TEST_PYTHON, else the venv
# scripts/test.sh makes, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h | --help)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
seconds="${1:-600}"
seed="${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
for n in "$seconds" "$seed"; do
  case "$n" in
    '' | *[!0-9]*)
      echo "error: SECONDS and SEED are whole numbers, got '$n' (see --help)" >&2
      exit 2
      ;;
  esac
done

target="${CARGO_TARGET_DIR:-target}"
if [ -z "${ECHOTOOL_TEST_PYTHON:-}" ] && [ -x "$target/test-peers/bin/python" ]; then
  ECHOTOOL_TEST_PYTHON="$(cd "$target/test-peers" && pwd)/bin/python"
  export ECHOTOOL_TEST_PYTHON
fi
echo "netfuzz: $seconds s, seed $seed" >&2
ECHOTOOL_NETFUZZ_SECONDS="$seconds" ECHOTOOL_NETFUZZ_SEED="$seed" \
  nice -n 19 cargo test -p echotool --test netfuzz --locked -- \
  --exact a_fuzzed_server_keeps_echoing_exactly_and_returns_to_its_baseline --nocapture
