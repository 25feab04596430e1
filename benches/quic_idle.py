#!/usr/bin/env python3
"""Server memory per idle QUIC connection, measured from an independent client (aioquic).

Issue 19 sets a goal for it (at most 24 KiB per idle QUIC connection). This starts a QUIC
server command (pinned to one CPU, like benches/idle_rss.py does for TCP), opens idle
connections to it from one asyncio process, and reports how much the server's resident set
grew per connection. Each connection does one small echo on a bidirectional stream (so the
handshake is complete and a stream has lived and closed both ways), then stays open with no
stream. A PING every --keepalive seconds keeps servers with a short default idle timeout
(quinn's is 30 s) from closing connections before the measurement; every connection must
still be open at the end, or the run is reported as failed.

    python3 -m venv target/test-peers && target/test-peers/bin/pip install aioquic==1.7.2
    target/test-peers/bin/python benches/quic_idle.py -n 1000 --runs 3 --label echotool -- \\
        target/release/echotool serve --proto quic -l 127.0.0.1:0 --idle-timeout 0
    target/test-peers/bin/python benches/quic_idle.py -n 1000 --runs 3 --label quinn-echo -- \\
        target/release/echo-peer-quinn

Prints one JSON line per run and one with the medians. The server command must print
`listening on quic://ADDR:PORT` on stderr (port 0 is fine) and listen on loopback.

Figures: RSS from /proc/PID/status, and the anonymous memory of /proc/PID/smaps_rollup (the
heap and thread stacks, without the mapped binary). `bytes_per_connection` is the growth
after a warm-up (the first --warmup connections, which pay the one-time costs) divided by the
connections opened after it; `bytes_per_connection_cold` divides the growth since start by
all of them, as the issue's figures did.
"""
import argparse
import asyncio
import ipaddress
import json
import logging
import queue
import re
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import CipherSuite

LISTENING = re.compile(r"listening on quic://(\[[^\]]+\]|[^\s:/]+):(\d+)")
PAYLOAD = b"hello, idle\n"
# --cipher: the one TLS 1.3 suite the client offers (the key contexts differ in size).
CIPHERS = {"aes-128-gcm": CipherSuite.AES_128_GCM_SHA256,
           "aes-256-gcm": CipherSuite.AES_256_GCM_SHA384,
           "chacha20": CipherSuite.CHACHA20_POLY1305_SHA256}
# Connections whose handshake is under way at once: enough to be quick, few enough that no
# handshake times out while the client (one Python thread) works through the others.
OPENING_AT_ONCE = 32
# Bounds on every wait.
START_TIMEOUT = 20.0
CONNECT_TIMEOUT = 20.0
CLOSE_TIMEOUT = 10.0
SETTLE_MAX = 10.0
# The resident set counts as settled when unchanged for this many samples in a row.
SETTLE_SAMPLES, SETTLE_INTERVAL = 4, 0.25


class Failure(Exception):
    """The run cannot be trusted; reported as `error: ...` and exit 1."""


