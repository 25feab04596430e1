#!/usr/bin/env python3
"""Independent QUIC echo peer for echotool's interop tests (aioquic, not quinn).

echotool's QUIC transport is built on quinn; testing it only against itself
would hide bugs that are symmetric on both sides.  This script is a second,
unrelated QUIC implementation (aioquic) that speaks the same tiny protocol:

  * every bidirectional stream is an echo stream: bytes come back on the same
    stream, and the peer's FIN is answered with a FIN after the last byte;
  * every unreliable datagram (RFC 9221) is echoed back as a datagram.

Two modes:

  server  python3 quic_echo.py server --port PORT [--host 127.0.0.1]
              --cert CERT.pem --key KEY.pem [--alpn echo]
          Prints exactly one line to stderr once bound,
          `listening on quic://HOST:PORT` (IPv6 hosts in brackets, real port
          when PORT is 0), then echoes until SIGINT/SIGTERM and exits 0.

  client  python3 quic_echo.py client HOST PORT [--alpn echo]
              [--ca CA.pem | --insecure] [--server-name NAME]
              [--datagram] [--streams N] [--timeout SECS]
          Sends stdin over one stream (or N concurrent streams, each a full
          copy), or each stdin line as one datagram (--datagram), checks that
          the echo matches exactly, and writes it to stdout.  Exit 0 on
          success; otherwise one `error: ...` line on stderr and exit 1.
          The whole run is bounded by --timeout (default 20 s).

Only aioquic and the standard library are used.
"""

import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import sys
import time

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

# Receive limit advertised in the max_datagram_frame_size transport parameter.
MAX_DATAGRAM_FRAME_SIZE = 65536
# aioquic never sends UDP payloads above max_datagram_size (1200 by default) and
# does not split DATAGRAM frames, so a datagram must fit into one packet: 1200
# minus short header (<= 25), AEAD tag (16) and DATAGRAM frame header (3).
MAX_DATAGRAM_PAYLOAD = 1200 - 25 - 16 - 3
DATAGRAM_ECHO_TIMEOUT = 2.0


class Failure(Exception):
    """An expected failure: reported as one `error: ...` line, exit 1."""


# ---------------------------------------------------------------- server


class EchoServerProtocol(QuicConnectionProtocol):
    """One server-side connection: echoes streams and datagrams."""

    def quic_event_received(self, event: events.QuicEvent) -> None:
        quic = self._quic
        try:
            if isinstance(event, events.StreamDataReceived):
                # Bit 1 of the stream ID is set on unidirectional streams,
                # which cannot be echoed on; ignore them.
                if event.stream_id & 2 == 0 and (event.data or event.end_stream):
                    quic.send_stream_data(event.stream_id, event.data, event.end_stream)
            elif isinstance(event, events.StreamReset):
                # The client aborted its half: abort ours with the same code.
                quic.reset_stream(event.stream_id, event.error_code)
            elif isinstance(event, events.DatagramFrameReceived):
                if len(event.data) <= MAX_DATAGRAM_PAYLOAD:
                    quic.send_datagram_frame(event.data)
                else:
                    # aioquic would wedge its datagram queue on a frame that
                    # cannot fit in a packet, so drop it (it is unreliable).
                    print(f"warning: not echoing {len(event.data)}-byte datagram "
                          f"(max {MAX_DATAGRAM_PAYLOAD})", file=sys.stderr, flush=True)
        except (RuntimeError, ValueError):
            pass  # stream already finished or reset (e.g. after STOP_SENDING)
        # The caller (datagram_received / timer) transmits after processing.


