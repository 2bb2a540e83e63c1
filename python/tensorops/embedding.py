"""Embedding: gathering rows of a weight matrix by integer indices."""
from __future__ import annotations

import operator

import numpy as np

from . import _core
from ._validate import INDEX_DTYPES, ShapeError, aligned, as_array, check_float, empty

__all__ = ["embedding"]

_TORCH_INDEX_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "bool": "BoolTensor",
                      "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "float16": "HalfTensor"}


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False):
    """``weight[input]``: rows of ``weight`` (num_embeddings, dim) for indices of any shape.

    Indices are int32 or int64; any index outside ``[0, num_embeddings)`` raises
    ``IndexError`` before anything is written. With ``max_norm``, the rows that ``input``
    references and whose ``norm_type``-norm exceeds ``max_norm`` are rescaled **in place** in
    ``weight`` (as torch does) to norm ``max_norm``. ``padding_idx`` only matters for
    gradients, which tensorops does not compute; it is validated as torch validates it.
    ``scale_grad_by_freq`` and ``sparse`` are accepted for signature compatibility.
    """
    idx = as_array(input, "embedding", "input")
    if idx.dtype not in INDEX_DTYPES:
        name = _TORCH_INDEX_NAMES.get(idx.dtype.name, idx.dtype.name)
        raise TypeError(
            "embedding: Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {name} instead (dtype {idx.dtype})")
    w = as_array(weight, "embedding", "weight")  # not float_array: max_norm must renorm the caller's rows
    check_float(w, "embedding", "weight")
    if w.ndim != 2:
        raise ShapeError("embedding: 'weight' must be 2-D")
    num_embeddings = w.shape[0]
    if padding_idx is not None:
        padding_idx = operator.index(padding_idx)
        # torch checks only a nonzero padding_idx, so 0 passes even for an empty weight.
        if (padding_idx > 0 and padding_idx >= num_embeddings) or padding_idx < -num_embeddings:
            raise ShapeError("embedding: Padding_idx must be within num_embeddings")
    if max_norm is not None:
        _renorm_rows(idx, w, float(max_norm), float(norm_type))
    if w.shape[1] > 1 and w.strides[1] != w.itemsize:
        w = np.ascontiguousarray(w)
    out = empty(idx.shape + (w.shape[1],), w.dtype)
    _core.embedding(aligned(idx), aligned(w), out)
    return out


def _renorm_rows(idx: np.ndarray, weight: np.ndarray, max_norm: float, norm_type: float) -> None:
    if idx.size == 0:
        return
    # Dims repeated by a zero stride hold no new index: scan each element once, so a broadcast
    # index array costs what its memory holds, not what its shape says.
    idx = np.lib.stride_tricks.as_strided(
        idx, tuple(1 if st == 0 else n for n, st in zip(idx.shape, idx.strides)), idx.strides)
    if idx.min() < 0 or idx.max() >= weight.shape[0]:
        raise IndexError("index out of range in self")
    if not weight.flags.writeable:
        raise ValueError("embedding: max_norm rescales rows of 'weight' in place, but 'weight' is read-only")
    rows = np.unique(idx)
    # Rows holding inf or NaN renormalise to NaN as in torch, which does not warn either.
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.linalg.norm(weight[rows].astype(np.float64, copy=False), ord=norm_type, axis=1)
        over = norms > max_norm
        if over.any():
            scale = (max_norm / (norms[over] + 1e-7)).astype(weight.dtype)
            weight[rows[over]] *= scale[:, None]
