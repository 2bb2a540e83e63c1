"""The pool family against torch: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d.

Values, shapes, dtypes and int64 indices must equal torch's for every window geometry
(kernel, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override), every
layout, NaN and -inf windows, and every invalid argument must raise torch's error type
with torch's message.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorops as tops
import tensorops.pool as P
from reference import DTYPES, assert_close, is_torch_message, layouts, randn

torch.set_num_threads(1)  # the oracle's threads only cost time here


def _torch(fn, x, *args, **kwargs):
    return fn(torch.from_numpy(np.ascontiguousarray(x)), *args, **kwargs)


def _check_max(x, *args, **kwargs):
    """Values and indices of max_pool2d equal torch's (indices exactly)."""
    got, got_idx = P.max_pool2d(x, *args, return_indices=True, **kwargs)
    want, want_idx = _torch(F.max_pool2d, x, *args, return_indices=True, **kwargs)
    assert_close(got, want)
    assert got_idx.dtype == np.int64
    np.testing.assert_array_equal(got_idx, want_idx.numpy())
    assert_close(P.max_pool2d(x, *args, **kwargs), want)


def _check_adaptive_max(x, output_size):
    got, got_idx = P.adaptive_max_pool2d(x, output_size, return_indices=True)
    want, want_idx = _torch(F.adaptive_max_pool2d, x, output_size, return_indices=True)
    assert_close(got, want)
    assert got_idx.dtype == np.int64
    np.testing.assert_array_equal(got_idx, want_idx.numpy())
    assert_close(P.adaptive_max_pool2d(x, output_size), want)


