"""Reductions over one dim and over everything of a 4096x4096 array: read-bound (the
output is at most one row), so the rate counts the bytes read plus the bytes written."""
from __future__ import annotations

import numpy as np

from .case import Case, op, randn
from .onnx_models import reduction

FAMILY = "reduce"
_ROWS = _COLS = 4096


def _square(dtype):
    return (randn((_ROWS, _COLS), dtype),)


def _read_plus(out_elements: int):
    def bytes_moved(inputs) -> int:
        (x,) = inputs
        return x.nbytes + out_elements * x.itemsize

    return bytes_moved


def _over_dim1_and_all(name, torch_name, numpy_name, onnx_op=None, **numpy_kwargs):
    """The pair of cases ``<name>_dim1_4096x4096`` and ``<name>_all_4096x4096``."""
    return [
        Case(
            name=f"{name}_dim1_{_ROWS}x{_COLS}",
            family=FAMILY,
            setup=_square,
            tensorops=op(name, dim=1),
            torch=op(torch_name, dim=1),
            numpy=op(numpy_name, axis=1, **numpy_kwargs),
            onnx=reduction(onnx_op, axes=[1]) if onnx_op else None,
            bytes_moved=_read_plus(_ROWS),
        ),
        Case(
            name=f"{name}_all_{_ROWS}x{_COLS}",
            family=FAMILY,
            setup=_square,
            tensorops=op(name),
            torch=op(torch_name),
            numpy=op(numpy_name, **numpy_kwargs),
            onnx=reduction(onnx_op) if onnx_op else None,
            bytes_moved=_read_plus(1),
        ),
    ]


CASES = [
    *_over_dim1_and_all("sum", "sum", "sum", "ReduceSum"),
    *_over_dim1_and_all("mean", "mean", "mean", "ReduceMean"),
    *_over_dim1_and_all("amax", "amax", "max", "ReduceMax"),
    # ONNX has no variance operator; NumPy's ddof=1 matches torch's default correction=1.
    *_over_dim1_and_all("var", "var", "var", ddof=1),
    Case(
        name=f"max_dim1_values_indices_{_ROWS}x{_COLS}",
        family=FAMILY,
        setup=_square,
        tensorops=op("max", dim=1),
        torch=op("max", dim=1),
        # Both halves of the pair in one pass has no NumPy or single-node ONNX form.
        bytes_moved=lambda inputs: inputs[0].nbytes + _ROWS * (inputs[0].itemsize + np.dtype(np.int64).itemsize),
    ),
]
