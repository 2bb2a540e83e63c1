"""Pointwise functions: unary maps, binary maps with broadcasting, activations."""
from __future__ import annotations

import numpy as np

from . import _core
from ._validate import check_out, float_array

__all__ = ["relu"]


def relu(input, out=None):
    """max(input, 0) elementwise; NaN stays NaN (as torch.relu)."""
    x = float_array(input, "relu")
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty(x.shape, x.dtype)
    else:
        check_out(out, x.shape, x.dtype, "relu")
    _core.relu(x, out)
    return out
