#!/usr/bin/env python3
"""Independent WebSocket echo peer for echotool's ws/wss tests (Python's `websockets`).

echotool's WebSocket transport is built on a Rust crate; testing it only against itself
would hide bugs that are symmetric on both sides.  This script is a second, unrelated
implementation that speaks the same tiny protocol: every message comes back with its own
type (text stays text, binary stays binary), pings are answered by the library, and the
close handshake echoes the status code.

Two modes:

  server  python3 ws_echo.py server [--host 127.0.0.1] [--port 0]
              [--cert CERT.pem --key KEY.pem] [--max-size BYTES]
          Prints exactly one line to stderr once bound, `listening on ws://HOST:PORT`
          (wss:// with --cert; IPv6 hosts in brackets; the real port when PORT is 0), then
          echoes until SIGINT/SIGTERM and exits 0.  A message above --max-size (default
          1 MiB) closes the connection with 1009.  A plain HTTP request gets websockets'
          own 426.

  client  python3 ws_echo.py client URL [--binary] [--ca CA.pem | --insecure]
              [--server-name NAME] [--max-size BYTES] [--timeout SECS]
          Sends each stdin line (without its newline) as one text message (binary with
          --binary), checks that each echo has the same type and content, writes the echoes
          to stdout one per line, then closes with 1000 and checks the close code echoed.
          Exit 0 on success; otherwise one `error: ...` line on stderr and exit 1.  The
          whole run is bounded by --timeout (default 20 s).

Only `websockets` and the standard library are used.  Traffic goes where the URL says:
the tests give loopback addresses only (the proxy settings of the environment are ignored).
"""

import argparse
import asyncio
import signal
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


class Failure(Exception):
    """An expected failure: reported as one `error: ...` line, exit 1."""


# ---------------------------------------------------------------- server


async def echo(ws):
    try:
        async for message in ws:
            # websockets yields str for text and bytes for binary, and send() keeps the type.
            await ws.send(message)
    except ConnectionClosed:
        pass


async def run_server(args):
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    async with serve(echo, args.host, args.port, ssl=context, max_size=args.max_size,
                     compression=None) as server:
        host, port = server.sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"listening on {'wss' if context else 'ws'}://{shown}:{port}", file=sys.stderr,
              flush=True)
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        await stop
    return 0


# ---------------------------------------------------------------- client


def client_context(args):
    if not args.url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=args.ca)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def run_client(args):
    lines = sys.stdin.read().splitlines()
    kwargs = {"server_hostname": args.server_name} if args.server_name else {}
    async with connect(args.url, ssl=client_context(args), max_size=args.max_size,
                       compression=None, proxy=None, **kwargs) as ws:
        for line in lines:
            message = line.encode() if args.binary else line
            await ws.send(message)
            echoed = await ws.recv()
            if type(echoed) is not type(message):
                raise Failure(f"sent {type(message).__name__}, got {type(echoed).__name__} back")
            if echoed != message:
                raise Failure(f"sent {message!r}, got {echoed!r} back")
            print(echoed.decode() if args.binary else echoed, flush=True)
        await ws.close(1000)
        if ws.protocol.close_rcvd is None or ws.protocol.close_rcvd.code != 1000:
            raise Failure(f"close 1000 not echoed: {ws.protocol.close_rcvd}")
    return 0


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    srv = modes.add_parser("server")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=0)
    srv.add_argument("--cert")
    srv.add_argument("--key")
    srv.add_argument("--max-size", type=int, default=1 << 20)
    cli = modes.add_parser("client")
    cli.add_argument("url")
    cli.add_argument("--binary", action="store_true")
    cli.add_argument("--ca")
    cli.add_argument("--insecure", action="store_true")
    cli.add_argument("--server-name")
    cli.add_argument("--max-size", type=int, default=1 << 20)
    cli.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    if args.mode == "server" and bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    try:
        if args.mode == "server":
            return asyncio.run(run_server(args))
        return asyncio.run(asyncio.wait_for(run_client(args), args.timeout))
    except (Failure, OSError, ConnectionClosed, ssl.SSLError) as e:
        print(f"error: {e}", file=sys.stderr)
    except TimeoutError:
        print(f"error: no echo within {args.timeout} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
