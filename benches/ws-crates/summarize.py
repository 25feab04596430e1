#!/usr/bin/env python3
"""Medians over the rounds of benches/ws-crates/run.sh's raw JSON lines, as one Markdown table.

    python3 benches/ws-crates/summarize.py benches/results/ws-crates-raw.jsonl
"""
import json
import statistics
import sys

COLUMNS = [
    # (header, mode, field, format)
    ("64 B RTT p50 µs", "latency", "p50_us", "{:.1f}"),
    ("64 B RTT p99 µs", "latency", "p99_us", "{:.1f}"),
    ("server CPU µs / 64 B echo", "latency", "server_us_per_op", "{:.1f}"),
    ("16 KiB MB/s (4 conns × 2)", "throughput", "mb_per_s", "{:.0f}"),
    ("server CPU µs / 16 KiB echo", "throughput", "server_us_per_op", "{:.1f}"),
    ("server, client CPU share", "throughput", ("server_cpu", "client_cpu"), "{:.2f}"),
    ("setups/s", "setup", "per_s", "{:.0f}"),
    ("setup p50 µs", "setup", "p50_us", "{:.0f}"),
    ("server CPU µs / setup", "setup", "server_us_per_op", "{:.0f}"),
    ("idle KiB/conn", "idle", "bytes_per_conn", "{:.1f}"),
]

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
servers = list(dict.fromkeys(r["server"] for r in rows))
rounds = len({r["round"] for r in rows})
foreign = [r["foreign_cpu"] for r in rows if r.get("foreign_cpu") is not None]
quiet = sum(1 for f in foreign if f <= 0.10)
print(f"Medians over {rounds} rounds (lowest–highest in brackets). CPU used by anything but the "
      f"server and the client during a measurement: median {statistics.median(foreign):.2f}, "
      f"highest {max(foreign):.2f} of a CPU; {quiet} of {len(foreign)} timed measurements had "
      f"at most 0.10; measurements repeated because of it: "
      f"{sum(r.get('tries', 1) - 1 for r in rows)}.\n")
print("| server | " + " | ".join(c[0] for c in COLUMNS) + " |")
print("|---" * (len(COLUMNS) + 1) + "|")
for server in servers:
    cells = []
    for _, mode, field, fmt in COLUMNS:
        if isinstance(field, tuple):
            pair = [[r[f] for r in rows if r["server"] == server and r["mode"] == mode
                     and r.get(f) is not None] for f in field]
            cells.append(", ".join(fmt.format(statistics.median(v)) if v else "–" for v in pair))
            continue
        values = [r[field] for r in rows if r["server"] == server and r["mode"] == mode
                  and r.get(field) is not None]
        if field == "bytes_per_conn":
            values = [v / 1024 for v in values]
        if not values:
            cells.append("–")
            continue
        spread = f" ({fmt.format(min(values))}–{fmt.format(max(values))})" if len(values) > 1 else ""
        cells.append(fmt.format(statistics.median(values)) + (spread if mode != "idle" else ""))
    print(f"| {server} | " + " | ".join(cells) + " |")