def _random_window(rng, dilated: bool):
    """(kernel, stride, padding, dilation, ceil_mode) that torch accepts for some inputs."""
    kernel = tuple(int(k) for k in rng.integers(1, 6, 2))
    stride = tuple(int(s) for s in rng.integers(1, 5, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 4, 2)) if dilated else (1, 1)
    # torch's two padding limits: half the effective kernel and half the kernel itself.
    padding = tuple(int(rng.integers(0, min(k // 2, ((k - 1) * d + 1) // 2) + 1)) for k, d in zip(kernel, dilation))
    return kernel, stride, padding, dilation, bool(rng.integers(0, 2))


def _random_input(rng, dtype, min_hw: int):
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(min_hw, min_hw + 40, 2))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    kind = rng.integers(0, 4)
    if kind == 1:
        x = np.round(x)  # ties: torch keeps the first maximum in row-major order
    elif kind == 2:
        x[rng.random(x.shape) < 0.05] = np.nan
    elif kind == 3:
        x[rng.random(x.shape) < 0.5] = -np.inf
    return x if rng.integers(0, 3) else x[0]  # sometimes unbatched (C, H, W)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_sweep(dtype):
    rng = np.random.default_rng(1)
    done = 0
    while done < 120:
        kernel, stride, padding, dilation, ceil_mode = _random_window(rng, dilated=True)
        x = _random_input(rng, dtype, 1)
        eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        if any(s + 2 * p < e for s, p, e in zip(x.shape[-2:], padding, eff)):
            continue  # output too small: covered by the error tests
        _check_max(x, kernel, stride, padding, dilation, ceil_mode)
        done += 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d_sweep(dtype):
    rng = np.random.default_rng(2)
    done = 0
    while done < 120:
        kernel, stride, padding, _, ceil_mode = _random_window(rng, dilated=False)
        x = _random_input(rng, dtype, 1)
        if any(s + 2 * p < k for s, p, k in zip(x.shape[-2:], padding, kernel)):
            continue
        include = bool(rng.integers(0, 2))
        override = [None, None, 1, 7, -3][int(rng.integers(0, 5))]
        got = P.avg_pool2d(x, kernel, stride, padding, ceil_mode, include, override)
        assert_close(got, _torch(F.avg_pool2d, x, kernel, stride, padding, ceil_mode, include, override))
        done += 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_sweep(dtype):
    rng = np.random.default_rng(3)
    for _ in range(80):
        x = _random_input(rng, dtype, 1)
        h, w = x.shape[-2:]
        # Divisible, non-divisible, larger than the input, None, zero.
        out_h = [int(rng.integers(1, h + 4)), h, max(1, h // 2), None, 0][int(rng.integers(0, 5))]
        out_w = [int(rng.integers(1, w + 4)), w, 1, None][int(rng.integers(0, 4))]
        assert_close(P.adaptive_avg_pool2d(x, (out_h, out_w)), _torch(F.adaptive_avg_pool2d, x, (out_h, out_w)))
        _check_adaptive_max(x, (out_h, out_w))


@pytest.mark.parametrize("dtype", DTYPES)
def test_common_network_shapes(dtype):
    x = randn((2, 16, 57, 61), dtype, seed=4)
    _check_max(x, 3, 2, 1)                      # ResNet stem
    _check_max(x, 3, 2, 0, ceil_mode=True)      # GoogLeNet
    _check_max(x, 2)                            # VGG
    _check_max(x, 3, 1, 1)                      # stride 1, same size
    _check_max(x, (3, 5), (2, 3), (1, 2), (2, 1))
    assert_close(P.avg_pool2d(x, 3, 2, 1), _torch(F.avg_pool2d, x, 3, 2, 1))
    assert_close(P.avg_pool2d(x, 2, 2, 1, True, False), _torch(F.avg_pool2d, x, 2, 2, 1, True, False))
    g = randn((3, 64, 7, 7), dtype, seed=5)
    assert_close(P.adaptive_avg_pool2d(g, 1), _torch(F.adaptive_avg_pool2d, g, 1))
    assert_close(P.adaptive_avg_pool2d(g, (1, 1)), _torch(F.adaptive_avg_pool2d, g, (1, 1)))
    _check_adaptive_max(g, 1)
    wide = randn((1, 2, 3, 300), dtype, seed=6)  # rows longer than several vectors
    _check_max(wide, (2, 7), (1, 3), (1, 3), (2, 2), True)
    assert_close(P.avg_pool2d(wide, (3, 5), 2, (1, 2), True, False), _torch(F.avg_pool2d, wide, (3, 5), 2, (1, 2), True, False))


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_shapes(dtype):
    x = randn((2, 3, 5, 4), dtype, seed=7)
    _check_max(x, (5, 4))                                   # kernel = input size
    assert_close(P.avg_pool2d(x, (5, 4)), _torch(F.avg_pool2d, x, (5, 4)))
    one = randn((2, 3, 1, 1), dtype, seed=8)                # 1x1 inputs
    _check_max(one, 1)
    _check_max(one, 1, ceil_mode=True)
    _check_max(one, 2, 1, 1)
    assert_close(P.avg_pool2d(one, 2, 1, 1), _torch(F.avg_pool2d, one, 2, 1, 1))
    assert_close(P.avg_pool2d(one, 2, 1, 1, count_include_pad=False),
                 _torch(F.avg_pool2d, one, 2, 1, 1, count_include_pad=False))
    assert_close(P.adaptive_avg_pool2d(one, (3, 2)), _torch(F.adaptive_avg_pool2d, one, (3, 2)))
    _check_adaptive_max(one, (2, 3))
    empty = randn((0, 3, 6, 5), dtype)                      # batch 0
    _check_max(empty, 3)
    assert_close(P.avg_pool2d(empty, 3), _torch(F.avg_pool2d, empty, 3))
    assert_close(P.adaptive_avg_pool2d(empty, 2), _torch(F.adaptive_avg_pool2d, empty, 2))
    _check_adaptive_max(empty, 2)
    no_channels = randn((2, 0, 6, 5), dtype)
    assert_close(P.adaptive_avg_pool2d(no_channels, 2), _torch(F.adaptive_avg_pool2d, no_channels, 2))
    _check_adaptive_max(randn((0, 6, 5), dtype), 2)         # unbatched, no channels
    # torch computes a 1x1 adaptive average as mean(-1, -2): any rank >= 2, empty planes give NaN.
    for shape in [(4, 5), (2, 3, 4, 5, 6), (2, 3, 0, 4), (3, 4, 5)]:
        v = randn(shape, dtype, seed=9)
        assert_close(P.adaptive_avg_pool2d(v, 1), _torch(F.adaptive_avg_pool2d, v, 1))
    # Dilated windows whose taps skip every input cell: -inf at torch's out-of-plane index.
    _check_max(np.arange(4, dtype=dtype).reshape(1, 2, 2), 2, 1, 1, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    x = randn((2, 3, 13, 11), dtype, seed=10)
    views = list(layouts(x))
    big = randn((3, 7, 40, 30), dtype, seed=11)
    views.append(("rows apart", big[:2, 1:7:2, 3:29:2, 5:16]))  # unit column stride, no copy
    views.append(("reversed rows", np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]))
    views.append(("torch tensor", torch.from_numpy(x)))
    for name, v in views:
        ref = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
        got, idx = P.max_pool2d(v, 3, 2, 1, return_indices=True)
        want, want_idx = F.max_pool2d(ref, 3, 2, 1, return_indices=True)
        assert_close(got, want)
        np.testing.assert_array_equal(idx, want_idx.numpy(), err_msg=name)
        assert_close(P.avg_pool2d(v, (2, 3), 1, (1, 0), True, False), F.avg_pool2d(ref, (2, 3), 1, (1, 0), True, False))
        assert_close(P.adaptive_avg_pool2d(v, (4, 3)), F.adaptive_avg_pool2d(ref, (4, 3)))
        assert_close(P.adaptive_avg_pool2d(v, 1), F.adaptive_avg_pool2d(ref, 1))
        got, idx = P.adaptive_max_pool2d(v, (4, 3), return_indices=True)
        want, want_idx = F.adaptive_max_pool2d(ref, (4, 3), return_indices=True)
        assert_close(got, want)
        np.testing.assert_array_equal(idx, want_idx.numpy(), err_msg=name)
    before = x.copy()
    P.max_pool2d(x, 2)
    np.testing.assert_array_equal(x, before)  # inputs are never modified


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_and_ties(dtype):
    nan, inf = np.nan, np.inf
    # The last NaN of a window wins (torch's scan replaces on every NaN); ties keep the first.
    x = np.array([[[1, nan, 3, nan], [5, 2, nan, 0]]], dtype)
    _check_max(x, (2, 4))
    _check_adaptive_max(x, 1)
    ties = np.array([[[1, 5, 3, 5], [5, 2, 5, 0]]], dtype)
    _check_max(ties, (2, 4))
    _check_max(ties, 2, 1, 1)
    _check_adaptive_max(ties, (1, 2))
    ninf = np.full((1, 5, 6), -inf, dtype)                     # windows entirely of -inf
    _check_max(ninf, 3, 2, 1, ceil_mode=True)
    _check_max(ninf, 2, 1, 1, 2)
    _check_adaptive_max(ninf, (2, 4))
    mixed = randn((2, 3, 9, 35), dtype, seed=12)
    mixed[0, 0, 2, 5] = nan
    mixed[0, 1, :, 17:] = -inf
    mixed[1, 2, 4, 30] = inf
    mixed[1, 0, 3:6, 3:6] = nan
    for window in [(3, 2, 1), (2, 2, 0), ((3, 5), (1, 2), (1, 2))]:
        _check_max(mixed, *window)
        assert_close(P.avg_pool2d(mixed, *window), _torch(F.avg_pool2d, mixed, *window))
    _check_adaptive_max(mixed, (4, 6))
    _check_adaptive_max(mixed, (3, 5))
    assert_close(P.adaptive_avg_pool2d(mixed, (4, 6)), _torch(F.adaptive_avg_pool2d, mixed, (4, 6)))
    assert_close(P.adaptive_avg_pool2d(mixed, 1), _torch(F.adaptive_avg_pool2d, mixed, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_columns_no_window_reaches_stay_out(dtype):
    # The kernels read whole vectors where the input row holds them, past the last column a
    # window reaches; NaN there must not reach the output (widths around the vector sizes).
    for width in (15, 16, 17, 31, 32, 33, 63, 64, 65):
        for kernel, stride in ((3, 2), (2, 3), (2, 1), (4, 4)):
            x = randn((2, 3, 9, width), dtype, seed=width)
            reached = (width - kernel) // stride * stride + kernel
            x[..., reached:] = np.nan
            assert not np.isnan(P.max_pool2d(x, kernel, stride)).any()
            assert not np.isnan(P.avg_pool2d(x, kernel, stride)).any()
            _check_max(x, kernel, stride)
            assert_close(P.avg_pool2d(x, kernel, stride), _torch(F.avg_pool2d, x, kernel, stride))


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_planes_with_stride_two(dtype):
    # Planes whose padded row fits two vectors (up to 32 floats, 16 doubles) pool in registers
    # on AVX-512: every width around those sizes, both paddings, ceil_mode, NaN and -inf.
    for width in range(1, 36):
        for kernel_w in (2, 3):
            for pad in (0, 1):
                if width + 2 * pad < kernel_w:
                    continue
                x = randn((2, 3, 7, width), dtype, seed=width * 10 + kernel_w)
                x[0, 1, 2, width // 2] = np.nan
                x[1, 2, :, : (width + 1) // 2] = -np.inf
                for kernel_h, stride_h in ((3, 2), (1, 1), (2, 3)):
                    window = ((kernel_h, kernel_w), (stride_h, 2), (min(pad, kernel_h // 2), pad))
                    for ceil_mode in (False, True):
                        want = _torch(F.max_pool2d, x, *window, ceil_mode=ceil_mode)
                        assert_close(P.max_pool2d(x, *window, ceil_mode=ceil_mode), want)
                        for include, override in ((True, None), (False, None), (True, 5)):
                            got = P.avg_pool2d(x, *window, ceil_mode, include, override)
                            assert_close(got, _torch(F.avg_pool2d, x, *window, ceil_mode, include, override))


def test_threads_do_not_change_results():
    x = randn((3, 5, 37, 29), np.float32, seed=13)
    before = tops.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            tops.set_num_threads(threads)
            results.append((P.max_pool2d(x, 3, 2, 1, return_indices=True), P.avg_pool2d(x, 3, 2, 1),
                            P.adaptive_avg_pool2d(x, (5, 7)), P.adaptive_avg_pool2d(x, 1)))
    finally:
        tops.set_num_threads(before)
    for other in results[1:]:
        np.testing.assert_array_equal(other[0][0], results[0][0][0])
        np.testing.assert_array_equal(other[0][1], results[0][0][1])
        for a, b in zip(other[1:], results[0][1:]):
            np.testing.assert_array_equal(a, b)


# ---- errors: torch's type and message ----------------------------------------------------
X4 = randn((2, 3, 10, 10), np.float32)
ERROR_CASES = [
    # max_pool2d
    ("max_pool2d", X4, (3,), dict(padding=2)),
    ("max_pool2d", X4, (3,), dict(padding=2, dilation=2)),
    ("max_pool2d", X4, (3,), dict(padding=3, dilation=2)),
    ("max_pool2d", X4, (3,), dict(padding=(2, 3))),
    ("max_pool2d", X4, (3,), dict(padding=(1, 2), dilation=2)),
    ("max_pool2d", X4, (3,), dict(padding=-1)),
    ("max_pool2d", X4, (0,), {}),
    ("max_pool2d", X4, (0,), dict(stride=1)),
    ("max_pool2d", X4, ((0, 2),), dict(stride=1)),
    ("max_pool2d", X4, (-1,), dict(stride=1)),
    ("max_pool2d", X4, (3,), dict(stride=-1)),
    ("max_pool2d", X4, (3,), dict(stride=(1, 0))),
    ("max_pool2d", X4, (3,), dict(dilation=0)),
    ("max_pool2d", X4, (3,), dict(dilation=(1, -1))),
    ("max_pool2d", X4, (11,), dict(padding=6, dilation=0)),
    ("max_pool2d", X4, ((3, 3, 3),), {}),
    ("max_pool2d", X4, ((),), {}),
    ("max_pool2d", X4, (3,), dict(stride=(1, 2, 3))),
    ("max_pool2d", X4, (3,), dict(padding=(1, 2, 3))),
    ("max_pool2d", X4, (3,), dict(padding=())),
    ("max_pool2d", X4, (3,), dict(dilation=(1, 2, 3))),
    ("max_pool2d", X4, (3.0,), {}),
    ("max_pool2d", X4, ("3",), {}),
    ("max_pool2d", X4, (True,), {}),
    ("max_pool2d", X4, (3,), dict(stride=1.5)),
    ("max_pool2d", X4, (3,), dict(padding=True)),
    ("max_pool2d", X4, (3,), dict(ceil_mode=1)),
    # sequences: torch checks the first element as an int, unpacks the others as indices
    ("max_pool2d", X4, ((True, 1),), {}),
    ("max_pool2d", X4, ((np.float64(2.0), 3),), {}),
    ("max_pool2d", X4, ((3, 3, 2.0),), {}),
    ("max_pool2d", X4, ((3, np.bool_(True)),), {}),
    ("max_pool2d", X4, (3, (2, None)), {}),
    ("max_pool2d", X4, (3, 2, [0, 1.0]), {}),
    ("max_pool2d", X4, (3, 2, 0, (1, "1")), {}),
    ("max_pool2d", X4, (3, 2, (3, True)), {}),
    ("max_pool2d", X4, (np.float64(3.0),), {}),
    ("avg_pool2d", X4, ((True, 1),), {}),
    ("avg_pool2d", X4, ((3, 2.0),), {}),
    ("avg_pool2d", X4, (3, (2, 2.0)), {}),
    ("avg_pool2d", X4, (3, 2, (2, np.float64(1.0))), {}),
    ("max_pool2d", X4, (11,), {}),
    ("max_pool2d", randn((3, 2, 2), np.float32), (3,), {}),
    ("max_pool2d", randn((3, 2, 2), np.float32), (3,), dict(return_indices=True)),
    ("max_pool2d", randn((2, 3, 1, 10), np.float32), (3,), dict(padding=1, dilation=2, stride=1)),
    ("max_pool2d", randn((2, 0, 4, 4), np.float32), (3,), {}),
    ("max_pool2d", randn((2, 3, 0, 4), np.float32), (3,), {}),
    ("max_pool2d", randn((0, 4, 4), np.float32), (3,), {}),
    ("max_pool2d", randn((4, 4), np.float32), (3,), {}),
    ("max_pool2d", randn((1, 2, 4, 4, 4), np.float32), (3,), {}),
    ("max_pool2d", np.float32(1.0), (3,), {}),
    # avg_pool2d
    ("avg_pool2d", X4, (3,), dict(padding=2)),
    ("avg_pool2d", X4, ((3, 5),), dict(padding=(1, 3))),
    ("avg_pool2d", X4, (3,), dict(padding=-1)),
    ("avg_pool2d", X4, (0,), {}),
    ("avg_pool2d", X4, (0,), dict(stride=1)),
    ("avg_pool2d", X4, (3,), dict(stride=-1)),
    ("avg_pool2d", X4, (3,), dict(stride=(0, 1))),
    ("avg_pool2d", X4, (3,), dict(divisor_override=0)),
    ("avg_pool2d", X4, (3,), dict(divisor_override=1.5)),
    ("avg_pool2d", X4, (3,), dict(divisor_override=True)),
    ("avg_pool2d", X4, (3,), dict(ceil_mode=1)),
    ("avg_pool2d", X4, (3,), dict(count_include_pad=None)),
    ("avg_pool2d", X4, ((3, 3, 3),), {}),
    ("avg_pool2d", X4, (3,), dict(stride=(1, 2, 3))),
    ("avg_pool2d", X4, (3,), dict(padding=(1, 2, 3))),
    ("avg_pool2d", X4, ("3",), {}),
    ("avg_pool2d", X4, (11,), {}),
    ("avg_pool2d", randn((3, 2, 2), np.float32), (3,), {}),
    ("avg_pool2d", randn((2, 3, 2, 2), np.float32), (5,), dict(padding=1)),
    ("avg_pool2d", randn((2, 0, 4, 4), np.float32), (3,), {}),
    ("avg_pool2d", randn((3, 0, 4), np.float32), (3,), {}),
    ("avg_pool2d", randn((1, 2, 4, 4, 4), np.float32), (3,), {}),
    ("avg_pool2d", randn((4, 4), np.float32), (3,), {}),
    ("avg_pool2d", randn((4,), np.float32), (3,), {}),
    ("avg_pool2d", np.float32(1.0), (3,), {}),
    # window values beyond C int, which torch refuses
    ("max_pool2d", X4, (2,), dict(stride=2**31)),
    ("max_pool2d", X4, (2,), dict(padding=2**31)),
    ("max_pool2d", X4, (2,), dict(dilation=(1, 2**31))),
    ("max_pool2d", X4, (-2**31 - 1,), {}),
    ("avg_pool2d", X4, ((2, 2**40),), {}),
    ("avg_pool2d", X4, (2,), dict(stride=(1, 2**31))),
    # adaptive_avg_pool2d
    ("adaptive_avg_pool2d", X4, ((3, 3, 3),), {}),
    ("adaptive_avg_pool2d", X4, ((3,),), {}),
    ("adaptive_avg_pool2d", X4, (-1,), {}),
    ("adaptive_avg_pool2d", X4, ((2, -1),), {}),
    ("adaptive_avg_pool2d", X4, (2.5,), {}),
    ("adaptive_avg_pool2d", X4, (None,), {}),
    ("adaptive_avg_pool2d", X4, ((True, 2),), {}),
    ("adaptive_avg_pool2d", randn((4, 4), np.float32), (2,), {}),
    ("adaptive_avg_pool2d", randn((4, 4), np.float32), ((1, 1),), {}),
    ("adaptive_avg_pool2d", randn((4,), np.float32), (1,), {}),
    ("adaptive_avg_pool2d", randn((1, 2, 3, 4, 4), np.float32), (2,), {}),
    ("adaptive_avg_pool2d", randn((2, 3, 0, 4), np.float32), (2,), {}),
    ("adaptive_avg_pool2d", randn((3, 4, 0), np.float32), (2,), {}),
    ("adaptive_avg_pool2d", np.float32(1.0), (2,), {}),
    # adaptive_max_pool2d
    ("adaptive_max_pool2d", X4, ((3, 3, 3),), {}),
    ("adaptive_max_pool2d", X4, ((3,),), {}),
    ("adaptive_max_pool2d", X4, (-1,), {}),
    ("adaptive_max_pool2d", X4, ((-2, -3),), {}),
    ("adaptive_max_pool2d", X4, (2.5,), {}),
    ("adaptive_max_pool2d", randn((3, 4, 4), np.float32), ((2, -1),), dict(return_indices=True)),
    ("adaptive_max_pool2d", randn((4, 4), np.float32), (2,), {}),
    ("adaptive_max_pool2d", randn((1, 2, 3, 4, 4), np.float32), (2,), {}),
    ("adaptive_max_pool2d", randn((2, 0, 4, 4), np.float32), (2,), {}),
    ("adaptive_max_pool2d", randn((0, 3, 0, 4), np.float32), (2,), {}),
    ("adaptive_max_pool2d", randn((3, 0, 4), np.float32), (2,), {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_windows_far_larger_than_the_input(dtype):
    # ceil_mode lets a window of 2^31 - 1 taps (or a huge dilation) through torch's checks; only
    # the taps over the padded input count, so scratch and work scale with the input.
    x = randn((2, 5, 7, 3), dtype)
    x[0, 1, 2, 1] = np.nan
    for kwargs in (dict(kernel_size=2**31 - 1, ceil_mode=True), dict(kernel_size=(2**30, 3), padding=(0, 1), ceil_mode=True),
                   dict(kernel_size=(2**30, 3), stride=(2**30, 2), padding=(0, 1), ceil_mode=True),
                   dict(kernel_size=(3, 2), stride=2**30, padding=1, dilation=(2**29, 1), ceil_mode=True)):
        _check_max(x, **kwargs)
        if "dilation" not in kwargs:
            for include in (True, False):
                expected = F.avg_pool2d(torch.from_numpy(x), count_include_pad=include, **kwargs)
                assert_close(P.avg_pool2d(x, count_include_pad=include, **kwargs), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_average_of_large_planes_stays_accurate(dtype):
    # A plane larger than one block of the global average (1024 elements) is summed block by
    # block, the blocks' sums in double: 65536 identical rows of 17 (a broadcast view, whose
    # rows one vector accumulator had summed with a drift of 4e-4), a contiguous plane of
    # 1000 x 1000 around a large mean, and NaN reaching only its own plane.
    row = randn((17,), dtype, 60)
    x = np.broadcast_to(row, (1, 1, 65536, 17))
    got = P.adaptive_avg_pool2d(x, 1)
    np.testing.assert_allclose(got.ravel(), [row.astype(np.float64).mean()], rtol=2e-6 if dtype == np.float32 else 1e-12)
    big = (randn((2, 1, 1000, 1000), dtype, 61) + 100).astype(dtype)
    big[1, 0, 500, 500] = np.nan
    want = big.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    got = P.adaptive_avg_pool2d(big, 1)
    assert np.isnan(got[1]).all()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_average_of_packed_small_planes(dtype):
    # Planes that follow each other (7x7 and the like) are summed a vector's worth of planes at
    # a time, their last load whole and masked: plane sizes around every vector width, planes
    # shorter than a vector (whose masked load overreads several later planes), plane counts
    # that leave a partial group, NaN, and 1 and 2 threads with identical results.
    rng = np.random.default_rng(71)
    before = tops.get_num_threads()
    try:
        for h, w in ((1, 1), (1, 3), (2, 2), (1, 7), (3, 3), (2, 5), (4, 4), (1, 17), (7, 7), (5, 13), (14, 14), (32, 32)):
            for n, c in ((1, 1), (1, 5), (2, 9), (3, 17), (1, 40)):
                x = rng.standard_normal((n, c, h, w)).astype(dtype)
                x[-1, -1, -1, -1] = np.nan if c % 2 else x[-1, -1, -1, -1]
                want = F.adaptive_avg_pool2d(torch.from_numpy(x), 1)
                results = []
                for threads in (1, 2):
                    tops.set_num_threads(threads)
                    results.append(P.adaptive_avg_pool2d(x, 1))
                assert_close(results[0], want)
                np.testing.assert_array_equal(results[1], results[0])
    finally:
        tops.set_num_threads(before)


@pytest.mark.single_isa
@pytest.mark.parametrize("op, x, args, kwargs", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_errors_match_torch(op, x, args, kwargs):
    with pytest.raises(Exception) as torch_error:
        getattr(F, op)(torch.from_numpy(np.asarray(x)), *args, **kwargs)
    expected = type(torch_error.value)
    with pytest.raises(expected) as ours:
        getattr(P, op)(x, *args, **kwargs)
    assert is_torch_message(ours.value, torch_error.value), (str(ours.value), str(torch_error.value))
    if expected is RuntimeError:
        assert isinstance(ours.value, tops.ShapeError)


@pytest.mark.single_isa
@pytest.mark.parametrize("op, good, bad", [
    ("max_pool2d", dict(kernel_size=1), dict(kernel_size=True)),
    ("max_pool2d", dict(kernel_size=(1, 3)), dict(kernel_size=(True, 3))),
    ("max_pool2d", dict(kernel_size=3, padding=1), dict(kernel_size=3, padding=True)),
    ("max_pool2d", dict(kernel_size=3, stride=1), dict(kernel_size=3, stride=True)),
    ("max_pool2d", dict(kernel_size=3, ceil_mode=False), dict(kernel_size=3, ceil_mode=0)),
    ("max_pool2d", dict(kernel_size=3, dilation=1), dict(kernel_size=3, dilation=True)),
    ("avg_pool2d", dict(kernel_size=1), dict(kernel_size=True)),
    ("avg_pool2d", dict(kernel_size=3, ceil_mode=True), dict(kernel_size=3, ceil_mode=1)),
    ("avg_pool2d", dict(kernel_size=3, count_include_pad=False), dict(kernel_size=3, count_include_pad=0)),
    ("avg_pool2d", dict(kernel_size=3, divisor_override=1), dict(kernel_size=3, divisor_override=True)),
])
def test_remembered_window_checks_still_refuse_their_bool_twins(op, good, bad):
    # Checked windows are remembered by their raw arguments, and a bool equals (and hashes
    # like) its int: a call torch refuses for a bool must still fail after its int twin ran,
    # and the twin must keep its own result.
    x = torch.from_numpy(X4)
    good, bad = dict(good), dict(bad)
    good_kernel, bad_kernel = good.pop("kernel_size"), bad.pop("kernel_size")  # positional, as usually passed
    for _ in range(2):
        assert_close(getattr(P, op)(X4, good_kernel, **good), getattr(F, op)(x, good_kernel, **good))
        with pytest.raises(TypeError) as torch_error:
            getattr(F, op)(x, bad_kernel, **bad)
        with pytest.raises(TypeError) as ours:
            getattr(P, op)(X4, bad_kernel, **bad)
        assert str(ours.value) == str(torch_error.value)


@pytest.mark.single_isa
def test_sequence_elements_after_the_first_may_be_bools():
    # torch unpacks a window sequence's later elements as indices: (3, True) is (3, 1).
    x = torch.from_numpy(X4)
    for args in (((3, True),), (3, [2, True]), (3, 2, (1, False)), (3, 2, 0, (1, True))):
        assert_close(P.max_pool2d(X4, *args), F.max_pool2d(x, *args))
        if len(args) < 4:
            assert_close(P.avg_pool2d(X4, *args), F.avg_pool2d(x, *args))


@pytest.mark.single_isa
def test_remembered_windows_follow_the_input_shape():
    # The same window arguments on a new input shape are checked again: a plane the window
    # no longer fits raises torch's error, and output sizes follow the shape.
    for shape in ((1, 2, 9, 9), (2, 3, 4, 4), (1, 1, 2, 2), (3, 9, 9)):
        x = randn(shape, np.float32)
        for op in ("max_pool2d", "avg_pool2d"):
            try:
                expected = getattr(F, op)(torch.from_numpy(x), 3, 2)
            except RuntimeError as error:
                with pytest.raises(tops.ShapeError, match=re.escape(str(error))):
                    getattr(P, op)(x, 3, 2)
                continue
            assert_close(getattr(P, op)(x, 3, 2), expected)


@pytest.mark.single_isa
@pytest.mark.parametrize("op, args", [("max_pool2d", (2,)), ("avg_pool2d", (2,)), ("adaptive_avg_pool2d", (2,)),
                                      ("adaptive_max_pool2d", (2,))])
def test_unsupported_dtypes(op, args):
    for dtype in (np.int32, np.int64, np.float16, np.bool_):
        with pytest.raises(TypeError, match=f"{op}: \"input\" has unsupported dtype {np.dtype(dtype)}"):
            getattr(P, op)(np.zeros((1, 4, 4), dtype), *args)
    with pytest.raises(TypeError, match="must be an array-like"):
        getattr(P, op)(object(), *args)


# ---- nn modules ------------------------------------------------------------------------------

_MODULE_CASES = [
    ("MaxPool2d", (3, 2), {}),
    ("MaxPool2d", ((3, 2),), {"padding": 1, "dilation": 2, "ceil_mode": True}),
    ("MaxPool2d", (2,), {"return_indices": True}),
    ("AvgPool2d", (3,), {}),
    ("AvgPool2d", (3, 2, 1, True, False, 2), {}),
    ("AdaptiveAvgPool2d", ((1, None),), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveMaxPool2d", (3,), {"return_indices": True}),
    ("AdaptiveMaxPool2d", ((2, 5),), {}),
]


@pytest.mark.parametrize("name,args,kwargs", _MODULE_CASES)
def test_pool_modules_match_torch(name, args, kwargs):
    import tensorops.nn as tnn

    ours, theirs = getattr(tnn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(5).standard_normal((2, 3, 11, 10)).astype(np.float32)
    got, want = ours(x), theirs(torch.from_numpy(x))
    if isinstance(want, tuple):
        np.testing.assert_allclose(got[0], want[0].numpy(), rtol=1e-6)
        np.testing.assert_array_equal(got[1], want[1].numpy())
    else:
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-7)
    assert list(ours.state_dict()) == []


@pytest.mark.single_isa
def test_adaptive_output_size_takes_what_torch_takes():
    x = randn((1, 2, 5, 6), np.float32)
    for size in (np.array([2, 3]), (2, True), [2, None], (np.int64(2), 3)):
        for op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            assert_close(getattr(P, op)(x, size), getattr(F, op)(torch.from_numpy(x), size))
    for size in (np.int64(3), (True, 2)):
        with pytest.raises(TypeError):
            F.adaptive_avg_pool2d(torch.from_numpy(x), size)
        with pytest.raises(TypeError):
            P.adaptive_avg_pool2d(x, size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_windows_far_larger_than_the_plane_match_torch(dtype, isa):
    """A kernel of 2^20 cells padded by half of it around a 7x9 plane: each output reads its
    in-bounds cells (no padded row as long as the padding), indices counted in int64."""
    x = randn((2, 3, 7, 9), dtype, seed=5)
    x[0, 0, 2, 3] = np.nan
    t = torch.from_numpy(x)
    k = 2**21
    for kernel, stride, padding, dilation, ceil in [(k, 1, k // 2, 1, False), ((k, 3), (1, 2), (k // 2, 1), 1, True),
                                                    ((3, k), (2, 3), (1, k // 2), (2, 1), False),
                                                    ((k + 1, 5), 4, (k // 2, 2), (1, 2), True)]:
        ours = P.max_pool2d(x, kernel, stride, padding, dilation, ceil, return_indices=True)
        theirs = F.max_pool2d(t, kernel, stride, padding, dilation, ceil, return_indices=True)
        assert_close(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1].numpy())
        if dilation == 1:
            for include in (True, False):
                for divisor in (None, 7):
                    assert_close(P.avg_pool2d(x, kernel, stride, padding, ceil, include, divisor),
                                 F.avg_pool2d(t, kernel, stride, padding, ceil, include, divisor))


@pytest.mark.single_isa
def test_divisor_past_int64_is_refused_as_torch():
    x = np.ones((1, 1, 4, 4), np.float32)
    for divisor in (2**63, -2**63 - 1):
        with pytest.raises(ValueError, match="Overflow when unpacking long long"):
            F.avg_pool2d(torch.from_numpy(x), 2, divisor_override=divisor)
        with pytest.raises(ValueError, match="^Overflow when unpacking long long$"):
            P.avg_pool2d(x, 2, divisor_override=divisor)


@pytest.mark.single_isa
def test_float32_positions_past_2_to_the_24_are_exact():
    """float32 lanes count window positions exactly only below 2^24."""
    x = np.zeros((1, 1, 1, 2**24 + 40), np.float32)
    for where in (2**24 + 1, 2**24 + 3, 2**24 + 33):
        x[...] = 0
        x[0, 0, 0, where] = 1
        t = torch.from_numpy(x)
        got = P.adaptive_max_pool2d(x, 1, return_indices=True)[1]
        np.testing.assert_array_equal(got, F.adaptive_max_pool2d(t, 1, return_indices=True)[1].numpy())
        ours = P.max_pool2d(x, (1, 2**24 + 2), return_indices=True)
        theirs = F.max_pool2d(t, (1, 2**24 + 2), return_indices=True)
        np.testing.assert_array_equal(ours[1], theirs[1].numpy())
        assert_close(ours[0], theirs[0])
