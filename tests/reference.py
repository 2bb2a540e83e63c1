"""Shared helpers for comparing tensorops against PyTorch (the oracle) and NumPy."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

import tensorops as tops

# Sizes that exercise vector tails and blocking: empty, one, primes, around a 16-lane vector.
ODD_SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 257]
DTYPES = [np.float32, np.float64]
# One core's L2 as the kinds of machine the paths were tuned on report it (Zen 3; Zen 4; the
# Xeon): where a path is chosen by it (tensorops.cpu_info()["l2_cache_bytes"]), tests run each.
L2_SIZES = {"small_l2": 512 << 10, "mid_l2": 1 << 20, "large_l2": 2 << 20}


@contextlib.contextmanager
def assumed_l2_cache_bytes(size: int):
    """Runs the block with tensorops choosing its paths as if a core's L2 held ``size`` bytes."""
    tops._core.set_l2_cache_bytes(size)
    try:
        yield size
    finally:
        tops._core.set_l2_cache_bytes(0)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(shape, dtype=np.float32, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (rng(seed).standard_normal(shape) * scale).astype(dtype)


def to_torch(x):
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def to_numpy(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    if isinstance(t, (tuple, list)):
        return type(t)(to_numpy(v) for v in t)
    return t


def tolerance(dtype):
    """(rtol, atol) for comparing one elementwise result with torch's."""
    return (1e-5, 1e-6) if np.dtype(dtype) == np.float32 else (1e-12, 1e-14)


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, check_dtype=True, signed_zeros=False):
    """Values, shape and dtype equal within tolerance; NaN where torch has NaN, same infinities.
    With signed_zeros, also the sign of every zero both give (ceil(-0.5) and tanh(-0.0) are -0):
    for ops whose zero sign is defined, not for sums whose cancellation order decides it."""
    expected = to_numpy(expected)
    assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual).__name__}"
    assert actual.shape == tuple(expected.shape), f"shape {actual.shape} != {tuple(expected.shape)}"
    if check_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    d = dtype or expected.dtype
    default_rtol, default_atol = tolerance(d) if np.dtype(d).kind == "f" else (0, 0)
    np.testing.assert_allclose(
        actual, expected, rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol, equal_nan=True)
    if signed_zeros:
        zeros = (expected == 0) & (actual == 0)
        mismatch = np.signbit(actual[zeros]) != np.signbit(np.asarray(expected)[zeros])
        assert not mismatch.any(), f"{int(mismatch.sum())} zeros with the wrong sign"


def layouts(x: np.ndarray):
    """The same values in several memory layouts: contiguous, Fortran order, a strided slice
    of a larger array, and reversed (negative strides). Yields (name, array)."""
    yield "contiguous", np.ascontiguousarray(x)
    if x.ndim == 0:
        return  # a 0-d array has one layout (and indexing it with () would give a scalar)
    if x.ndim >= 2:
        yield "fortran", np.asfortranarray(x)
    big = np.zeros(tuple(2 * s + 1 for s in x.shape), x.dtype)
    view = big[tuple(slice(1, 1 + 2 * s, 2) for s in x.shape)]
    view[...] = x
    yield "strided", view
    rev = np.ascontiguousarray(x[tuple(slice(None, None, -1) for _ in x.shape)])
    yield "negative", rev[tuple(slice(None, None, -1) for _ in x.shape)]


def special_values(dtype=np.float32) -> np.ndarray:
    """NaN, infinities, signed zeros, tiny and huge values, in a 1-D array."""
    return np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 1.0, -1.0, 0.5, -0.5, 88.0, -88.0,
                     np.finfo(dtype).tiny, np.finfo(dtype).max, -np.finfo(dtype).max], dtype=dtype)


def is_torch_message(ours, theirs) -> bool:
    """Our error message is torch's, or torch's after the op's name ("matmul: mat1 and ..."),
    which tensorops adds where torch's own words do not name the op."""
    ours, theirs = str(ours), str(theirs)
    if ours == theirs:
        return True
    op, separator, rest = ours.partition(": ")
    return bool(separator) and op.isidentifier() and rest == theirs
