#!/usr/bin/env python3
"""The soak test of issue 20: one `echotool serve` under every kind of load at once, for a long
time, watched from outside, with a verdict.

A leak or an unbounded buffer does not show in a five-second bench; it shows as a line that
keeps rising over half an hour. So this runs one server with TCP, UDP, TLS and QUIC listeners
and, all at once: an open-loop `echotool bench` per protocol (a share of its measured peak
rate), idle connections held open (TCP, TLS, QUIC), connection churn (connect, one echo, close,
on every protocol), and a TCP and a TLS client that write and never read (the server must push
back, not buffer). Every few seconds it samples the server's RSS and open descriptors from
/proc and its counters and tokio task count from `--metrics`. It writes `soak.json` (samples,
figures, verdict) and `soak.svg` (RSS, descriptors, tasks and echo rate over time).

The verdict fails (exit 1, one `FAIL:` line per reason) when, after the warm-up, the RSS
drifts more than 5 %; when descriptors or tasks are not back to their baseline within a
bounded wait after the load stops; when any echo anywhere was altered or lost (UDP loss on
loopback counts); when an idle connection did not survive, or a never-reading client's bytes
did not all come back exact.

    benches/soak.sh [SECONDS]        # the usual entry: builds, makes certificates, runs this
    python soak.py run --seconds S --echotool BIN --certs DIR --out DIR

The roles (`idle`, `churn`, `stall`) are this same file started again as separate processes,
so that no client's Python loop slows another's. Standard library and aioquic only.
"""

import argparse
import asyncio
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

PROTOCOLS = ["tcp", "udp", "tls", "quic"]
# Allowed RSS change between the least and the most after warm-up.
RSS_DRIFT_MAX_PCT = 5.0
# The share of the load phase at the start whose samples the RSS verdict ignores: allocator
# arenas, TLS session caches and socket buffers settle in it.
WARMUP_FRACTION = 0.25
# How long descriptors and tasks may take to return to their baseline after the load stops
# (QUIC connections linger for three PTOs after closing, TCP ones not at all).
SETTLE_SECONDS = 30
# How long an echo may take before the bench counts it lost (datagrams) or its connection
# failed (streams). The soak looks for leaks and lost echoes, not latency, on machines shared
# with builds where a process may wait seconds for a CPU (the samples' lateness in soak.json
# shows how long): 30 s tells a slow echo from a lost one.
ECHO_TIMEOUT = 30
# A never-reading client may have this much in flight at most (socket buffers both ways, the
# server's one read buffer): more means the server buffers without bound.
STALL_BOUND_BYTES = 32 * 1024 * 1024


def log(*args):
    print("soak:", *args, file=sys.stderr, flush=True)


def pattern(offset, length):
    """Bytes of a stream that can be checked at any offset: byte i is i mod 251."""
    start = offset % 251
    block = bytes(range(251))
    reps = (start + length) // 251 + 1
    return (block * reps)[start:start + length]


# ------------------------------------------------------------------ clients


def tls_context(certs):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    return ctx


def quic_config(certs, idle):
    from aioquic.quic.configuration import QuicConfiguration
    config = QuicConfiguration(is_client=True, alpn_protocols=["echo"], idle_timeout=idle,
                               server_name="localhost")
    config.load_verify_locations(cafile=os.path.join(certs, "ca.pem"))
    return config


async def stream_echo(reader, writer, data):
    writer.write(data)
    await writer.drain()
    got = await reader.readexactly(len(data))
    return got == data


async def quic_echo(protocol, data):
    reader, writer = await protocol.create_stream()
    writer.write(data)
    writer.write_eof()
    got = await reader.read()
    return got == data