class IdleClient(QuicConnectionProtocol):
    """One client connection: the handshake, one echo, then nothing but keep-alive PINGs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handshake = self._loop.create_future()
        self.echoed = self._loop.create_future()
        self.echo = bytearray()
        self.terminated: events.ConnectionTerminated | None = None

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            settle(self.handshake, None)
        elif isinstance(event, events.StreamDataReceived):
            self.echo += event.data
            if event.end_stream:
                settle(self.echoed, bytes(self.echo))
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            lost = Failure(f"connection closed by the server: {describe(event)}")
            for fut in (self.handshake, self.echoed):
                settle(fut, None, lost)


def settle(fut: asyncio.Future, result, error: Exception | None = None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)
        fut.exception()  # retrieved: no "never retrieved" warning if nobody awaits it


def describe(event: events.ConnectionTerminated) -> str:
    return f"{event.reason_phrase or 'no reason'} (error code 0x{event.error_code:x})"


async def open_idle(addr: tuple, config: QuicConfiguration, gate: asyncio.Semaphore):
    """Opens one connection, echoes PAYLOAD on one stream (FIN both ways) and returns it."""
    loop = asyncio.get_running_loop()
    async with gate:
        sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                             socket.SOCK_DGRAM)
        sock.bind((addr[0], 0))
        transport, proto = await loop.create_datagram_endpoint(
            lambda: IdleClient(QuicConnection(configuration=config)), sock=sock)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                proto.connect(addr)
                await proto.handshake
                stream = proto._quic.get_next_available_stream_id()
                proto._quic.send_stream_data(stream, PAYLOAD, end_stream=True)
                proto.transmit()
                echo = await proto.echoed
        except TimeoutError:
            transport.close()
            raise Failure(f"no handshake and echo within {CONNECT_TIMEOUT:g}s") from None
        except BaseException:
            transport.close()
            raise
        if echo != PAYLOAD:
            transport.close()
            raise Failure(f"wrong echo: sent {PAYLOAD!r}, got {echo!r}")
        return transport, proto


async def keep_alive(conns: list, every: float) -> None:
    """PINGs every connection every `every` seconds, so no idle timeout ends it."""
    uid = 0
    while True:
        await asyncio.sleep(every)
        for _, proto in list(conns):
            if proto.terminated is None:
                uid += 1
                proto._quic.send_ping(uid)
                proto.transmit()


class Server:
    """The server process, its stderr drained by a thread (a full pipe would stall it)."""

    def __init__(self, command: list[str], cpu: str | None):
        argv = (["taskset", "-c", cpu] if cpu else []) + command
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def address(self) -> tuple:
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise Failure(f"the server exited before listening: {' | '.join(seen)}")
            seen.append(line)
            if m := LISTENING.search(line):
                host = m.group(1).strip("[]")
                if not ipaddress.ip_address(host).is_loopback:
                    raise Failure(f"the server listens on {host}; this tool only talks to "
                                  "loopback: pass -l 127.0.0.1:0 or [::1]:0")
                return host, int(m.group(2))
        raise Failure(f"no `listening on quic://` line within {START_TIMEOUT:g}s")

    def memory_kib(self) -> dict:
        """RSS and anonymous memory in KiB, read from /proc."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        with open(f"/proc/{pid}/smaps_rollup") as f:
            anon = next(int(l.split()[1]) for l in f if l.startswith("Anonymous:"))
        return {"rss": rss, "anon": anon}

    async def settled_kib(self) -> dict:
        """Memory once the RSS stops moving (bounded by SETTLE_MAX)."""
        deadline = time.monotonic() + SETTLE_MAX
        last, same = self.memory_kib(), 0
        while same < SETTLE_SAMPLES and time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_INTERVAL)
            now = self.memory_kib()
            same = same + 1 if now["rss"] == last["rss"] else 0
            last = now
        return last

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(how)
            try:
                self.proc.wait(timeout=CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=CLOSE_TIMEOUT)


async def open_many(count: int, addr: tuple, config, conns: list) -> None:
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    tasks = [asyncio.ensure_future(open_idle(addr, config, gate)) for _ in range(count)]
    try:
        for task in asyncio.as_completed(tasks):
            conns.append(await task)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def close_all(conns: list) -> None:
    for _, proto in conns:
        proto.close()
    waits = [proto.wait_closed() for _, proto in conns if proto.terminated is None]
    try:
        await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), CLOSE_TIMEOUT)
    except TimeoutError:
        pass  # the server is stopped next anyway; its sockets go with it
    for transport, _ in conns:
        transport.close()


