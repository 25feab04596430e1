#!/usr/bin/env python3
"""Counts what a QUIC server sends to an address that never answers (RFC 9000 §8.1).

A server must not send more than three times what it received from a client whose address
it has not validated: that is what keeps QUIC from being an amplifier for traffic with a
spoofed source. This peer plays the spoofed client: it builds one real client Initial with
aioquic (an implementation unrelated to the quinn under test), sends that one datagram from
a fresh UDP socket, and then only listens. Everything the server sends back is counted until
the server has been silent for --quiet seconds (its probe timer backs off 1 s, 2 s, 4 s...),
or --window seconds have passed in all.

    python3 quic_amplification.py HOST PORT [--alpn echo] [--source 127.0.0.1]
                                   [--quiet 4.5] [--window 12]

Prints one JSON object on stdout:
    {"sent": 1200, "received": 3600, "datagrams": [[0.001, 1200], ...], "silent_for": 4.5}
with each datagram's arrival (seconds after the Initial) and size.

Only aioquic and the standard library are used.
"""

import argparse
import json
import socket
import sys
import time

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


def first_initial(host: str, port: int, alpn: str) -> bytes:
    config = QuicConfiguration(is_client=True, alpn_protocols=[alpn])
    config.server_name = "localhost"
    conn = QuicConnection(configuration=config)
    conn.connect((host, port), now=time.time())
    datagrams = conn.datagrams_to_send(now=time.time())
    if not datagrams:
        sys.exit("error: aioquic produced no Initial")
    return datagrams[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--alpn", default="echo")
    parser.add_argument("--source", default="127.0.0.1", help="address to send from")
    parser.add_argument("--quiet", type=float, default=4.5, help="stop after this much silence")
    parser.add_argument("--window", type=float, default=12.0, help="stop after this long in all")
    args = parser.parse_args()

    initial = first_initial(args.host, args.port, args.alpn)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.source, 0))
    start = time.monotonic()
    sock.sendto(initial, (args.host, args.port))

    received = []
    last = start
    while True:
        now = time.monotonic()
        remaining = min(args.quiet - (now - last), args.window - (now - start))
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        last = time.monotonic()
        received.append([round(last - start, 4), len(data)])

    json.dump(
        {
            "sent": len(initial),
            "received": sum(size for _, size in received),
            "datagrams": received,
            "silent_for": round(time.monotonic() - last, 3),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