def udp_echo(port, data, timeout=1.0):
    """One datagram from a fresh socket; None when its echo did not come within `timeout`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            got, _ = s.recvfrom(65536)
        except TimeoutError:
            return None
        return got == data


async def open_stream(proto, port, certs):
    if proto == "tls":
        return await asyncio.open_connection("127.0.0.1", port, ssl=tls_context(certs),
                                             server_hostname="localhost")
    return await asyncio.open_connection("127.0.0.1", port)


class Tally:
    """What one role saw: echoes that came back exact, altered, lost, and failures."""

    def __init__(self):
        self.counts = {}
        self.first_error = None

    def add(self, proto, what, error=None):
        self.counts.setdefault(proto, {"ok": 0, "mismatch": 0, "lost": 0, "failed": 0})
        self.counts[proto][what] += 1
        if error and self.first_error is None:
            self.first_error = f"{proto}: {error}"

    def doc(self, **extra):
        return {"counts": self.counts, "first_error": self.first_error, **extra}


async def churn_once(proto, ports, certs, tally):
    from aioquic.asyncio import connect
    data = os.urandom(32)
    try:
        async with asyncio.timeout(5):
            if proto == "udp":
                ok = await asyncio.to_thread(udp_echo, ports["udp"], data)
                tally.add(proto, "lost" if ok is None else "ok" if ok else "mismatch")
                return
            if proto == "quic":
                async with connect("127.0.0.1", ports["quic"],
                                   configuration=quic_config(certs, 10)) as conn:
                    ok = await quic_echo(conn, data)
            else:
                reader, writer = await open_stream(proto, ports[proto], certs)
                ok = await stream_echo(reader, writer, data)
                writer.close()
                await writer.wait_closed()
            tally.add(proto, "ok" if ok else "mismatch")
    except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError,
            ssl.SSLError) as exc:
        tally.add(proto, "failed", repr(exc))


async def role_churn(args):
    """Connect, one echo, close, round-robin over the protocols, `--rate` a second."""
    ports, tally = json.loads(args.ports), Tally()
    end, period, n = time.monotonic() + args.seconds, 1.0 / args.rate, 0
    start = time.monotonic()
    while time.monotonic() < end:
        await churn_once(PROTOCOLS[n % 4], ports, args.certs, tally)
        n += 1
        await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
    return tally.doc()


async def role_idle(args):
    """Holds `--conns` connections per stream protocol open and silent, then echoes once on
    each: a connection the server dropped, or whose echo is wrong, counts against it."""
    from contextlib import AsyncExitStack

    from aioquic.asyncio import connect
    ports, tally = json.loads(args.ports), Tally()
    gate = asyncio.Semaphore(16)

    async def dial(proto, stack):
        async with gate:
            if proto != "quic":
                return proto, await open_stream(proto, ports[proto], args.certs)
            config = quic_config(args.certs, args.seconds + 120)
            conn = connect("127.0.0.1", ports["quic"], configuration=config)
            return proto, await stack.enter_async_context(conn)

    async with AsyncExitStack() as stack:
        held = await asyncio.gather(*(dial(p, stack) for _ in range(args.conns)
                                      for p in ("tcp", "tls", "quic")))
        # Every connection is open: the ramp is over, the orchestrator's warm-up may end.
        open(args.result + ".ready", "w").close()
        await asyncio.sleep(args.seconds)
        for proto, conn in held:
            data = os.urandom(48)
            try:
                async with asyncio.timeout(5):
                    ok = await (quic_echo(conn, data) if proto == "quic"
                                else stream_echo(*conn, data))
                tally.add(proto, "ok" if ok else "mismatch")
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                    ssl.SSLError) as exc:
                tally.add(proto, "failed", repr(exc))
        for proto, conn in held:
            # All at once: the exit stack would otherwise close QUIC connections one by one.
            if proto == "quic":
                conn.close()
            else:
                conn[1].close()
    return tally.doc(held=len(held))


def stall_socket(proto, port, certs):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    if proto == "tls":
        raw = tls_context(certs).wrap_socket(raw, server_hostname="localhost")
    raw.setblocking(False)
    return raw


def stall_write(sock, written):
    """Writes what the socket takes now; returns the new count."""
    while True:
        try:
            n = sock.send(pattern(written, 16384))
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return written
        written += n


def stall_read_back(sock, written, seconds=30):
    """Reads everything back and checks it; returns (bytes read, exact)."""
    got, exact, end = 0, True, time.monotonic() + seconds
    while got < written and time.monotonic() < end:
        select.select([sock], [], [], 1.0)
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            continue
        if not chunk:
            break
        exact = exact and chunk == pattern(got, len(chunk))
        got += len(chunk)
    return got, exact


def role_stall(args):
    """A TCP and a TLS client that write as fast as the server takes and never read: the
    writes must stop (backpressure) with a bounded amount in flight; at the end everything
    written is read back and checked."""
    ports = json.loads(args.ports)
    socks = {p: stall_socket(p, ports[p], args.certs) for p in ("tcp", "tls")}
    written = {p: 0 for p in socks}
    timeline = []
    end, start = time.monotonic() + args.seconds, time.monotonic()
    while time.monotonic() < end:
        select.select([], list(socks.values()), [], 1.0)
        for p, s in socks.items():
            written[p] = stall_write(s, written[p])
        if not timeline or time.monotonic() - timeline[-1][0] - start >= 5:
            timeline.append([round(time.monotonic() - start, 1), dict(written)])
    result = {}
    for p, s in socks.items():
        got, exact = stall_read_back(s, written[p])
        result[p] = {"written": written[p], "read_back": got, "exact": exact,
                     "bounded": written[p] <= STALL_BOUND_BYTES}
        s.close()
    return {"clients": result, "timeline": timeline}


def run_role(args):
    if args.role == "stall":
        doc = role_stall(args)
    else:
        import logging
        logging.getLogger("quic").addHandler(logging.NullHandler())
        logging.getLogger("quic").propagate = False
        doc = asyncio.run(role_churn(args) if args.role == "churn" else role_idle(args))
    with open(args.result, "w") as f:
        json.dump(doc, f)
    return 0


# ------------------------------------------------------------------ the server and its samples


def start_server(echotool, certs, out):
    certs = os.path.abspath(certs)
    cert, key = os.path.join(certs, "server.pem"), os.path.join(certs, "server-key.pem")
    secure = f'cert = "{cert}"\nkey = "{key}"\n'
    config = os.path.join(out, "soak-serve.toml")
    with open(config, "w") as f:
        f.write('[log]\nlevel = "info"\n[defaults]\nidle-timeout = 7200\n'
                '[[listener]]\nlisten = "tcp://127.0.0.1:0"\n'
                # Room for the bursts a busy, shared machine makes by descheduling the server.
                '[[listener]]\nlisten = "udp://127.0.0.1:0"\nrecv-buffer = "4M"\n'
                f'[[listener]]\nlisten = "tls://127.0.0.1:0"\n{secure}'
                f'[[listener]]\nlisten = "quic://127.0.0.1:0"\n{secure}'
                '[metrics]\nlisten = "127.0.0.1:0"\n')
    errlog = open(os.path.join(out, "soak-serve.log"), "w+")
    server = subprocess.Popen([echotool, "serve", "--config", config], stderr=errlog,
                              stdin=subprocess.DEVNULL)
    ports, metrics = {}, None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (len(ports) < 4 or metrics is None):
        if server.poll() is not None:
            break
        errlog.seek(0)
        text = errlog.read()
        ports = {m[0]: int(m[1]) for m in re.findall(r"listening on (\w+)://127\.0\.0\.1:(\d+)",
                                                     text)}
        found = re.search(r"metrics on (http://\S+/metrics)", text)
        metrics = found and found.group(1)
        time.sleep(0.05)
    if len(ports) < 4 or metrics is None:
        server.kill()
        errlog.seek(0)
        sys.exit(f"error: the server did not start:\n{errlog.read()}")
    return server, ports, metrics


def scrape(url):
    """Sums each metric family over its series, per protocol where it has one."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        name, labels, value = m.groups()
        proto = re.search(r'protocol="(\w+)"', labels or "")
        key = f"{name}:{proto.group(1)}" if proto else name
        values[key] = values.get(key, 0) + float(value)
    return values


