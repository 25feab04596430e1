#!/usr/bin/env python3
"""What each candidate server does with the protocol cases issue 18 names, seen from an
independent client (Python's `websockets`, plus plain HTTP from the standard library).

    python check.py ws://127.0.0.1:PORT/ws [--max 1048576]

Prints one JSON object: each case and what happened ("ok" or what was seen instead). The
servers are the ones in src/bin, all started with the same --max-message. Every wait is bounded
(TIMEOUT seconds).
"""

import http.client
import json
import socket
import sys
import urllib.parse

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

TIMEOUT = 5


def session(url):
    # proxy=None: websockets follows the environment's proxy settings by default, and this
    # traffic must stay on loopback.
    return connect(url, max_size=None, compression=None, proxy=None,
                   open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def echo_keeps_type(url):
    with session(url) as ws:
        ws.send("héllo")
        text = ws.recv(timeout=TIMEOUT)
        ws.send(b"\x00\xffbin")
        binary = ws.recv(timeout=TIMEOUT)
    if text != "héllo" or binary != b"\x00\xffbin":
        return f"text came back as {text!r}, binary as {binary!r}"
    return "ok"


def fragments_reassembled(url):
    with session(url) as ws:
        # Split inside a multi-byte character, too: "é" is two bytes in UTF-8.
        ws.send(["frag", "ment", "é" * 3, "ed"])
        got = ws.recv(timeout=TIMEOUT)
        ws.send([b"\x01" * 1000, b"\x02" * 1000])
        got_bin = ws.recv(timeout=TIMEOUT)
    if got != "fragmentéééed" or got_bin != b"\x01" * 1000 + b"\x02" * 1000:
        return f"got {got!r} and {len(got_bin)} bytes"
    return "ok"


def ping_answered(url):
    with session(url) as ws:
        pong = ws.ping(b"are you there")
        return "ok" if pong.wait(TIMEOUT) else "no pong"


def close_code_echoed(url):
    with session(url) as ws:
        ws.close(code=4001, reason="bye")
        got = ws.protocol.close_rcvd
    if got is None:
        return "no close frame back"
    return "ok" if got.code == 4001 else f"close code {got.code} back"


def refused_with(url, messages):
    """Sends messages (a str/bytes or a list of fragments each), expects close 1009."""
    with session(url) as ws:
        try:
            for m in messages:
                ws.send(m)
            got = ws.recv(timeout=TIMEOUT)
            return f"echoed {len(got)} bytes instead of closing"
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            return "ok" if code == 1009 else f"closed with {code} (no close frame: None)"
        except TimeoutError:
            return f"no answer within {TIMEOUT} s"


def exactly_max_echoed(url, limit):
    with session(url) as ws:
        ws.send(b"\x07" * limit)
        got = ws.recv(timeout=TIMEOUT)
    return "ok" if len(got) == limit else f"{len(got)} bytes back"


def raw_close_code(url, frame):
    """Sends one hand-made frame after a hand-made handshake; the close code that comes back."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as s:
        s.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed during the handshake"
            data += chunk
        data = data.split(b"\r\n\r\n", 1)[1]
        s.sendall(frame)
        try:
            while len(data) < 4:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return f"no answer within {TIMEOUT} s"
    if len(data) >= 4 and data[0] == 0x88:
        return int.from_bytes(data[2:4], "big")
    return f"no close frame: {data[:16]!r}"


def masked(opcode, payload):
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def plain_get(url, path, method="GET"):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        return f"{response.status} ({len(body)} bytes)"
    except (OSError, http.client.HTTPException) as e:
        return f"no response: {e}"
    finally:
        conn.close()


def expect(code, got):
    return "ok" if got == code else f"got {got}"


def main():
    url = sys.argv[1]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--max" else 1 << 20
    chunk = 64 * 1024
    cases = {
        "text stays text, binary stays binary": lambda: echo_keeps_type(url),
        "fragments reassembled": lambda: fragments_reassembled(url),
        "ping answered with pong": lambda: ping_answered(url),
        "close code 4001 echoed": lambda: close_code_echoed(url),
        "message of exactly max echoed": lambda: exactly_max_echoed(url, limit),
        "max+1 in one frame: 1009": lambda: refused_with(url, [b"\x07" * (limit + 1)]),
        "max+1 in 64 KiB fragments: 1009": lambda: refused_with(
            url, [[b"\x07" * chunk] * (limit // chunk) + [b"\x07"]]),
        "invalid UTF-8 in text: 1007": lambda: expect(1007, raw_close_code(url, masked(1, b"\xff\xfe"))),
        "unmasked client frame: 1002": lambda: expect(1002, raw_close_code(url, b"\x82\x02hi")),
        "plain GET /": lambda: plain_get(url, "/"),
        "plain GET /other": lambda: plain_get(url, "/other"),
        "POST /": lambda: plain_get(url, "/", "POST"),
    }
    result = {}
    for name, case in cases.items():
        try:
            result[name] = case()
        except Exception as e:  # a case that breaks is a finding, not a crash of the check
            result[name] = f"{type(e).__name__}: {e}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
