#!/usr/bin/env bash
# Builds the C baseline peer(s) into $OUT (default target/peers, relative to the repo root).
#   bash benches/peers/build.sh            # -> target/peers/epoll_echo, target/peers/echo_load
#   OUT=/tmp/peers bash benches/peers/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-target/peers}"
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -pthread -o "$OUT/epoll_echo" benches/peers/epoll_echo.c
echo "built $OUT/epoll_echo" >&2
gcc -O2 -Wall -Wextra -pthread -o "$OUT/echo_load" benches/peers/echo_load.c -lm
echo "built $OUT/echo_load" >&2
