#!/usr/bin/env python3
"""Server memory per idle TCP connection: starts `echotool serve` (pinned to one CPU), opens N
connections that each echo one message and then stay open doing nothing, and reports the
growth of the server's resident set per connection as one JSON line.

    python3 benches/idle_rss.py target/release/echotool 10000 0
"""
import json
import resource
import socket
import subprocess
import sys
import time

binary, count, cpu = sys.argv[1], int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < count + 100:
    sys.exit(f"error: {count} connections need {count + 100} open files; the hard limit is {hard}")
server = subprocess.Popen(
    ["sh", "-c", f"ulimit -n {hard} && exec taskset -c {cpu} {binary} serve -l 127.0.0.1:0"],
    stderr=subprocess.PIPE, text=True)
# Not `-q`: it silences the `listening on` line too. The first lines are status, so at most a
# few are read.
for _ in range(20):
    line = server.stderr.readline()
    if line.startswith("listening on ") or not line:
        break
if not line.startswith("listening on "):
    sys.exit(f"error: the server did not say where it listens: {line!r}")
port = int(line.strip().rsplit(":", 1)[1])


def rss_kib():
    with open(f"/proc/{server.pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


base = rss_kib()
conns = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"hello")
    if s.recv(16) != b"hello":
        sys.exit("error: wrong echo")
    conns.append(s)
# Let the server settle: every connection is idle from here on (a measurement pause).
time.sleep(1)
idle = rss_kib()
for s in conns:
    s.close()
server.terminate()
server.wait(timeout=10)
print(json.dumps({"scenario": "idle-10000", "server": "echotool", "client": "python", "round": 1,
                  "connections": count, "rss_base_kib": base, "rss_idle_kib": idle,
                  "bytes_per_connection": (idle - base) * 1024 / count}))
