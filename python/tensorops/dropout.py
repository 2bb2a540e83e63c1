"""Dropout and the generator behind it.

The mask is a pure function of (seed, element index): ``manual_seed(s)`` followed by the
same sequence of calls gives the same masks for any thread count and any ISA. Each call
consumes as many indices of the stream as its input has elements, so successive calls draw
fresh masks, as successive draws from torch's generator do.
"""
from __future__ import annotations

import operator
import threading

import numpy as np

from . import _core
from ._validate import check_bool, check_out, empty, float_array, inplace_input, python_scalar, readable_beside

__all__ = ["dropout", "manual_seed", "initial_seed"]

_DEFAULT_SEED = 67280421310721  # torch's default seed, so a fresh process is reproducible too
_MASK64 = (1 << 64) - 1


class _Generator:
    def __init__(self, seed: int):
        self.lock = threading.Lock()
        self.seed = seed
        self.offset = 0

    def take(self, count: int) -> tuple:
        with self.lock:
            start = self.offset
            self.offset = (self.offset + count) & _MASK64
            return self.seed, start


_generator = _Generator(_DEFAULT_SEED)


def manual_seed(seed: int) -> None:
    """Seeds the generator that ``dropout`` uses (any Python int, as torch.manual_seed)."""
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"manual_seed: expected an int, got {type(seed).__name__}") from None
    if not -2**63 <= value < 2**64:
        raise ValueError("Overflow when unpacking long long")  # torch's words; within, negatives wrap as in torch
    global _generator
    _generator = _Generator(value & _MASK64)


def initial_seed() -> int:
    """The seed last given to ``manual_seed`` (or the default one)."""
    return _generator.seed


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, out=None):
    """Zeroes each element with probability ``p`` and scales the rest by ``1 / (1 - p)``.

    With ``training=False`` the input is returned as is (as torch does). A dropped element
    is ``x * 0``, so NaN and inf stay NaN, exactly as in torch. ``inplace=True`` writes the
    result into the input and returns it, as torch and tensorops' activations do (the input
    must be a writeable float array, or a torch tensor).
    """
    p = python_scalar(p)
    if not isinstance(p, (int, float, np.floating, np.integer, np.bool_)):  # a bool counts, as in torch
        raise TypeError(f"dropout: p must be a number, got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    check_bool(training, "dropout", "train")
    if inplace:
        x = inplace_input(input, out, "dropout", floats=True)  # (float_array would copy an unaligned input)
        if training:
            np.copyto(x, dropout(x, p, True))
        return x
    x = float_array(input, "dropout")
    if not training:
        if out is None:
            return x
        check_out(out, x.shape, x.dtype, "dropout")
        np.copyto(out, x)
        return out
    if out is None:
        out = empty(x.shape, x.dtype)
    else:
        check_out(out, x.shape, x.dtype, "dropout")
        x = readable_beside(x, out)
    if p == 0.0:
        np.copyto(out, x)
    elif p == 1.0:
        with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in torch, not a warning
            np.multiply(x, x.dtype.type(0), out=out)
    else:
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        seed, offset = _generator.take(x.size)
        _core.dropout(x, out, p, seed, offset)
    return out
