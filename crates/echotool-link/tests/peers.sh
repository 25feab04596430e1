#!/usr/bin/env bash
# The link's tests read captures back with tcpdump when it is installed (and with a Python
# pcapng reader always); this installs tcpdump where it is missing. Run it before
# `cargo test -p echotool-link` on a fresh machine.
set -euo pipefail
if ! command -v tcpdump >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tcpdump >/dev/null
fi
tcpdump --version | head -1
