"""Runs the selected cases: every contender, at every thread count, in this process.

Per case the inputs are made once (outside every timed region), torch gets
``torch.from_numpy`` views of them, tensorops gets them through the case's ``prepare``
(filters packed once, as a module packs them), and the ONNX graph is built once. Then, per
thread count, inside ``pinned_threads``: a same-footprint ``np.copyto`` for memory-bound
cases (the bandwidth reference), tensorops (then the case's ``extra`` numbers), and each
peer in ``PEERS`` order. Nothing is
skipped without a recorded reason: a tensorops op that does not exist yet is ``n/a``, an
absent peer library or a peer form that the case does not declare is ``n/a`` with its
reason, and anything that raises is an ``error`` with the exception text. Every
result of the warm-up calls is also compared with torch's (or NumPy's), so a fast wrong
answer, from tensorops or from a mis-declared peer, cannot pass for a fast right one.
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .case import Case, op
from .peers import PEERS, missing_reason, onnx_session, optional_import, pinned_threads, to_numpy, to_torch
from .timing import measure, measure_in_turns, measure_side_by_side, rate, ratio

CONTENDERS = ("tensorops",) + PEERS
# Every result is compared with the first of these that ran: this catches a wrong
# tensorops kernel and a mis-declared peer alike.
CHECK_REFERENCES = ("torch", "numpy")
CHECK_RTOL = 1e-3
CHECK_ATOL_SCALE = 1e-4


# About a minute and a half for every case at 1 and 2 threads on a 2-core machine.
DEFAULT_REPEAT = 7
DEFAULT_MIN_TIME_S = 0.4


@dataclass(frozen=True)
class Settings:
    threads: tuple
    min_repeat: int = DEFAULT_REPEAT
    min_time: float = DEFAULT_MIN_TIME_S
    dtype: str = "float32"


@dataclass
class _Contender:
    name: str
    fn: Optional[Callable] = None
    inputs: tuple = ()
    status: str = "ok"
    reason: str = ""
    onnx_model: bytes = b""


class Libraries:
    """tensorops and whichever peers import, loaded once per run."""

    def __init__(self) -> None:
        import tensorops

        self.tensorops = tensorops
        self.numpy = np
        self.torch = optional_import("torch")
        self.onnx = optional_import("onnx")
        self.onnxruntime = optional_import("onnxruntime")
        self.threadpoolctl = optional_import("threadpoolctl")

    def pinned(self, threads: int):
        return pinned_threads(threads, self.tensorops, self.torch, self.threadpoolctl)


def _resolve(declared, module, library: str) -> tuple:
    """``(fn, status, reason)`` for a peer declared as an ``op``, a callable or None."""
    if declared is None:
        return None, "n/a", f"the case declares no {library} form"
    if isinstance(declared, op):
        fn = declared.resolve(module)
        if fn is None:
            return None, "error", f"{library} has no callable {declared.path!r}"
        return fn, "ok", ""
    return declared, "ok", ""


def _contenders(case: Case, inputs: tuple, libs: Libraries) -> dict:
    found = {}
    fn = case.tensorops.resolve(libs.tensorops) if isinstance(case.tensorops, op) else case.tensorops
    if fn is None:
        found["tensorops"] = _Contender("tensorops", status="n/a", reason=f"tensorops.{case.tensorops.path} does not exist yet")
    else:
        try:
            prepared = case.prepare(inputs) if case.prepare is not None else inputs
            found["tensorops"] = _Contender("tensorops", fn, prepared)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            found["tensorops"] = _Contender("tensorops", status="error", reason=f"preparing its inputs: {_describe(exc)}")

    fn, status, reason = _resolve(case.numpy, np, "NumPy")
    found["numpy"] = _Contender("numpy", fn, inputs, status, reason)

    if libs.torch is None:
        found["torch"] = _Contender("torch", status="n/a", reason=missing_reason("torch"))
    else:
        fn, status, reason = _resolve(case.torch, libs.torch, "torch")
        torch_inputs = to_torch(libs.torch, inputs) if fn is not None else ()
        found["torch"] = _Contender("torch", fn, torch_inputs, status, reason)

    if case.onnx is None:
        found["onnxruntime"] = _Contender("onnxruntime", status="n/a", reason="the case declares no ONNX graph")
    elif libs.onnx is None or libs.onnxruntime is None:
        absent = "onnx" if libs.onnx is None else "onnxruntime"
        found["onnxruntime"] = _Contender("onnxruntime", status="n/a", reason=missing_reason(absent))
    else:
        try:
            model, feeds = case.onnx(inputs)
            # The session is made per thread count; keep the serialised graph and feeds.
            found["onnxruntime"] = _Contender("onnxruntime", inputs=(feeds,), onnx_model=model.SerializeToString())
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            found["onnxruntime"] = _Contender("onnxruntime", status="error", reason=f"building the ONNX graph: {_describe(exc)}")
    return found


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _bound_call(contender: _Contender, libs: Libraries, threads: int) -> Callable:
    if contender.name == "onnxruntime":
        session = onnx_session(libs.onnxruntime, contender.onnx_model, threads)
        (feeds,) = contender.inputs
        return functools.partial(session.run, None, feeds)
    return functools.partial(contender.fn, *contender.inputs)


def _copy_reference(array_bytes: int, dtype, settings: Settings) -> dict:
    """``np.copyto`` between two arrays of ``array_bytes`` each (one read and one write
    of the case's footprint); NumPy copies on one thread whatever the pinned count."""
    elements = max(1, array_bytes // np.dtype(dtype).itemsize)
    source = np.ones(elements, dtype)
    target = np.empty_like(source)
    measured, _ = measure(functools.partial(np.copyto, target, source), settings.min_repeat, settings.min_time)
    moved = 2 * source.nbytes
    return {
        "impl": "numpy.copyto",
        "threads_used": 1,
        "array_bytes": source.nbytes,
        "bytes_moved": moved,
        **measured.as_dict(),
        "rate": rate(moved, measured.median),
    }


def _compare(result, reference, shapes_only: bool = False) -> dict:
    try:
        got, want = to_numpy(result), to_numpy(reference)
        got_parts = got if isinstance(got, list) else [got]
        want_parts = want if isinstance(want, list) else [want]
        if len(got_parts) != len(want_parts):
            return {"ok": False, "detail": f"{len(got_parts)} results, reference has {len(want_parts)}"}
        worst = 0.0
        for g, w in zip(got_parts, want_parts):
            if g.shape != w.shape:
                return {"ok": False, "detail": f"shape {list(g.shape)}, reference {list(w.shape)}"}
            if g.size == 0 or shapes_only:
                continue
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            scale = float(np.nanmax(np.abs(w64))) if np.isfinite(w64).any() else 1.0
            if not np.allclose(g64, w64, rtol=CHECK_RTOL, atol=CHECK_ATOL_SCALE * (1.0 + scale), equal_nan=True):
                diff = float(np.nanmax(np.abs(g64 - w64)))
                return {"ok": False, "max_abs_diff": diff, "detail": f"values differ (max abs diff {diff:.3g})"}
            worst = max(worst, float(np.nanmax(np.abs(g64 - w64))))
        return {"ok": True, "max_abs_diff": worst}
    except Exception as exc:  # noqa: BLE001 - a failed comparison is reported
        return {"ok": False, "detail": f"comparison failed: {_describe(exc)}"}


def _measure_contenders(calls: dict, threads: int, settings: Settings) -> dict:
    """One thread: side by side, in rounds (timing.measure_side_by_side). More threads: in
    turns with a pause before each (timing.measure_in_turns), since a library's workers keep
    spinning on the cores for a while after its call and would slow whichever ran next."""
    if threads == 1:
        return measure_side_by_side(calls, settings.min_repeat, settings.min_time)
    return measure_in_turns(calls, settings.min_repeat, settings.min_time)


def _run_at(case: Case, contenders: dict, work, threads: int, libs: Libraries, settings: Settings, copies: dict) -> dict:
    run = {"threads": threads, "results": {}, "ratios": {}}
    results = run["results"]
    outputs = {}
    with libs.pinned(threads):
        copy = None
        if case.memory_bound:
            key = (threads, int(work) // 2)
            if key not in copies:
                copies[key] = _copy_reference(key[1], settings.dtype, settings)
            copy = copies[key]
            run["copy"] = copy
        calls = {}
        for name in CONTENDERS:
            contender = contenders[name]
            if contender.status != "ok":
                results[name] = {"status": contender.status, "reason": contender.reason}
                continue
            try:
                calls[name] = _bound_call(contender, libs, threads)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                results[name] = {"status": "error", "reason": _describe(exc)}
        if "tensorops" in calls and case.mark is not None:
            case.mark()
        timed = _measure_contenders(calls, threads, settings)
        for name in CONTENDERS:
            if name not in timed:
                continue
            if isinstance(timed[name], Exception):
                results[name] = {"status": "error", "reason": _describe(timed[name])}
                continue
            measured, output = timed[name]
            entry = {"status": "ok", **measured.as_dict()}
            if name == "tensorops" and case.extra is not None:
                entry["extra"] = case.extra()
            if work is not None:
                entry["rate"] = rate(work, measured.median)
                if copy is not None:
                    entry["pct_copy"] = 100.0 * entry["rate"] / copy["rate"]
            results[name] = entry
            outputs[name] = output
    run["results"] = results = {name: results[name] for name in CONTENDERS}
    base = results["tensorops"].get("median_s")
    for peer in PEERS:
        run["ratios"][peer] = ratio(results[peer].get("median_s"), base)
    reference = next((name for name in CHECK_REFERENCES if name in outputs), None)
    if reference is not None:
        run["check_reference"] = reference
        run["checks"] = {name: _compare(output, outputs[reference], case.random)
                         for name, output in outputs.items() if name != reference}
    return run


def run_cases(cases: list, settings: Settings, libs: Optional[Libraries] = None, progress=None) -> list:
    """Measures every case at every thread count; returns one dict per case."""
    libs = libs or Libraries()
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    dtype = np.dtype(settings.dtype)
    copies = {}
    entries = []
    for index, case in enumerate(cases, 1):
        started = time.perf_counter()
        inputs = case.setup(dtype)
        work = case.work(inputs)
        contenders = _contenders(case, inputs, libs)
        entry = {
            "name": case.name,
            "family": case.family,
            "unit": case.unit,
            "bytes_moved": work if case.bytes_moved is not None else None,
            "flops": work if case.flops is not None else None,
            "runs": [],
        }
        for threads in settings.threads:
            entry["runs"].append(_run_at(case, contenders, work, threads, libs, settings, copies))
        entries.append(entry)
        progress(f"[{index}/{len(cases)}] {case.name}: {time.perf_counter() - started:.1f} s")
        del inputs, contenders
    return entries


def errors_in(entries: list) -> list:
    """``(case, threads, contender, reason)`` for every error, wrong result included."""
    found = []
    for entry in entries:
        for run in entry["runs"]:
            for name, result in run["results"].items():
                if result["status"] == "error":
                    found.append((entry["name"], run["threads"], name, result["reason"]))
            for name, check in run.get("checks", {}).items():
                if not check["ok"]:
                    found.append((entry["name"], run["threads"], name, f"result differs from {run['check_reference']}'s: {check['detail']}"))
    return found
