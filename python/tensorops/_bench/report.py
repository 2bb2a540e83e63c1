"""Tables, JSON and the ratio chart for a finished run.

Table cells: tensorops' median time per call and its rate (GB/s or GFLOP/s), its share
of the same-footprint ``np.copyto`` bandwidth for memory-bound cases, then per peer its
median time and ``peer / tensorops`` (above 1: tensorops is faster), and last, for
families whose cases declare ``extra`` numbers, those numbers. A cell that could
not be measured says ``n/a`` or ``ERROR``; the reasons follow the table.
"""
from __future__ import annotations

import json
from typing import Optional

from .peers import PEERS

_PEER_LABEL = {"numpy": "numpy", "torch": "torch", "onnxruntime": "onnxruntime"}


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} us"
    return f"{seconds * 1e9:.3g} ns"


def _number(value: Optional[float], suffix: str = "") -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}{suffix}"
    return f"{value:.3g}{suffix}"


def _time_cell(result: dict, check: Optional[dict]) -> str:
    if result["status"] != "ok":
        return "ERROR" if result["status"] == "error" else "n/a"
    cell = format_seconds(result["median_s"])
    return cell + " WRONG" if check is not None and not check["ok"] else cell


def _peer_cell(result: dict, peer_ratio: Optional[float], check: Optional[dict]) -> str:
    cell = _time_cell(result, check)
    if peer_ratio is not None:
        cell += f" {peer_ratio:5.2f}x"
    return cell


def _families(entries: list) -> dict:
    grouped = {}
    for entry in entries:
        grouped.setdefault(entry["family"], []).append(entry)
    return grouped


def _extra_cell(extra: Optional[dict]) -> str:
    """A case's extra numbers as ``name value`` pairs; ``*_bytes`` ones in MiB."""
    if not extra:
        return "-"
    cells = []
    for name, value in extra.items():
        if name.endswith("_bytes"):
            cells.append(f"{name[:-len('_bytes')]} {value / 2**20:.3g} MiB")
        else:
            cells.append(f"{name} {_number(value)}")
    return ", ".join(cells)


def format_tables(entries: list, dtype: str) -> str:
    header = ["case", "thr", "unit", "tensorops", "rate", "%copy", "copy GB/s", *(f"{_PEER_LABEL[p]} (x)" for p in PEERS)]
    blocks = []
    for family, members in _families(entries).items():
        rows = []
        notes = []
        # A family whose cases report extra numbers (conv: workspace memory) gets a last column.
        with_extra = any("extra" in run["results"]["tensorops"] for entry in members for run in entry["runs"])
        for entry in members:
            for run in entry["runs"]:
                tops = run["results"]["tensorops"]
                copy = run.get("copy")
                checks = run.get("checks", {})
                rows.append([
                    entry["name"],
                    str(run["threads"]),
                    entry["unit"],
                    _time_cell(tops, checks.get("tensorops")),
                    _number(tops.get("rate")),
                    _number(tops.get("pct_copy"), "%"),
                    _number(copy["rate"]) if copy else "-",
                    *(_peer_cell(run["results"][p], run["ratios"][p], checks.get(p)) for p in PEERS),
                    *([_extra_cell(tops.get("extra"))] if with_extra else []),
                ])
                for name, result in run["results"].items():
                    if result["status"] != "ok":
                        notes.append(f"{entry['name']}: {name} {result['status']}: {result['reason']}")
                for name, check in checks.items():
                    if not check["ok"]:
                        notes.append(f"{entry['name']} at {run['threads']} threads: the {name} result differs from {run['check_reference']}'s: {check['detail']}")
        columns = header + ["tensorops extra"] if with_extra else header
        widths = [max(len(r[i]) for r in [columns] + rows) for i in range(len(columns))]
        left_aligned = {0, 2, len(header)}

        def line(cells):
            return "  ".join(c.ljust(w) if i in left_aligned else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [f"== {family} ({dtype}) ==", line(columns), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        # Each distinct reason once: the same absence repeats at every thread count.
        out += [f"  note: {n}" for n in dict.fromkeys(notes)]
        blocks.append("\n".join(out))
    legend = (
        "tensorops: median time per call; rate: GB/s (bytes read + written) or GFLOP/s; "
        "%copy: tensorops rate / np.copyto rate on the same footprint (NumPy copies on 1 thread);\n"
        "peer cells: median time and peer_time / tensorops_time (>1: tensorops is faster); "
        "WRONG: the result differs from torch's (or NumPy's)."
    )
    return "\n\n".join(blocks + [legend])


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as stream:
        json.dump(document, stream, indent=1, default=str)
        stream.write("\n")


def plot_unavailable_reason() -> Optional[str]:
    """Why ``--plot`` cannot work here, or None when matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"--plot needs matplotlib, which is not importable here ({type(exc).__name__}: {exc}); install it with `pip install matplotlib` (or the [bench] extra)"
    return None


def plot_ratios(entries: list, path: str) -> None:
    """One panel per thread count; one bar group per case, one bar per peer, on a log
    axis with the parity line at 1 (bars above it: tensorops is faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thread_counts = sorted({run["threads"] for e in entries for run in e["runs"]})
    width = 0.8 / len(PEERS)
    fig, axes = plt.subplots(len(thread_counts), 1, figsize=(max(8.0, 0.55 * len(entries) + 2), 3.8 * len(thread_counts)), squeeze=False)
    for axis, threads in zip(axes[:, 0], thread_counts):
        runs = [next((r for r in e["runs"] if r["threads"] == threads), None) for e in entries]
        labels = [e["name"] if run and run["results"]["tensorops"]["status"] == "ok" else f"{e['name']} (n/a)" for e, run in zip(entries, runs)]
        shown = []
        for slot, peer in enumerate(PEERS):
            xs, ys = [], []
            for position, run in enumerate(runs):
                value = run["ratios"].get(peer) if run else None
                if value is not None:
                    xs.append(position + (slot - (len(PEERS) - 1) / 2) * width)
                    ys.append(value)
            shown += ys
            # Bars grow from the parity line, up when tensorops is faster, down when slower.
            axis.bar(xs, [y - 1.0 for y in ys], bottom=1.0, width=width, label=_PEER_LABEL[peer])
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_yscale("log")
        spread = max([1.25] + [max(v, 1.0 / v) for v in shown]) * 1.15
        axis.set_ylim(1.0 / spread, spread)
        axis.set_ylabel("peer time / tensorops time")
        axis.set_title(f"{threads} thread{'s' if threads != 1 else ''} (above 1: tensorops is faster)")
        axis.set_xticks(range(len(entries)))
        axis.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