def sample(pid, metrics, t0, phase):
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    try:
        m, scraped = scrape(metrics), True
    except (OSError, TimeoutError):
        # A scrape that times out is a finding (the server, or the machine, stalled), not
        # the end of the run: the sample says so and the counters read as zero.
        m, scraped = {}, False
    return {"t": round(time.monotonic() - t0, 2), "phase": phase, "rss_kib": rss, "fds": fds,
            "scraped": scraped,
            "tasks": int(m.get("echotool_tokio_tasks_alive", -1)),
            "messages": {p: int(m.get(f"echotool_messages_total:{p}", 0)) for p in PROTOCOLS},
            "sent_bytes": {p: int(m.get(f"echotool_sent_bytes_total:{p}", 0)) for p in PROTOCOLS},
            "open": {p: int(m.get(f"echotool_connections_open:{p}", 0))
                     for p in PROTOCOLS if p != "udp"},
            "errors": {p: int(m.get(f"echotool_errors_total:{p}", 0)) for p in PROTOCOLS},
            "udp_dropped": int(m.get("echotool_datagrams_dropped_total:udp", 0))}


def socket_inodes(pid):
    """The inodes of a process's sockets."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def udp_drops(owners, seen):
    """Adds to `seen` (inode -> [owner, drops]) the kernel's count of datagrams dropped at
    each UDP socket of `owners` (name -> pid): a full receive buffer, which no program sees."""
    by_inode = {ino: name for name, pid in owners.items() for ino in socket_inodes(pid)}
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in by_inode:
                    seen[fields[9]] = [by_inode[fields[9]], int(fields[-1])]


def bench(echotool, certs, url, extra, json_path):
    secure = ["--ca", os.path.join(certs, "ca.pem"), "--server-name", "localhost"]
    cmd = [echotool, "-q", "bench", "--target", url, "--scenario", "latency",
           "--json", json_path] + (secure if url.startswith(("tls:", "quic:")) else []) + extra
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measure_peaks(args, ports):
    """A short closed-loop run per protocol, one after another: the peak each reaches alone."""
    peaks = {}
    for p in PROTOCOLS:
        path = os.path.join(args.out, f"soak-peak-{p}.json")
        b = bench(args.echotool, args.certs, f"{p}://127.0.0.1:{ports[p]}",
                  ["--conns", "4", "--depth", "4", "--duration", f"{args.peak_seconds}s",
                   "--warmup", "1s", "--timeout", f"{ECHO_TIMEOUT}s"], path)
        _, err = b.communicate(timeout=args.peak_seconds + 60)
        if b.returncode != 0 or not os.path.exists(path):
            sys.exit(f"error: the peak run of {p} failed ({b.returncode}): {err.strip()}")
        with open(path) as f:
            peaks[p] = json.load(f)["rows"][0]["median"]["messages_per_sec"]
        log(f"peak {p}: {peaks[p]:.0f} echoes/s closed loop")
    return peaks


def bench_rows(path):
    with open(path) as f:
        doc = json.load(f)
    rows = []
    for row in doc["rows"]:
        m = row["median"]
        rows.append({k: m.get(k) for k in ("messages", "messages_per_sec", "errors",
                                           "mismatches", "lost", "late", "duplicated",
                                           "scheduled", "unsent", "first_error",
                                           "first_mismatch")}
                    | {"protocol": row["protocol"], "rate": row["rate"],
                       "interrupted": row["interrupted"], "rtt_us": m.get("rtt_us")})
    return rows, doc["findings"]


# ------------------------------------------------------------------ verdict and plot


def verdict(doc):
    fails = []
    load = [s for s in doc["samples"] if s["phase"] == "load"]
    # Warm-up ends a fixed share into the load, or once every idle connection is open if that
    # takes longer (their buffers are part of the steady state, not drift).
    warm = max(doc["load_start_t"] + WARMUP_FRACTION * doc["seconds"],
               doc["ramp_done_t"] or doc["load_end_t"])
    doc["warmup_end_t"] = warm
    after = [s for s in load if s["t"] >= warm]
    if len(after) >= 2:
        lo, hi = min(s["rss_kib"] for s in after), max(s["rss_kib"] for s in after)
        doc["rss_after_warmup_kib"] = {"min": lo, "max": hi, "first": after[0]["rss_kib"],
                                       "last": after[-1]["rss_kib"],
                                       "drift_pct": round(100.0 * (hi - lo) / lo, 2)}
        if doc["rss_after_warmup_kib"]["drift_pct"] > RSS_DRIFT_MAX_PCT:
            fails.append(f"RSS drifted {doc['rss_after_warmup_kib']['drift_pct']} % after "
                         f"warm-up ({lo} to {hi} KiB), more than {RSS_DRIFT_MAX_PCT} %")
    else:
        fails.append("fewer than two samples after warm-up: run longer")
    base, end = doc["baseline"], doc["settled"]
    for what in ("fds", "tasks"):
        if end[what] != base[what]:
            fails.append(f"{what} not back to baseline {SETTLE_SECONDS} s after the load: "
                         f"{end[what]} now, {base[what]} before")
    for row in doc["bench"]:
        for k in ("mismatches", "lost", "errors"):
            if row[k]:
                fails.append(f"bench {row['protocol']}: {row[k]} {k} "
                             f"({row['first_mismatch'] or row['first_error'] or ''})")
    for role in ("churn", "idle"):
        for proto, c in doc[role]["counts"].items():
            bad = {k: v for k, v in c.items() if k != "ok" and v}
            if bad:
                fails.append(f"{role} {proto}: {bad} ({doc[role]['first_error']})")
    for proto, c in doc["stall"]["clients"].items():
        if not (c["bounded"] and c["exact"] and c["read_back"] == c["written"]):
            fails.append(f"never-reading {proto} client: {c}")
    for p in doc["problems"]:
        fails.append(p)
    missed = sum(1 for s in doc["samples"] if not s["scraped"])
    if missed:
        fails.append(f"{missed} scrapes of /metrics went unanswered for 5 s")
    for proto, n in doc["server_errors"].items():
        if n:
            fails.append(f"server counted {n} errors on {proto}")
    if doc["server_exit"] != 0:
        fails.append(f"the server exited with status {doc['server_exit']} on SIGTERM")
    return fails


def polyline(points, x0, y0, w, h, tmax, vmax, color):
    pts = " ".join(f"{x0 + w * t / tmax:.1f},{y0 + h - h * v / vmax:.1f}" for t, v in points)
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>'


def plot(doc, path):
    """Four panels over time, hand-written SVG: RSS, descriptors, tasks, echo rate."""
    samples = doc["samples"]
    colors = {"tcp": "#1f77b4", "udp": "#ff7f0e", "tls": "#2ca02c", "quic": "#d62728"}
    rates = {p: [] for p in PROTOCOLS}
    for a, b in zip(samples, samples[1:]):
        for p in PROTOCOLS:
            echoed = max(0, b["sent_bytes"][p] - a["sent_bytes"][p])  # 0 if a scrape failed
            rates[p].append((b["t"], echoed / 1000 / (b["t"] - a["t"])))
    panels = [("RSS (MiB)", {"rss": [(s["t"], s["rss_kib"] / 1024) for s in samples]}),
              ("open descriptors", {"fds": [(s["t"], s["fds"]) for s in samples]}),
              ("tokio tasks alive", {"tasks": [(s["t"], s["tasks"]) for s in samples]}),
              ("echoed kB/s (64-byte echoes)", rates)]
    tmax = max(s["t"] for s in samples) or 1
    w, h, left, top, gap = 720, 130, 70, 40, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 110}" '
           f'height="{top + 4 * (h + gap) + 10}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">echotool soak: {doc["seconds"]} s of load, '
           f'{"PASS" if not doc["fails"] else "FAIL"}</text>']
    for i, (title, series) in enumerate(panels):
        y0 = top + i * (h + gap)
        vmax = max([v for pts in series.values() for _, v in pts] + [1]) * 1.1
        out.append(f'<rect x="{left}" y="{y0}" width="{w}" height="{h}" fill="none" '
                   'stroke="#999"/>')
        out.append(f'<text x="{left}" y="{y0 - 6}">{title}</text>')
        out.append(f'<text x="{left - 6}" y="{y0 + 10}" text-anchor="end">{vmax:.0f}</text>')
        out.append(f'<text x="{left - 6}" y="{y0 + h}" text-anchor="end">0</text>')
        step = 10 ** max(0, len(str(int(tmax))) - 1)
        for tick in range(0, int(tmax) + 1, step if tmax / step >= 3 else step // 2 or 1):
            x = left + w * tick / tmax
            out.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" text-anchor="middle" '
                       f'fill="#666">{tick}</text>')
        for t in (doc["load_start_t"], doc["load_end_t"]):
            x = left + w * t / tmax
            out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" '
                       'stroke="#bbb" stroke-dasharray="4 3"/>')
        for j, (name, pts) in enumerate(series.items()):
            if pts:
                out.append(polyline(pts, left, y0, w, h, tmax, vmax, colors.get(name, "black")))
            if len(series) > 1:
                out.append(f'<text x="{left + w + 10}" y="{y0 + 14 + 16 * j}" '
                           f'fill="{colors[name]}">{name}</text>')
    y = top + 4 * (h + gap) - gap + 32
    out.append(f'<text x="{left}" y="{y}">seconds since the server started (dashed: load '
               f'from {doc["load_start_t"]:.0f} to {doc["load_end_t"]:.0f} s)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ------------------------------------------------------------------ the run


def start_load(args, ports, peaks):
    rates = {p: max(10, int(peaks[p] * args.load / len(PROTOCOLS))) for p in PROTOCOLS}
    benches = {}
    for p in PROTOCOLS:
        path = os.path.join(args.out, f"soak-bench-{p}.json")
        benches[p] = (path, bench(args.echotool, args.certs, f"{p}://127.0.0.1:{ports[p]}",
                                  # UDP spreads its rate over more sockets: a bench client
                                  # descheduled for a moment must not overflow the receive
                                  # buffer of one socket (loss at the client is still loss).
                                  ["--conns", "16" if p == "udp" else "4",
                                   "--rate", str(rates[p]), "--timeout", f"{ECHO_TIMEOUT}s",
                                   "--duration", f"{args.seconds}s", "--warmup", "1s"], path))
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--ports", json.dumps(ports), "--certs", args.certs,
              "--seconds", str(args.seconds)]
    roles = {}
    for role, extra in (("idle", ["--conns", str(args.idle)]),
                        ("churn", ["--rate", str(args.churn_rate)]), ("stall", [])):
        result = os.path.join(args.out, f"soak-{role}.json")
        roles[role] = (result, subprocess.Popen(me + [role, "--result", result] + common + extra,
                                                stderr=subprocess.PIPE, text=True))
    return rates, benches, roles


def run(args):
    os.makedirs(args.out, exist_ok=True)
    server, ports, metrics = start_server(args.echotool, args.certs, args.out)
    t0 = time.monotonic()
    samples = []
    try:
        peaks = measure_peaks(args, ports)
        doc = soak(args, server, ports, metrics, t0, samples, peaks)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    try:
        doc["server_exit"] = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        doc["server_exit"] = "did not exit within 30 s of SIGTERM"
    times = [s["t"] for s in doc["samples"] if s["phase"] == "load"]
    doc["longest_sample_gap_s"] = round(max((b - a for a, b in zip(times, times[1:])),
                                            default=0.0), 2)
    doc["fails"] = verdict(doc)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(doc, f, indent=1)
    plot(doc, os.path.join(args.out, "soak.svg"))
    report(doc)
    return 1 if doc["fails"] else 0


def wait_settled(pid, metrics, t0, samples, baseline):
    """Samples until descriptors and tasks are back to baseline, at most SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        s = sample(pid, metrics, t0, "settle")
        samples.append(s)
        if (s["fds"], s["tasks"]) == (baseline["fds"], baseline["tasks"]) \
                or time.monotonic() > deadline:
            return s
        time.sleep(1)


