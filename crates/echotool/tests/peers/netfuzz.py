#!/usr/bin/env python3
"""A network fuzzer against a running `echotool serve` (issue 20): the standard library, and
aioquic (the test peers' venv) to build fresh QUIC Initials.

The parsers have their own cargo-fuzz targets (fuzz/); this one attacks the running server
from outside, the way a hostile network would, while a well-behaved client (`echotool bench`,
started by the caller) keeps echoing next to it:

  udp_random        random datagrams (0 to 65507 bytes) to the UDP listener, from several
                    127.x.y.z source addresses ("spoofed-looking"); every reply must be an
                    exact copy of a datagram that source sent (never larger, never new)
  quic_random       random datagrams to the QUIC listener, from the same kind of sources
  quic_mutated      real QUIC Initials (tests/data/quic-initials/) mutated: bytes, lengths,
                    versions, connection IDs, packet types, truncated, extended, duplicated
  quic_storm        the real Initials replayed at once from many fresh source ports
                    (counted per datagram); a replay carries its capture's connection ID,
                    so the server routes it to the connection the first copy opened
  quic_fresh_storm  Initials with fresh connection IDs (built by aioquic) sent at once from
                    fresh source ports and abandoned: real handshakes the server starts and
                    must time out (counted per connection)
  tls_hello         a real ClientHello (Python ssl) truncated, mutated or split in 1-byte
                    records, then a FIN or a reset
  tls_garbage       random bytes, records of random type, version and length
  tls_absurd        valid record headers announcing absurd lengths, with short bodies
  tls_after         a valid handshake (trusting the test CA) and one exact echo, then random
                    bytes, a half-close, or a reset
  tcp_random        random bytes to the TCP listener, then a half-close or a reset
  tcp_storm/tls_storm
                    N connections opened at once and reset at once (SO_LINGER 0),
                    some after a first flight (counted per connection)

Usage:
  netfuzz.py --host 127.0.0.1 --tcp P --udp P --tls P --quic P --ca CA.pem
             --initials DIR [--seconds S] [--seed N] [--rate ACTIONS_PER_SEC]

Prints `netfuzz seed N` on stderr at once (run again with --seed N to repeat the same
choices; only the keys and connection IDs aioquic draws for quic_fresh_storm differ), and one JSON object on stdout at the end: what was sent, per kind, and the
anomalies seen from the outside (a UDP reply that is not an echo, a TLS echo that differs).
Exit status 0 when it ran to the end, 1 when it saw an anomaly, 2 on bad arguments.
"""

import argparse
import collections
import json
import os
import random
import select
import socket
import ssl
import struct
import sys
import time

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

# The largest UDP payload over IPv4.
MAX_DATAGRAM = 65507
# Each wait for the server (a connect, an echo, its close) ends after this; a server that
# needs longer is slow, which the well-behaved client's p99 shows.
WAIT = 2.0
# Pending UDP requests remembered per source, to match replies against; beyond this the
# oldest are forgotten and a late reply to them counts as unmatched only if it never fits.
PENDING_LIMIT = 4096

# Each kind of action and how often it is chosen, relative to the others.
KINDS = {
    "udp_random": 26,
    "quic_random": 10,
    "quic_mutated": 26,
    "quic_storm": 2,
    "quic_fresh_storm": 1,
    "tls_hello": 8,
    "tls_garbage": 8,
    "tls_absurd": 4,
    "tls_after": 6,
    "tcp_random": 6,
    "tcp_storm": 2,
    "tls_storm": 2,
}

# QUIC versions a mutated Initial may claim: v1, v2, draft-29, a reserved "greasing" one
# (forces version negotiation), 0 (itself a version negotiation packet).
QUIC_VERSIONS = [0x00000001, 0x6B3343CF, 0xFF00001D, 0x1A2A3A4A, 0x00000000]


