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
    ("16 KiB MB/s (4 conns × 2)", "throughput", "mb_per_s", "{:.0f}"),
    ("server CPU", "throughput", "server_cpu", "{:.2f}"),
    ("client CPU", "throughput", "client_cpu", "{:.2f}"),
    ("setups/s", "setup", "per_s", "{:.0f}"),
    ("setup p50 µs", "setup", "p50_us", "{:.0f}"),
    ("idle KiB/conn", "idle", "bytes_per_conn", "{:.1f}"),
]

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
servers = list(dict.fromkeys(r["server"] for r in rows))
rounds = len({r["round"] for r in rows})
print(f"Medians over {rounds} rounds; highest 1-minute load average seen: "
      f"{max(r['load1'] for r in rows):.2f}.\n")
print("| server | " + " | ".join(c[0] for c in COLUMNS) + " |")
print("|---" * (len(COLUMNS) + 1) + "|")
for server in servers:
    cells = []
    for _, mode, field, fmt in COLUMNS:
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
