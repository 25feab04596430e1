#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install the real peers the tests talk to
# (socat, ncat, OpenBSD nc, openssl, and aioquic from PyPI) when missing, then format check,
# clippy, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v socat >/dev/null || missing+=(socat)
command -v ncat >/dev/null || missing+=(ncat)
# The tests use OpenBSD nc's -N (shut down the socket at end of input).
{ command -v nc >/dev/null && nc -h 2>&1 | grep -q OpenBSD; } || missing+=(netcat-openbsd)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The QUIC interop tests talk to aioquic, an independent QUIC implementation.
if ! python3 -c "import aioquic" 2>/dev/null; then
  echo "installing aioquic" >&2
  python3 -m pip install --quiet --disable-pip-version-check aioquic
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