def lingerless_close(sock):
    """Closes with a reset (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def read_until_closed(sock, limit=WAIT):
    """Reads whatever comes until the peer closes or `limit` seconds pass; bytes read."""
    deadline = time.monotonic() + limit
    total = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return total
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return total
        if not chunk:
            return total
        total += len(chunk)


class Fuzzer:
    """One seeded run: the sockets, the seeds and the tallies."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.sent = collections.Counter()
        self.bytes = collections.Counter()
        self.info = collections.Counter()
        self.anomalies = []
        # The largest datagram sent to the UDP listener: no reply may be larger.
        self.max_sent_udp = 0
        self.initials = self.load_initials(args.initials)
        self.tls = ssl.create_default_context(cafile=args.ca)
        self.quic = QuicConfiguration(
            is_client=True, alpn_protocols=["echo"], server_name="localhost", verify_mode=ssl.CERT_NONE
        )
        self.hellos = [self.client_hello() for _ in range(4)]
        # Sources on several loopback addresses, bound once: (socket, pending echoes).
        self.udp_sources = [self.udp_source() for _ in range(24)]
        self.quic_sources = [self.udp_source() for _ in range(24)]

    # ---------------------------------------------------------------- set-up

    def load_initials(self, folder):
        """The captured first flights: {name: [datagram, ...]} from NAME.N.bin files."""
        flights = collections.defaultdict(list)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".bin"):
                with open(os.path.join(folder, name), "rb") as f:
                    flights[name.rsplit(".", 2)[0]].append(f.read())
        if not flights:
            raise SystemExit(f"error: no *.bin Initials in {folder}")
        return [flights[k] for k in sorted(flights)]

    def client_hello(self):
        """The first flight of a real TLS client (a ClientHello record), via a memory BIO."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        conn = self.tls.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            conn.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outgoing.read()

    def loopback_address(self):
        """A random 127.x.y.z address other than the network and broadcast ones."""
        r = self.rng
        return f"127.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def udp_source(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.loopback_address(), 0))
        sock.setblocking(False)
        return sock, collections.OrderedDict()

    # ---------------------------------------------------------------- helpers

    def count(self, kind, payload_len):
        self.sent[kind] += 1
        self.bytes[kind] += payload_len

    def anomaly(self, what):
        if len(self.anomalies) < 50:
            self.anomalies.append(what)
        self.info["anomalies"] += 1

    def random_size(self):
        """Mostly small, sometimes one MTU, now and then up to the largest datagram."""
        r = self.rng.random()
        if r < 0.5:
            return self.rng.randrange(0, 65)
        if r < 0.85:
            return self.rng.randrange(65, 1501)
        if r < 0.97:
            return self.rng.randrange(1501, 9001)
        return self.rng.randrange(9001, MAX_DATAGRAM + 1)

    def dial(self, port):
        sock = socket.create_connection((self.args.host, port), timeout=WAIT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def finish(self, sock):
        """Ends a stream connection: a reset, or a FIN and a bounded read of the server's
        answer and close."""
        if self.rng.random() < 0.5:
            lingerless_close(sock)
            self.info["closed_by_reset"] += 1
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock)
        except OSError:
            pass
        sock.close()
        self.info["closed_by_fin"] += 1

    # ---------------------------------------------------------------- UDP and QUIC

    def drain_udp(self):
        """Reads every reply waiting at the UDP sources and checks each is an echo."""
        for sock, pending in self.udp_sources:
            while True:
                try:
                    reply = sock.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                self.info["udp_replies"] += 1
                self.info["udp_reply_bytes"] += len(reply)
                if pending.get(reply, 0) > 0:
                    pending[reply] -= 1
                    if pending[reply] == 0:
                        del pending[reply]
                elif len(reply) > self.max_sent_udp:
                    self.anomaly(f"UDP reply of {len(reply)} bytes is larger than any request")
                else:
                    # Forgotten (beyond PENDING_LIMIT) or never sent; only the first is fine.
                    self.info["udp_replies_unmatched"] += 1

    def drain_quic(self):
        for sock, _ in self.quic_sources:
            while True:
                try:
                    reply = sock.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                self.info["quic_replies"] += 1
                self.info["quic_reply_bytes"] += len(reply)

    def udp_random(self):
        sock, pending = self.rng.choice(self.udp_sources)
        payload = self.rng.randbytes(self.random_size())
        try:
            sock.sendto(payload, (self.args.host, self.args.udp))
        except OSError as err:
            self.info[f"udp_send_error_{err.errno}"] += 1
            return
        self.max_sent_udp = max(self.max_sent_udp, len(payload))
        pending[payload] = pending.get(payload, 0) + 1
        pending.move_to_end(payload)
        while len(pending) > PENDING_LIMIT:
            pending.popitem(last=False)
            self.info["udp_pending_forgotten"] += 1
        self.count("udp_random", len(payload))

    def quic_send(self, kind, payload, times=1):
        sock, _ = self.rng.choice(self.quic_sources)
        for _ in range(times):
            try:
                sock.sendto(payload, (self.args.host, self.args.quic))
            except OSError as err:
                self.info[f"quic_send_error_{err.errno}"] += 1
                return
            self.count(kind, len(payload))

    def quic_random(self):
        payload = bytearray(self.rng.randbytes(self.random_size()))
        if payload and self.rng.random() < 0.5:
            # Look like a long-header Initial (or, with the top bit clear, a short header).
            payload[0] = self.rng.choice([0xC0, 0xC3, 0x40, 0x5F]) | (payload[0] & 0x0F)
        self.quic_send("quic_random", bytes(payload))

    def mutate_initial(self, packet):
        """One to four field-aware or blind mutations of a long-header packet."""
        p = bytearray(packet)
        for _ in range(self.rng.randrange(1, 5)):
            choice = self.rng.randrange(9)
            if choice == 0 and len(p) >= 5:  # another version
                p[1:5] = struct.pack(">I", self.rng.choice(QUIC_VERSIONS + [self.rng.getrandbits(32)]))
            elif choice == 1 and len(p) >= 6:  # destination CID length, 0..255
                p[5] = self.rng.choice([0, 1, 8, 20, 21, 255, self.rng.randrange(256)])
            elif choice == 2 and len(p) >= 6:  # destination CID bytes
                dcid = p[5]
                for i in range(6, min(6 + dcid, len(p))):
                    p[i] = self.rng.randrange(256)
            elif choice == 3 and len(p) >= 7:  # source CID length
                at = 6 + p[5]
                if at < len(p):
                    p[at] = self.rng.choice([0, 20, 21, 255, self.rng.randrange(256)])
            elif choice == 4 and p:  # packet type and fixed bit
                p[0] = self.rng.randrange(256)
            elif choice == 5 and p:  # truncate
                del p[self.rng.randrange(len(p)) :]
            elif choice == 6:  # extend with garbage or another Initial (coalesced)
                extra = self.rng.choice(self.rng.choice(self.initials))
                p += self.rng.choice([self.rng.randbytes(self.rng.randrange(1, 200)), extra])
            elif choice == 7 and p:  # blind byte changes anywhere
                for _ in range(self.rng.randrange(1, 9)):
                    p[self.rng.randrange(len(p))] = self.rng.randrange(256)
            elif choice == 8 and len(p) >= 8:  # a length varint (token or payload) made absurd
                at = self.rng.randrange(6, len(p) - 1)
                p[at : at + 2] = self.rng.choice([b"\x7f\xff", b"\xbf\xff", b"\x40\x00", b"\xff\xff"])
        return bytes(p[:MAX_DATAGRAM])

    def quic_mutated(self):
        packet = self.rng.choice(self.rng.choice(self.initials))
        times = self.rng.choice([1, 1, 1, 2, 5])  # duplicated now and then
        self.quic_send("quic_mutated", self.mutate_initial(packet), times)

    def quic_storm(self):
        """Real first flights replayed at once from fresh source ports, then abandoned."""
        socks = []
        for _ in range(self.args.storm):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.loopback_address(), 0))
                for datagram in self.rng.choice(self.initials):
                    sock.sendto(datagram, (self.args.host, self.args.quic))
                    self.count("quic_storm", len(datagram))
            except OSError as err:
                self.info[f"quic_send_error_{err.errno}"] += 1
            socks.append(sock)
        for sock in socks:
            sock.close()

    def quic_fresh_storm(self):
        """A first flight per connection with its own connection IDs, each from a fresh source
        port that is closed at once: a handshake the server starts and nobody finishes."""
        socks = []
        for _ in range(self.args.fresh_storm):
            client = QuicConnection(configuration=self.quic)
            client.connect((self.args.host, self.args.quic), now=time.monotonic())
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.loopback_address(), 0))
                flight = client.datagrams_to_send(now=time.monotonic())
                for datagram, _ in flight:
                    sock.sendto(datagram, (self.args.host, self.args.quic))
                self.count("quic_fresh_storm", sum(len(d) for d, _ in flight))
            except OSError as err:
                self.info[f"quic_send_error_{err.errno}"] += 1
            socks.append(sock)
        for sock in socks:
            sock.close()

    # ---------------------------------------------------------------- TLS and TCP

    def tls_hello(self):
        hello = self.rng.choice(self.hellos)
        how = self.rng.randrange(3)
        if how == 0:  # truncated anywhere, the record header included
            payload = hello[: self.rng.randrange(len(hello))]
        elif how == 1:  # mutated bytes
            p = bytearray(hello)
            for _ in range(self.rng.randrange(1, 9)):
                p[self.rng.randrange(len(p))] = self.rng.randrange(256)
            payload = bytes(p)
        else:  # the handshake message split into 1-byte records (legal), maybe cut short
            body = hello[5:]
            records = b"".join(hello[:3] + b"\x00\x01" + body[i : i + 1] for i in range(len(body)))
            payload = records[: self.rng.randrange(len(records) + 1)]
        self.stream_send("tls_hello", self.args.tls, payload)

    def tls_garbage(self):
        if self.rng.random() < 0.4:
            payload = self.rng.randbytes(self.rng.randrange(1, 4096))
        else:
            payload = b""
            for _ in range(self.rng.randrange(1, 6)):
                body = self.rng.randbytes(self.rng.randrange(0, 600))
                kind = self.rng.choice([20, 21, 22, 23, 24, self.rng.randrange(256)])
                version = self.rng.choice([0x0301, 0x0303, 0x0304, 0x0300, self.rng.getrandbits(16)])
                payload += struct.pack(">BHH", kind, version, len(body)) + body
        self.stream_send("tls_garbage", self.args.tls, payload)

    def tls_absurd(self):
        length = self.rng.choice([0, 2**14 + 1, 2**14 + 256, 2**14 + 2048, 2**14 + 2049, 0xFFFF])
        kind = self.rng.choice([21, 22, 23])
        payload = struct.pack(">BHH", kind, 0x0303, length) + self.rng.randbytes(self.rng.randrange(0, 64))
        self.stream_send("tls_absurd", self.args.tls, payload)

    def tcp_random(self):
        payload = self.rng.randbytes(self.rng.randrange(0, 16384))
        self.stream_send("tcp_random", self.args.tcp, payload)

    def stream_send(self, kind, port, payload):
        try:
            sock = self.dial(port)
        except OSError as err:
            self.anomaly(f"{kind}: cannot connect to port {port}: {err}")
            return
        try:
            sock.sendall(payload)
        except OSError:
            self.info[f"{kind}_closed_while_sending"] += 1
        self.count(kind, len(payload))
        self.finish(sock)

    def tls_after(self):
        """A valid handshake and one exact echo, then something a client should not do."""
        try:
            raw = self.dial(self.args.tls)
            conn = self.tls.wrap_socket(raw, server_hostname="localhost")
        except (OSError, ssl.SSLError) as err:
            self.anomaly(f"tls_after: handshake failed: {err}")
            return
        message = self.rng.randbytes(self.rng.randrange(1, 2048))
        try:
            conn.sendall(message)
            echoed = b""
            while len(echoed) < len(message):
                chunk = conn.recv(len(message) - len(echoed))
                if not chunk:
                    break
                echoed += chunk
        except (OSError, ssl.SSLError) as err:
            self.anomaly(f"tls_after: echo failed: {err}")
            conn.close()
            return
        if echoed != message:
            self.anomaly(f"tls_after: echo of {len(message)} bytes came back as {len(echoed)} different ones")
        self.info["tls_echoes_exact"] += int(echoed == message)
        how = self.rng.randrange(3)
        garbage = self.rng.randbytes(self.rng.randrange(1, 4096)) if how == 0 else b""
        try:
            if how == 0:  # raw bytes under the TLS layer: a record that cannot decrypt
                os.write(conn.fileno(), garbage)
                read_until_closed(conn)
            elif how == 1:  # TCP half-close without close_notify
                socket.socket.shutdown(conn, socket.SHUT_WR)
                read_until_closed(conn)
        except (OSError, ssl.SSLError):
            pass
        self.count("tls_after", len(message) + len(garbage))
        if how == 2:
            lingerless_close(conn)
        else:
            conn.close()

    def storm(self, kind, port):
        """`storm` connections opened at once, some with a first flight, all reset at once."""
        socks = []
        for _ in range(self.args.storm):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex((self.args.host, port))
            socks.append(sock)
        deadline = time.monotonic() + WAIT
        waiting, first_bytes = list(socks), 0
        while waiting and time.monotonic() < deadline:
            _, writable, _ = select.select([], waiting, [], max(0.0, deadline - time.monotonic()))
            for sock in writable:
                waiting.remove(sock)
                first = self.rng.choice([b"", b"hello", self.rng.choice(self.hellos)])
                try:
                    first_bytes += sock.send(first)
                except OSError:
                    pass
        self.bytes[kind] += first_bytes
        self.info[f"{kind}_not_connected"] += len(waiting)
        for sock in socks:
            lingerless_close(sock)
            self.count(kind, 0)

    def tcp_storm(self):
        self.storm("tcp_storm", self.args.tcp)

    def tls_storm(self):
        self.storm("tls_storm", self.args.tls)

    # ---------------------------------------------------------------- the run

    def run(self):
        kinds = list(KINDS)
        weights = [KINDS[k] for k in kinds]
        started = time.monotonic()
        end = started + self.args.seconds
        interval = 1.0 / self.args.rate
        next_at = started
        actions = 0
        spent = collections.Counter()
        while time.monotonic() < end:
            kind = self.rng.choices(kinds, weights)[0]
            before = time.monotonic()
            getattr(self, kind)()
            spent[kind] += time.monotonic() - before
            actions += 1
            if actions % 16 == 0:
                self.drain_udp()
                self.drain_quic()
            # Paced, so that the fuzzer and the client share the CPUs rather than starve.
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            elif pause < -1.0:
                next_at = time.monotonic()
        # The last echoes in flight: a bounded wait, then what arrived is checked.
        time.sleep(0.2)
        self.drain_udp()
        self.drain_quic()
        self.info["actions"] = actions
        self.spent = {k: round(v, 2) for k, v in sorted(spent.items())}
        return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    for name in ("tcp", "udp", "tls", "quic"):
        parser.add_argument(f"--{name}", type=int, required=True, help=f"the {name} listener's port")
    parser.add_argument("--ca", required=True, help="the CA that signed the server's certificate")
    parser.add_argument("--initials", required=True, help="folder of captured QUIC Initials")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=400.0, help="actions per second, at most")
    parser.add_argument("--storm", type=int, default=64, help="connections per storm")
    parser.add_argument(
        "--fresh-storm", type=int, default=8, help="handshakes per storm of fresh QUIC Initials"
    )
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    print(f"netfuzz seed {args.seed}", file=sys.stderr, flush=True)
    fuzzer = Fuzzer(args)
    elapsed = fuzzer.run()
    report = {
        "seed": args.seed,
        "seconds": round(elapsed, 1),
        "sent": dict(sorted(fuzzer.sent.items())),
        "bytes": dict(sorted(fuzzer.bytes.items())),
        "info": dict(sorted(fuzzer.info.items())),
        "seconds_per_kind": fuzzer.spent,
        "anomalies": fuzzer.anomalies,
    }
    print(json.dumps(report, indent=1))
    sys.exit(1 if fuzzer.info["anomalies"] else 0)


if __name__ == "__main__":
    main()
