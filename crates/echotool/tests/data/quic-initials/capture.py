#!/usr/bin/env python3
"""Captures a QUIC client's first flight (its Initial packets) as fuzzer seeds.

  capture.py NAME -- COMMAND ... {port} ...

Binds a UDP socket on 127.0.0.1 (a free port), runs COMMAND with {port} replaced by that port,
and saves every datagram that arrives until 300 ms after the first as NAME.0.bin, NAME.1.bin,
... in this folder. Nothing answers, so the client gives up or is killed after that; the whole
capture is bounded to 10 s. Standard library only.
"""

import os
import socket
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
name, command = sys.argv[1], sys.argv[3:]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
client = subprocess.Popen(
    [arg.replace("{port}", str(port)) for arg in command],
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
flight, deadline = [], time.monotonic() + 10
while time.monotonic() < deadline:
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        flight.append(sock.recv(65536))
    except socket.timeout:
        break
    deadline = min(deadline, time.monotonic() + 0.3) if len(flight) == 1 else deadline
client.kill()
client.wait()
if not flight:
    sys.exit(f"error: {name}: the client sent nothing within 10 s")
for i, datagram in enumerate(flight):
    with open(os.path.join(here, f"{name}.{i}.bin"), "wb") as f:
        f.write(datagram)
print(f"{name}: {len(flight)} datagrams, {[len(d) for d in flight]} bytes", file=sys.stderr)
