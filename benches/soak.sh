#!/usr/bin/env bash
# The soak test of issue 20: one `echotool serve` (TCP, UDP, TLS, QUIC) under every kind of
# load at once for SECONDS (default 1800), its RSS, descriptors, tasks and counters sampled,
# and a verdict. The work is in benches/soak.py (its docstring says what it checks).
#
#   bash benches/soak.sh            # 30 minutes
#   bash benches/soak.sh 60         # the CI version (scripts/test.sh runs it)
#   SOAK_OUT=dir bash benches/soak.sh 60
#
# Writes soak.json and soak.svg (and the runs' own files) to SOAK_OUT (default
# target/soak); exit status 1 when the verdict fails, 2 when it could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_OF_LOAD=${1:-1800}
OUT=${SOAK_OUT:-target/soak}
ECHOTOOL=${ECHOTOOL:-${CARGO_TARGET_DIR:-target}/release/echotool}
PYTHON=${ECHOTOOL_TEST_PYTHON:-target/test-peers/bin/python}

"$PYTHON" -c 'import aioquic' 2>/dev/null || {
  echo "error: $PYTHON has no aioquic: run scripts/test.sh once (it makes the venv), or set ECHOTOOL_TEST_PYTHON" >&2
  exit 2
}
if [ -z "${ECHOTOOL_PREBUILT:-}" ]; then
  cargo build --release --quiet -p echotool
fi
mkdir -p "$OUT"
"$ECHOTOOL" certs --out "$OUT/certs" --force >/dev/null 2>&1
exec "$PYTHON" benches/soak.py run --seconds "$SECONDS_OF_LOAD" --echotool "$ECHOTOOL" \
  --certs "$OUT/certs" --out "$OUT" ${SOAK_ARGS:-}