def soak(args, server, ports, metrics, t0, samples, peaks):
    # The baseline: the server at rest after the peak runs, once their connections are gone.
    baseline = wait_settled(server.pid, metrics, t0, samples, {"fds": -1, "tasks": -1})
    for _ in range(20):
        time.sleep(0.5)
        baseline = sample(server.pid, metrics, t0, "baseline")
        samples.append(baseline)
        if baseline["fds"] == samples[-2]["fds"] and baseline["tasks"] == samples[-2]["tasks"]:
            break
    load_start = time.monotonic() - t0
    rates, benches, roles = start_load(args, ports, peaks)
    log(f"load for {args.seconds} s: rates {rates}, {args.idle} idle connections per stream "
        f"protocol, churn {args.churn_rate}/s, a never-reading TCP and TLS client")
    procs = [b for _, b in benches.values()] + [r for _, r in roles.values()]
    owners = {"server": server.pid, "bench udp": benches["udp"][1].pid,
              "bench quic": benches["quic"][1].pid}
    drops, ramp_done = {}, None
    deadline = time.monotonic() + args.seconds + 120
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        samples.append(sample(server.pid, metrics, t0, "load"))
        udp_drops(owners, drops)
        if ramp_done is None and os.path.exists(roles["idle"][0] + ".ready"):
            ramp_done = time.monotonic() - t0
        time.sleep(args.interval)
    for p in procs:
        if p.poll() is None:
            p.kill()
    load_end = time.monotonic() - t0
    settled = wait_settled(server.pid, metrics, t0, samples, baseline)
    rows, findings, problems = [], [], []
    for p, (path, b) in benches.items():
        _, err = b.communicate()
        if b.returncode != 0 or not os.path.exists(path):
            problems.append(f"bench {p} exited {b.returncode}: {err.strip()[-500:]}")
        if os.path.exists(path):
            r, f = bench_rows(path)
            rows += r
            findings += f
    results = {}
    for role, (path, r) in roles.items():
        _, err = r.communicate()
        try:
            with open(path) as f:
                results[role] = json.load(f)
        except OSError:
            problems.append(f"{role} exited {r.returncode}: {err.strip()[-500:]}")
            results[role] = {"counts": {}, "first_error": None, "clients": {}}
    last = samples[-1]
    return {"seconds": args.seconds, "interval_s": args.interval, "ports": ports,
            "peak_per_sec": peaks, "rates": rates, "idle_per_protocol": args.idle,
            "churn_per_sec": args.churn_rate, "load_start_t": load_start, "load_end_t": load_end,
            "ramp_done_t": ramp_done,
            "udp_socket_drops": {who: sum(d for o, d in drops.values() if o == who)
                                 for who in owners},
            "warmup_fraction": WARMUP_FRACTION, "baseline": baseline, "settled": settled,
            "bench": rows, "bench_findings": findings, "problems": problems, **results,
            "server_errors": last["errors"], "udp_dropped": last["udp_dropped"],
            "samples": samples}


