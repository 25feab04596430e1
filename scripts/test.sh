#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install the real peers the tests talk to when
# they are missing (socat, ncat, OpenBSD nc, openssl with apt-get; the Python peers such as
# aioquic from PyPI into a virtual environment this script owns; in the background, while
# cargo works), then format check, clippy, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  echo "installing $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# jemalloc, the binary's allocator, is built from C with make (tikv-jemalloc-sys): cargo needs
# it from its first build on.
command -v make >/dev/null || apt_install make

# The real peers the tests talk to. They install (apt-get, PyPI: waiting on the network) while
# cargo checks and builds (waiting on the CPU), and must be there before the tests run.
install_peers() {
  local missing=()
  command -v socat >/dev/null || missing+=(socat)
  command -v ncat >/dev/null || missing+=(ncat)
  # The tests use OpenBSD nc's -N (shut down the socket at end of input).
  { command -v nc >/dev/null && nc -h 2>&1 | grep -q OpenBSD; } || missing+=(netcat-openbsd)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3)
  # The ws tests send plain HTTP requests to a WebSocket listener with curl.
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  fi

  # Headless Chromium opens the ws listener's page in a real browser
  # (crates/echotool/tests/peers/browser.py drives it over the DevTools protocol, with no
  # download of its own). Debian ships it as the deb `chromium`; its Recommends (printer
  # dialogs, udev, GPU drivers) are of no use headless. Ubuntu's `chromium-browser` is only a
  # stub that installs the snap, which does not run in a container, so there the browser must
  # be put on the PATH by other means.
  if ! command -v chromium >/dev/null; then
    if grep -qx 'ID=ubuntu' /etc/os-release 2>/dev/null; then
      echo "warning: no chromium on PATH, and Ubuntu has no deb of it; the browser tests will fail" >&2
    else
      apt_install --no-install-recommends chromium
    fi
  fi

  # The Python peers (aioquic, an independent QUIC implementation) live in a virtual
  # environment under target/, never in the system's Python: Debian 12+ and Ubuntu 23.04+
  # refuse `pip install` there (PEP 668, "externally-managed-environment").
  if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian's python3 ships without ensurepip; python3-venv brings it.
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
  fi
  local requirements=scripts/test-peers.txt stamp="$venv/.installed"
  if ! cmp -s "$requirements" "$stamp"; then
    echo "installing the Python test peers into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

target="${CARGO_TARGET_DIR:-target}"
venv="$target/test-peers"
mkdir -p "$target"
peers_log="$target/test-peers.log"
(set -e; install_peers) >"$peers_log" 2>&1 &
peers=$!
# A failed check below stops this script; the install (and the fuzz build below) still runs to
# its end (an apt-get cut short can leave dpkg half-configured).
trap 'wait 2>/dev/null || true' EXIT
# The tests run their Python peers with this interpreter.
ECHOTOOL_TEST_PYTHON="$(realpath -m "$venv")/bin/python"
export ECHOTOOL_TEST_PYTHON

# Waits for background job PID, shows its log LOG, and stops with "error: MESSAGE" if it failed.
join() {
  local status=0
  wait "$1" || status=$?
  cat "$2" >&2
  if ((status)); then
    echo "error: $3" >&2
    exit 1
  fi
}

# Where the time goes, for CI's log (CI must stay under 20 minutes).
phase() { echo "test.sh, ${SECONDS} s in: $*" >&2; }

phase "format and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The transports are cargo features: an echotool with TCP and UDP only builds without rustls,
# aws-lc or quinn, and (the allocator being a feature too) without jemalloc: no C at all.
phase "the tcp,udp build"
cargo check -p echotool --locked --no-default-features --features tcp,udp
if cargo tree -p echotool --locked --no-default-features --features tcp,udp -e normal |
  grep -E 'rustls|aws-lc|quinn|jemalloc'; then
  echo "error: the tcp,udp build still depends on the crates above" >&2
  exit 1
fi
# The tests build while the peers install; they run once both are done.
phase "building the tests"
cargo test --workspace --locked --no-run
join "$peers" "$peers_log" "installing the test peers failed (the lines above say where); the tests need them"
phase "the tests"
cargo test --workspace --locked

# A smoke of every fuzz target, 5 s each, after an unoptimised build of them all (--dev: half
# the build time of a release build; scripts/fuzz.sh; the README's "Fuzzing" says more). It
# needs the nightly toolchain and cargo-fuzz: cargo-fuzz is installed here when nightly is, and
# without nightly the script says "skipping" and passes. The targets build (niced) beside the
# soak below, which was made for machines shared with builds, and run after it.
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz for the fuzz smoke" >&2
  cargo install cargo-fuzz --locked --quiet
fi
fuzz_log="$target/fuzz-build.log"
nice -n 19 scripts/fuzz.sh --dev --build-only >"$fuzz_log" 2>&1 &
fuzz_build=$!

# The soak test's 60-second version (benches/soak.sh; the README's "Reliability" says what it
# checks): every protocol under load at once, idle connections, churn and a client that never
# reads, then a verdict on RSS drift, descriptors, tasks and every echo. Exit status 1 when the
# verdict fails, which fails this script. It drives the debug binary `cargo test` just built
# (dependencies are optimised even there, and rates are a share of the peak it measures), so CI
# builds no release profile for it.
phase "the soak"
SOAK_OUT="$target/soak-ci" ECHOTOOL="$target/debug/echotool" ECHOTOOL_PREBUILT=1 \
  bash benches/soak.sh 60
phase "the fuzz smoke"
join "$fuzz_build" "$fuzz_log" "building the fuzz targets failed (the lines above say where)"
scripts/fuzz.sh --no-log --dev 5

phase "done"