async def measure(args, run: int) -> dict:
    server = Server(args.command, args.cpu)
    conns: list = []
    pinger = None
    try:
        addr = server.address()
        config = QuicConfiguration(is_client=True, alpn_protocols=[args.alpn],
                                   verify_mode=ssl.CERT_NONE, idle_timeout=args.idle_timeout,
                                   cipher_suites=[CIPHERS[args.cipher]] if args.cipher else None)
        cold = server.memory_kib()
        pinger = asyncio.ensure_future(keep_alive(conns, args.keepalive))
        await open_many(args.warmup, addr, config, conns)
        warm = await server.settled_kib()
        await open_many(args.connections, addr, config, conns)
        idle = await server.settled_kib()
        closed = [p for _, p in conns if p.terminated is not None]
        if closed:
            raise Failure(f"{len(closed)} of {len(conns)} connections were closed during the "
                          f"measurement (first: {describe(closed[0].terminated)})")
        if server.proc.poll() is not None:
            raise Failure(f"the server exited with {server.proc.returncode}")
    finally:
        if pinger:
            pinger.cancel()
        if args.stop_signal == "KILL":
            server.stop(signal.SIGKILL)
        await close_all(conns)
        server.stop()
    opened = args.warmup + args.connections
    return {
        "scenario": f"quic-idle-{args.connections}", "server": args.label, "client": "aioquic",
        "round": run, "connections": args.connections, "warmup": args.warmup,
        "rss_cold_kib": cold["rss"], "rss_warm_kib": warm["rss"], "rss_idle_kib": idle["rss"],
        "anon_warm_kib": warm["anon"], "anon_idle_kib": idle["anon"],
        "bytes_per_connection": round((idle["rss"] - warm["rss"]) * 1024 / args.connections),
        "anon_bytes_per_connection":
            round((idle["anon"] - warm["anon"]) * 1024 / args.connections),
        "bytes_per_connection_cold": round((idle["rss"] - cold["rss"]) * 1024 / opened),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        usage="%(prog)s [options] -- SERVER COMMAND...")
    parser.add_argument("-n", "--connections", type=int, default=1000,
                        help="idle connections measured (default 1000)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="connections opened (and kept) before the base sample (default 20)")
    parser.add_argument("--runs", type=int, default=1, help="runs, each with a fresh server")
    parser.add_argument("--cpu", default="0",
                        help="CPU list to pin the server to with taskset ('' for none)")
    parser.add_argument("--label", default=None, help="server name in the output")
    parser.add_argument("--alpn", default="echo")
    parser.add_argument("--keepalive", type=float, default=10.0,
                        help="seconds between PINGs on each connection (default 10)")
    parser.add_argument("--idle-timeout", type=float, default=3600.0,
                        help="the client's own QUIC idle timeout in seconds (default 3600)")
    parser.add_argument("--cipher", choices=sorted(CIPHERS),
                        help="offer only this TLS 1.3 suite (default: aioquic's list, which "
                        "servers answer with AES-256-GCM)")
    parser.add_argument("--stop-signal", choices=["TERM", "KILL"], default="TERM",
                        help="how the server is stopped: KILL, before the connections close, "
                        "leaves what is live at the idle point as 'leaked' in a heap profile "
                        "(heaptrack); default TERM")
    parser.add_argument("command", nargs="+", help="the server command (after --)")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.warmup < 0 or args.runs < 1:
        parser.error("--connections and --runs must be at least 1, --warmup at least 0")
    if args.keepalive <= 0 or args.idle_timeout <= 0:
        parser.error("--keepalive and --idle-timeout must be positive (seconds)")
    args.label = args.label or args.command[0].rsplit("/", 1)[-1]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # aioquic logs connection errors as warnings; the run reports what matters itself.
    logging.getLogger("quic").addHandler(logging.NullHandler())
    logging.getLogger("quic").propagate = False
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + args.warmup + 100
    if hard < need:
        print(f"error: {need - 100} connections need {need} open files; the hard limit is "
              f"{hard}", file=sys.stderr)
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    try:
        for run in range(1, args.runs + 1):
            result = asyncio.run(measure(args, run))
            print(json.dumps(result), flush=True)
            results.append(result)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.runs > 1:
        keys = [k for k in results[0] if k.endswith(("_kib", "_connection", "_cold"))]
        median = {k: statistics.median(r[k] for r in results) for k in keys}
        print(json.dumps({"scenario": results[0]["scenario"], "server": args.label,
                          "client": "aioquic", "round": "median", "runs": args.runs,
                          "connections": args.connections, **median}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
