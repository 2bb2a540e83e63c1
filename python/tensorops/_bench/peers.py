"""The peer libraries, imported when present, and thread pinning for all of them.

Each measurement runs inside ``pinned_threads(n)``: tensorops and torch get ``n`` through
their own setters, and threadpoolctl (when importable) limits every native pool it knows
(OpenBLAS under NumPy, MKL and OpenMP under torch, and tensorops itself through the
controller it registers). onnxruntime takes its thread count per session, so it gets
one session per thread count (``onnx_session``).
"""
from __future__ import annotations

import contextlib
import importlib
import os

PEERS = ("numpy", "torch", "onnxruntime")

_missing_reasons = {}


def optional_import(name: str):
    """The module, or None (the reason is kept for ``missing_reason``)."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure makes the peer absent
        _missing_reasons[name] = f"{name} is not importable ({type(exc).__name__}: {exc})"
        return None


def missing_reason(name: str) -> str:
    return _missing_reasons.get(name, f"{name} is not importable")


def default_thread_counts() -> list:
    """1 and the number of cores available to this process."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return sorted({1, cores})


@contextlib.contextmanager
def pinned_threads(n: int, tops, torch=None, threadpoolctl=None):
    """Every library limited to ``n`` threads inside the block; restored after."""
    tops_before = tops.get_num_threads()
    torch_before = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        if threadpoolctl is not None:
            stack.enter_context(threadpoolctl.threadpool_limits(limits=n))
        # The explicit setters come last so that they win over threadpoolctl's view.
        tops.set_num_threads(n)
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            tops.set_num_threads(tops_before)
            if torch is not None:
                torch.set_num_threads(torch_before)


def to_torch(torch, value):
    """``torch.from_numpy`` views of NumPy inputs, recursing into lists and tuples."""
    if isinstance(value, list):
        return [to_torch(torch, v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_torch(torch, v) for v in value)
    if hasattr(value, "__array_interface__"):
        return torch.from_numpy(value)
    return value


def to_numpy(value):
    """Results of any library as NumPy arrays, recursing into tuples (torch's named
    ``(values, indices)`` pairs included) and lists."""
    import numpy as np

    if isinstance(value, (tuple, list)):
        return [to_numpy(v) for v in value]
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


def onnx_session(onnxruntime, model_bytes: bytes, threads: int):
    """A sequential CPU session with ``threads`` intra-op threads and one inter-op."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
