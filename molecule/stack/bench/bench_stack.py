#!/usr/bin/env python3
"""make bench-stack: wrk against the tuned `web` and the stock `web-stock` of one deployed stack.

Tuned = OPcache on, Redis sessions and Redis MUC application store; stock = OPcache off, file
sessions, Moodle's default file caches (same image, same database, MOODLE_PHP_PROFILE=stock).
Both are measured in this one run, alternating, and the ratios are printed.  Not a test.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = {"front page": "/", "login page": "/login/index.php"}


def wrk(url, connections, duration, threads):
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "30s",
            "-s",
            os.path.join(HERE, "wrk_report.lua"),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"BENCH rps=([\d.]+) p95_ms=([\d.]+) p50_ms=([\d.]+) requests=(\d+) errors=(\d+)", out)
    if not match:
        sys.exit("unexpected wrk output:\n" + out)
    rps, p95, p50, requests, errors = match.groups()
    return {"rps": float(rps), "p95": float(p95), "p50": float(p50), "requests": int(requests), "errors": int(errors)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tuned", default="http://127.0.0.1:8088")
    parser.add_argument("--stock", default="http://127.0.0.1:8090")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-stack installs it with apt)")
    for base in (args.tuned, args.stock):
        with urllib.request.urlopen(base + "/login/index.php", timeout=60) as response:  # noqa: S310 (http URL of the stack)
            if response.status != 200:
                sys.exit(f"{base} is not serving Moodle")
    results = {}
    for name, path in PAGES.items():
        for label, base in (("tuned", args.tuned), ("stock", args.stock)):
            print(f"warming up {label} {name} ...", flush=True)
            wrk(base + path, 4, 5, 1)
            print(f"measuring {label} {name}: {args.connections} connections, {args.duration}s ...", flush=True)
            results[(name, label)] = wrk(base + path, args.connections, args.duration, args.threads)
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    print()
    print(f"load average at the end: {' '.join(load)} on {os.cpu_count()} CPUs (other work on this machine skews the figures)")
    print(f"{'page':<11} {'config':<6} {'req/s':>10} {'p50 ms':>10} {'p95 ms':>10} {'errors':>8}")
    for (name, label), r in results.items():
        print(f"{name:<11} {label:<6} {r['rps']:>10.1f} {r['p50']:>10.1f} {r['p95']:>10.1f} {r['errors']:>8d}")
    print()
    for name in PAGES:
        tuned, stock = results[(name, "tuned")], results[(name, "stock")]
        ratio = f"{tuned['rps'] / stock['rps']:.2f}x" if stock["rps"] > 0 else "inf (stock completed no request)"
        print(
            f"{name}: tuned/stock throughput ratio {ratio}, "
            f"p95 {tuned['p95']:.0f} ms vs {stock['p95']:.0f} ms ({args.connections} connections)"
        )


if __name__ == "__main__":
    main()
