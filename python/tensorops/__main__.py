"""``python -m tensorops info`` describes the machine and the kernels in use;
``python -m tensorops bench`` times tensorops beside NumPy, PyTorch and onnxruntime in
this one process and prints the ratios (see ``tensorops._bench``)."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys

_MAX_INT32 = 2**31 - 1  # what set_num_threads and the repeat counts hold


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= _MAX_INT32:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {_MAX_INT32}, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite non-negative number, got {text!r}")
    return value


def _output_file(text: str) -> str:
    """--json: a file that can be written, checked before minutes of measuring."""
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {folder!r} is not a writable directory")
    return text


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {exc}") from exc
    return text


def _parser() -> argparse.ArgumentParser:
    from ._bench.runner import DEFAULT_MIN_TIME_S, DEFAULT_REPEAT

    parser = argparse.ArgumentParser(prog="python -m tensorops", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, ISA, CPU features, threads and library versions")
    bench = commands.add_parser(
        "bench",
        help="time tensorops beside its peers, as ratios",
        description="Times every selected case with tensorops, NumPy, PyTorch and onnxruntime "
        "(when importable), each pinned to the same thread count. Ratios are peer_time / "
        "tensorops_time: above 1, tensorops is faster.",
    )
    bench.add_argument("--ops", type=_regex, metavar="REGEX", help="only cases whose name or family matches (re.search)")
    bench.add_argument("--threads", type=_positive_int, nargs="+", metavar="N", help="thread counts (default: 1 and the number of cores)")
    bench.add_argument("--json", type=_output_file, metavar="FILE", help="write every number and the machine description to FILE")
    bench.add_argument("--plot", metavar="FILE.png", help="bar chart of the ratios (needs matplotlib)")
    bench.add_argument("--repeat", type=_positive_int, default=DEFAULT_REPEAT, metavar="N", help=f"minimum samples per measurement (default {DEFAULT_REPEAT})")
    bench.add_argument(
        "--min-time", type=_non_negative_float, default=DEFAULT_MIN_TIME_S, metavar="S", help=f"minimum seconds of samples per measurement (default {DEFAULT_MIN_TIME_S})"
    )
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    bench.add_argument("--list", action="store_true", help="list the selected cases and exit")
    return parser


def _info() -> int:
    from ._bench.machine import format_info, machine_info

    print(format_info(machine_info()))
    return 0


def _list(cases) -> int:
    for case in cases:
        peers = [name for name, declared in (("numpy", case.numpy), ("torch", case.torch), ("onnxruntime", case.onnx)) if declared is not None]
        call = getattr(case.tensorops, "path", None)
        call = f"tensorops.{call}" if call else "a composite call"
        print(f"{case.family:10s} {case.name:40s} {case.unit:8s} {call}; peers: {', '.join(peers) or 'none'}")
    return 0


def _busy_warning(before, after, cores: int):
    """A warning when other processes ran beside the benchmark, or None.

    Before the run the 1-minute load is other processes alone; after it, it includes this
    run's own threads, so only the excess over the cores counts.
    """
    if before is None or after is None:
        return None
    if before[0] < 0.5 and after[0] <= cores + 0.5:
        return None
    return (
        f"warning: load average {before[0]} before and {after[0]} after the run on {cores} cores: other processes "
        "competed for the CPU, so the times are inflated and noisy, most at the highest thread count."
    )


def _bench(args) -> int:
    from ._bench import select_cases
    from ._bench.machine import format_peer_kernels, load_average, machine_info
    from ._bench.peers import default_thread_counts
    from ._bench.report import format_tables, plot_ratios, plot_unavailable_reason, write_json
    from ._bench.runner import Settings, errors_in, run_cases

    cases = select_cases(args.ops)
    if not cases:
        names = ", ".join(c.name for c in select_cases(None))
        print(f"bench: no case matches --ops {args.ops!r}; cases: {names}", file=sys.stderr)
        return 2
    if args.list:
        return _list(cases)
    if args.plot:
        # Refuse before minutes of measuring rather than after.
        reason = plot_unavailable_reason()
        if reason:
            print(f"bench: {reason}", file=sys.stderr)
            return 2
    threads = tuple(dict.fromkeys(args.threads)) if args.threads else tuple(default_thread_counts())
    settings = Settings(threads=threads, min_repeat=args.repeat, min_time=args.min_time, dtype=args.dtype)
    machine = machine_info()
    print(
        f"tensorops {machine['versions']['tensorops']}, ISA {machine['cpu_info']['isa']}, {len(cases)} cases, "
        f"threads {list(threads)}, dtype {args.dtype}, load average {machine['load_average']}; peers' kernels: "
        f"{format_peer_kernels(machine['peer_kernels']) or 'unknown'}",
        file=sys.stderr,
    )
    entries = run_cases(cases, settings)
    # Other processes slow some samples down; the load after the run says how busy it was.
    machine["load_average_after"] = load_average()
    print(format_tables(entries, args.dtype))
    busy = _busy_warning(machine["load_average"], machine["load_average_after"], machine["cores_available"])
    if busy:
        print(busy)
    if args.json:
        document = {
            "schema": 1,
            "machine": machine,
            "settings": {"threads": list(threads), "repeat": args.repeat, "min_time_s": args.min_time, "dtype": args.dtype, "ops": args.ops},
            "cases": entries,
        }
        write_json(args.json, document)
        print(f"bench: wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot_ratios(entries, args.plot)
        print(f"bench: wrote {args.plot}", file=sys.stderr)
    errors = errors_in(entries)
    if errors:
        print(f"bench: {len(errors)} error(s); see the notes under the tables", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "info":
        return _info()
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main())