def report(doc):
    for row in doc["bench"]:
        log(f"bench {row['protocol']}: {row['messages']} echoes at {row['rate']}/s, "
            f"{row['mismatches']} mismatched, {row['lost']} lost, {row['errors']} errors, "
            f"p99 {(row['rtt_us'] or {}).get('p99')} µs")
    r = doc.get("rss_after_warmup_kib")
    if r:
        log(f"RSS after warm-up: {r['first']} -> {r['last']} KiB (min {r['min']}, max "
            f"{r['max']}, drift {r['drift_pct']} %)")
    log(f"fds: baseline {doc['baseline']['fds']}, peak "
        f"{max(s['fds'] for s in doc['samples'])}, after {doc['settled']['fds']}; tasks: "
        f"baseline {doc['baseline']['tasks']}, peak {max(s['tasks'] for s in doc['samples'])}, "
        f"after {doc['settled']['tasks']}")
    log(f"the sampler's longest gap: {doc['longest_sample_gap_s']} s (asked for every "
        f"{doc['interval_s']} s; longer means this machine stalled every process)")
    log(f"datagrams dropped by the kernel at full receive buffers: {doc['udp_socket_drops']}")
    for p in doc["problems"]:
        log("problem:", p)
    for f in doc["fails"]:
        print(f"FAIL: {f}", file=sys.stderr)
    print("soak: PASS" if not doc["fails"] else "soak: FAIL", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="role", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=int, default=1800)
    r.add_argument("--echotool", required=True)
    r.add_argument("--certs", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    r.add_argument("--load", type=float, default=0.1,
                   help="share of the machine: each protocol gets peak * LOAD / 4")
    r.add_argument("--idle", type=int, default=50, help="idle connections per protocol")
    r.add_argument("--churn-rate", type=float, default=20.0, help="set-ups per second")
    r.add_argument("--peak-seconds", type=int, default=3)
    for role in ("idle", "churn", "stall"):
        s = sub.add_parser(role)
        s.add_argument("--ports", required=True)
        s.add_argument("--certs", required=True)
        s.add_argument("--seconds", type=float, required=True)
        s.add_argument("--result", required=True)
        s.add_argument("--conns", type=int, default=50)
        s.add_argument("--rate", type=float, default=20.0)
    args = ap.parse_args()
    return run(args) if args.role == "run" else run_role(args)


if __name__ == "__main__":
    sys.exit(main())
