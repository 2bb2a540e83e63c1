#!/usr/bin/env python
"""Condenses a `python -m tensorops bench --json FILE` run into the Markdown table the README
shows: one row per case, tensorops' rate and its ratio to each peer at each thread count.

    python tools/bench_summary.py docs/bench.json > docs/bench-summary.md
"""
from __future__ import annotations

import json
import sys

PEERS = ("torch", "onnxruntime", "numpy")


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _rate(run: dict, unit: str) -> str:
    result = run["results"]["tensorops"]
    if result.get("status") != "ok":
        return "n/a"
    if unit == "us/call":
        return f"{result['median_s'] * 1e6:.2f} us"
    rate = result.get("rate")
    return "-" if rate is None else f"{rate:.3g} {unit}"


def summary(document: dict) -> str:
    threads = sorted({run["threads"] for case in document["cases"] for run in case["runs"]})
    header = ["case"]
    for t in threads:
        header += [f"{t}t tensorops", *(f"{t}t vs {p}" for p in PEERS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in document["cases"]:
        cells = [f"`{case['name']}`"]
        runs = {run["threads"]: run for run in case["runs"]}
        for t in threads:
            run = runs.get(t)
            if run is None:
                cells += ["-"] * (1 + len(PEERS))
                continue
            cells += [_rate(run, case["unit"]), *(_ratio(run["ratios"].get(p)) for p in PEERS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as stream:
        print(summary(json.load(stream)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
