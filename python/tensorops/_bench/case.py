"""The declarative record of one benchmark case.

A case names the inputs (``setup``), what each library calls on them, and the work done
(bytes moved for memory-bound cases, FLOPs for compute-bound ones, neither for cases that
measure per-call overhead). Library functions are named with ``op()`` rather than taken
by reference, so a case module imports without torch or onnx, and a tensorops op that
another engineer has not merged yet resolves to ``None`` at run time instead of failing.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np


class op:
    """``op("nn.functional.gelu", approximate="none")``: a function found by its dotted
    path in whichever library module it is resolved against, called as
    ``fn(*inputs, **kwargs)``."""

    __slots__ = ("path", "kwargs")

    def __init__(self, path: str, **kwargs: Any) -> None:
        self.path = path
        self.kwargs = kwargs

    def resolve(self, module) -> Optional[Callable]:
        target = module
        for part in self.path.split("."):
            target = getattr(target, part, None)
            if target is None:
                return None
        if not callable(target):
            return None
        return functools.partial(target, **self.kwargs) if self.kwargs else target

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"op({self.path!r}{args})"


# A peer is given either as an ``op`` (resolved against torch / numpy) or as a plain
# function of that library's inputs, for calls that are not one function (a method, a
# two-step NumPy formula).
PeerCall = Union[op, Callable, None]


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    ``setup(dtype)`` returns the tuple of NumPy inputs (a list inside it stays a list, for
    ops such as ``cat``); torch receives ``torch.from_numpy`` views of the same data.
    ``onnx(inputs)`` returns ``(ModelProto, feeds)``. ``bytes_moved(inputs)`` or
    ``flops(inputs)`` gives the work; with neither, the case reports microseconds per call.
    ``random=True`` marks ops whose outputs are random draws (dropout): libraries are then
    checked to agree on shapes only.

    ``prepare(inputs)``, when given, makes tensorops' own inputs from the case's once, outside
    every timed region, the way a model prepares them once (a filter packed on a module's
    first call); the peers keep the case's inputs. ``mark()``, when given, runs just before
    tensorops' measurement at each thread count, and ``extra()`` is read after it: it returns
    named numbers that the report prints beside the rate and keeps in the JSON (a byte count
    whose name ends in ``_bytes`` prints in MiB), such as the workspace memory the case's
    calls needed since the mark.
    """

    name: str
    family: str
    setup: Callable[[np.dtype], tuple]
    tensorops: PeerCall  # an ``op`` on tensorops, or a function for calls that are not one op
    torch: PeerCall = None
    numpy: PeerCall = None
    onnx: Optional[Callable[[tuple], tuple]] = None
    bytes_moved: Optional[Callable[[tuple], int]] = None
    flops: Optional[Callable[[tuple], float]] = None
    random: bool = False
    prepare: Optional[Callable[[tuple], tuple]] = None
    mark: Optional[Callable[[], None]] = None
    extra: Optional[Callable[[], dict]] = None

    @property
    def unit(self) -> str:
        if self.bytes_moved is not None:
            return "GB/s"
        if self.flops is not None:
            return "GFLOP/s"
        return "us/call"

    @property
    def memory_bound(self) -> bool:
        return self.bytes_moved is not None

    def work(self, inputs: tuple) -> Optional[float]:
        """Bytes or FLOPs for one call; ``None`` for per-call cases."""
        if self.bytes_moved is not None:
            return float(self.bytes_moved(inputs))
        if self.flops is not None:
            return float(self.flops(inputs))
        return None


def nbytes(*arrays) -> int:
    """Bytes of the given arrays (lists of arrays count every member)."""
    total = 0
    for a in arrays:
        if isinstance(a, (list, tuple)):
            total += nbytes(*a)
        else:
            total += a.nbytes
    return total


def randn(shape, dtype, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