async def run_server(args: argparse.Namespace) -> int:
    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=[args.alpn],
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
    )
    try:
        config.load_cert_chain(args.cert, args.key)
    except (OSError, ValueError) as exc:
        raise Failure(f"cannot load certificate/key: {exc}") from None
    try:
        server = await serve(args.host, args.port, configuration=config,
                             create_protocol=EchoServerProtocol)
    except OSError as exc:
        raise Failure(f"cannot listen on {args.host}:{args.port}: {exc}") from None

    host, port = server._transport.get_extra_info("sockname")[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on quic://{shown}:{port}", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    return 0


# ---------------------------------------------------------------- client


class EchoClientProtocol(QuicConnectionProtocol):
    """Client side: collects stream echoes and datagram echoes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffers: dict[int, bytearray] = {}
        self.finished: dict[int, asyncio.Future] = {}
        self.datagrams: asyncio.Queue = asyncio.Queue()
        # Own handshake future: aioquic's wait_connected() leaves an unretrieved
        # ConnectionError behind if it is cancelled (e.g. by our timeout).
        self.handshake: asyncio.Future = self._loop.create_future()
        self.terminated: events.ConnectionTerminated | None = None

    def open_stream(self) -> int:
        stream_id = self._quic.get_next_available_stream_id()
        self.buffers[stream_id] = bytearray()
        self.finished[stream_id] = self._loop.create_future()
        return stream_id

    @staticmethod
    def _fail_future(fut: asyncio.Future | None, message: str) -> None:
        if fut is not None and not fut.done():
            fut.set_exception(Failure(message))
            fut.exception()  # mark retrieved: no "never retrieved" log if unawaited

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(None)
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id in self.buffers:
                self.buffers[event.stream_id] += event.data
                fut = self.finished[event.stream_id]
                if event.end_stream and not fut.done():
                    fut.set_result(None)
        elif isinstance(event, events.StreamReset):
            self._fail_future(self.finished.get(event.stream_id),
                              f"server reset stream {event.stream_id} (code {event.error_code})")
        elif isinstance(event, events.DatagramFrameReceived):
            self.datagrams.put_nowait(event.data)
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            reason = self.close_reason()
            self._fail_future(self.handshake, f"handshake failed: {reason}")
            for fut in self.finished.values():
                self._fail_future(fut, f"connection closed: {reason}")
            self.datagrams.put_nowait(None)

    def close_reason(self) -> str:
        ev = self.terminated
        if ev is None:
            return "unknown reason"
        return f"{ev.reason_phrase or 'no reason given'} (error code 0x{ev.error_code:x})"


async def echo_streams(proto: EchoClientProtocol, data: bytes, count: int) -> bytes:
    """Sends `data` with FIN on `count` new streams, returns the verified echo."""
    stream_ids = []
    for _ in range(count):
        # aioquic hands out the same "next" ID until data is sent on it, so
        # each stream must be written before the next one is opened.
        stream_id = proto.open_stream()
        proto._quic.send_stream_data(stream_id, data, end_stream=True)
        stream_ids.append(stream_id)
    proto.transmit()
    await asyncio.gather(*(proto.finished[s] for s in stream_ids))
    for stream_id in stream_ids:
        echo = bytes(proto.buffers[stream_id])
        if echo != data:
            what = "length" if len(echo) != len(data) else "content"
            raise Failure(f"echo mismatch on stream {stream_id} ({what}): "
                          f"sent {len(data)} bytes, got {len(echo)}")
    return data


async def echo_datagrams(proto: EchoClientProtocol, data: bytes) -> bytes:
    """Sends each line of `data` as a datagram and waits for its echo in turn."""
    if proto._quic._remote_max_datagram_frame_size is None:
        raise Failure("server does not support QUIC datagrams (RFC 9221)")
    out = bytearray()
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        if len(line) > MAX_DATAGRAM_PAYLOAD:
            raise Failure(f"line {number} is {len(line)} bytes; a datagram "
                          f"holds at most {MAX_DATAGRAM_PAYLOAD}")
        proto._quic.send_datagram_frame(line)
        proto.transmit()
        try:
            echo = await asyncio.wait_for(proto.datagrams.get(), DATAGRAM_ECHO_TIMEOUT)
        except TimeoutError:
            raise Failure(f"no echo for datagram {number} within "
                          f"{DATAGRAM_ECHO_TIMEOUT:g}s") from None
        if echo is None:
            raise Failure(f"connection closed: {proto.close_reason()}")
        if echo != line:
            raise Failure(f"datagram {number} echo mismatch: sent {len(line)} "
                          f"bytes, got {len(echo)}")
        out += echo
    return bytes(out)


def start_watchdog(timeout: float) -> None:
    """Hard backstop: exit 1 even if stdin never closes or cleanup hangs."""
    def fire(signum, frame):
        os.write(2, f"error: timed out after {timeout:g}s (watchdog; stdin not "
                    f"closed or connection stuck)\n".encode())
        os._exit(1)
    signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, timeout + 1.0)


async def run_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    data = sys.stdin.buffer.read()
    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=[args.alpn],
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
        server_name=args.server_name or args.host,
        idle_timeout=args.timeout,
    )
    if args.insecure:
        config.verify_mode = ssl.CERT_NONE
    elif args.ca:
        try:
            open(args.ca, "rb").close()
        except OSError as exc:
            raise Failure(f"cannot read CA file: {exc}") from None
        config.load_verify_locations(cafile=args.ca)

    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(args.host, args.port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise Failure(f"cannot resolve {args.host}: {exc}") from None
    family, addr = infos[0][0], infos[0][4]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(("::", 0, 0, 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    transport, proto = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(QuicConnection(configuration=config)), sock=sock)

    target = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    stage = "handshake"
    try:
        async with asyncio.timeout(args.timeout - (time.monotonic() - started)):
            proto.connect(addr)
            await asyncio.shield(proto.handshake)
            stage = "echo"
            if args.datagram:
                out = await echo_datagrams(proto, data)
            else:
                out = await echo_streams(proto, data, args.streams)
    except TimeoutError:
        hint = " (is a QUIC server listening there?)" if stage == "handshake" else ""
        raise Failure(f"timed out after {args.timeout:g}s during {stage} "
                      f"with {target}{hint}") from None
    finally:
        # Close politely (CONNECTION_CLOSE, brief drain) unless there is no peer.
        proto.close()
        if stage == "echo":
            try:
                await asyncio.wait_for(proto.wait_closed(), 1.0)
            except TimeoutError:
                pass
        transport.close()

    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)

    srv = modes.add_parser("server", help="run a QUIC echo server")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--cert", required=True)
    srv.add_argument("--key", required=True)
    srv.add_argument("--alpn", default="echo")

    cli = modes.add_parser("client", help="send stdin to a QUIC echo server")
    cli.add_argument("host")
    cli.add_argument("port", type=int)
    cli.add_argument("--alpn", default="echo")
    trust = cli.add_mutually_exclusive_group()
    trust.add_argument("--ca", help="verify the server against this CA (PEM)")
    trust.add_argument("--insecure", action="store_true", help="skip verification")
    cli.add_argument("--server-name", help="name to verify (default: HOST)")
    cli.add_argument("--datagram", action="store_true",
                     help="echo each stdin line as one datagram")
    cli.add_argument("--streams", type=int, default=1,
                     help="concurrent streams, each carrying all of stdin")
    cli.add_argument("--timeout", type=float, default=20.0,
                     help="overall time limit in seconds (default 20)")
    args = parser.parse_args(argv)
    if args.mode == "client" and args.streams < 1:
        parser.error("--streams must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # aioquic logs connection errors as warnings ("[cid] Error: ..."), which the
    # logging module's last-resort handler would print; we report them ourselves.
    logging.getLogger("quic").addHandler(logging.NullHandler())
    logging.getLogger("quic").propagate = False
    if args.mode == "client":
        start_watchdog(args.timeout)
    try:
        return asyncio.run(run_server(args) if args.mode == "server" else run_client(args))
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0 if args.mode == "server" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
