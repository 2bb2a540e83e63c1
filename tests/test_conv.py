"""The conv family against torch: conv2d, conv_transpose2d, pack_conv_weight, nn.Conv2d and
nn.ConvTranspose2d.

Values, shapes and dtypes must equal torch's over a seeded sweep of geometries (kernel,
stride, padding, dilation, groups, output_padding, "same"/"valid", batch 0, unbatched
input), every input layout, NaN and infinities, the fused activation / residual / out=
extensions and packed filters; modules must load torch's state_dict and compute what the
torch module computes, every padding_mode included. Every invalid call raises torch's error
type (ShapeError for torch's RuntimeError) with torch's message, prefixed with the op.
"""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tensorops as tops
import tensorops.nn as tnn
import tensorops.nn.functional as F
from reference import DTYPES, assert_close, is_torch_message, layouts, randn

torch.set_num_threads(1)  # the oracle's threads only cost time here
# torch warns once that an asymmetric "same" padding copies the input; the tests mean to.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
T = torch.from_numpy


def tol(dtype, reduction: int) -> dict:
    """Tolerances for sums of `reduction` products, growing like sqrt(reduction)."""
    scale = math.sqrt(max(reduction, 1))
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-4, atol=1e-4 * scale)
    return dict(rtol=1e-10, atol=1e-12 * scale)


def _torch(fn, *arrays, **kwargs):
    tensors = [None if a is None else T(np.array(a)) for a in arrays]
    return fn(*tensors, **kwargs)


def check_conv2d(x, w, b=None, **kwargs):
    want = _torch(TF.conv2d, x, w, b, **kwargs)
    got = F.conv2d(x, w, b, **kwargs)
    assert_close(got, want, **tol(x.dtype, w.shape[1] * w.shape[2] * w.shape[3]))
    return got, want


def assert_same_for_thread_counts(run, counts=(1, 2, 3)):
    """run() gives the same bits on every thread count; returns them."""
    before = tops.get_num_threads()
    results = []
    try:
        for threads in counts:
            tops.set_num_threads(threads)
            results.append(run())
    finally:
        tops.set_num_threads(before)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    return results[0]


def check_conv_transpose2d(x, w, b=None, **kwargs):
    want = _torch(TF.conv_transpose2d, x, w, b, **kwargs)
    got = F.conv_transpose2d(x, w, b, **kwargs)
    assert_close(got, want, **tol(x.dtype, w.shape[0] * w.shape[2] * w.shape[3]))
    return got, want


# ---- seeded sweeps ---------------------------------------------------------------------------

def _draw(rng, max_size: int) -> tuple:
    """One sweep case's groups, channels per group (in, out), batch, input size, kernel,
    stride and dilation: non-square everything, now and then depthwise (multiplier 1 or 2)."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    in_per_group, out_per_group = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if rng.random() < 0.15:
        groups, in_per_group, out_per_group = int(rng.integers(2, 9)), 1, int(rng.integers(1, 3))
    batch = int(rng.choice([0, 1, 1, 2, 3]))
    size, kernel = tuple(int(v) for v in rng.integers(1, max_size + 1, 2)), tuple(int(v) for v in rng.integers(1, 6, 2))
    stride, dilation = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.choice([1, 1, 2, 3], 2))
    return groups, in_per_group, out_per_group, batch, size, kernel, stride, dilation


def _input_shape(rng, batch: int, channels: int, size: tuple) -> tuple:
    """(N, C, H, W), or now and then (when N would be 0 or 1) the unbatched (C, H, W)."""
    return (batch, channels, *size) if batch > 1 or rng.random() < 0.6 else (channels, *size)


def _conv2d_cases(count: int) -> list:
    """(input shape, weight shape, with bias, kwargs) that torch accepts, "same"/"valid"
    padding and kernels as large as the padded input among them."""
    rng = np.random.default_rng(2034)
    cases = []
    while len(cases) < count:
        groups, cin_g, cout_g, n, size, kernel, stride, dilation = _draw(rng, 12)
        kind = rng.random()
        if kind < 0.15:
            padding, stride = "same", 1
        elif kind < 0.25:
            padding = "valid"
        else:
            padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        pads = (0, 0) if isinstance(padding, str) else padding
        if padding != "same" and any(s + 2 * p < d * (k - 1) + 1 for s, p, d, k in zip(size, pads, dilation, kernel)):
            continue  # the kernel is larger than the padded input: an error case, tested below
        cases.append((_input_shape(rng, n, cin_g * groups, size), (cout_g * groups, cin_g, *kernel),
                      bool(rng.random() < 0.7), dict(stride=stride, padding=padding, dilation=dilation, groups=groups)))
    return cases


def _conv_transpose2d_cases(count: int) -> list:
    rng = np.random.default_rng(4048)
    cases = []
    while len(cases) < count:
        groups, cin_g, cout_g, n, size, kernel, stride, dilation = _draw(rng, 8)
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        out = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, s, p, d, k, op in
               zip(size, stride, padding, dilation, kernel, output_padding)]
        if min(out) < 1:
            continue
        cases.append((_input_shape(rng, n, cin_g * groups, size), (cin_g * groups, cout_g, *kernel),
                      bool(rng.random() < 0.7), dict(stride=stride, padding=padding, output_padding=output_padding,
                                                     dilation=dilation, groups=groups)))
    return cases


def _conv_transpose2d_window_cases(count: int) -> list:
    """Transposed cases whose phase grids are at least a microkernel panel wide (the window
    path): the sweep's variety of kernels, strides, dilations, paddings, output paddings and
    groups, with inputs 32 to 45 pixels wide and now and then more than 64 input channels."""
    rng = np.random.default_rng(4049)
    cases = []
    while len(cases) < count:
        groups, cin_g, cout_g, n, _, kernel, stride, dilation = _draw(rng, 8)
        if rng.random() < 0.2:
            groups, cin_g = 1, int(rng.integers(60, 140))
        size = (int(rng.integers(1, 7)), int(rng.integers(32, 46)))
        padding = tuple(int(rng.integers(0, d * (k - 1) + 1)) for d, k in zip(dilation, kernel))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        out = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, s, p, d, k, op in
               zip(size, stride, padding, dilation, kernel, output_padding)]
        if min(out) < 1:
            continue
        cases.append(((max(n, 1), cin_g * groups, *size), (cin_g * groups, cout_g, *kernel), bool(rng.random() < 0.7),
                      dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                           groups=groups)))
    return cases


CONV2D_CASES = _conv2d_cases(60)
CONV_TRANSPOSE2D_CASES = _conv_transpose2d_cases(40)
CONV_TRANSPOSE2D_WINDOW_CASES = _conv_transpose2d_window_cases(30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_sweep(dtype):
    for i, (x_shape, w_shape, with_bias, kwargs) in enumerate(CONV2D_CASES):
        x, w = randn(x_shape, dtype, i), randn(w_shape, dtype, 1000 + i)
        b = randn(w_shape[0], dtype, 2000 + i) if with_bias else None
        check_conv2d(x, w, b, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cases", ["CONV_TRANSPOSE2D_CASES", "CONV_TRANSPOSE2D_WINDOW_CASES"])
def test_conv_transpose2d_sweep(dtype, cases):
    """Each case with the weight as an array (packed for the call) and packed beforehand."""
    for i, (x_shape, w_shape, with_bias, kwargs) in enumerate(globals()[cases]):
        x, w = randn(x_shape, dtype, i), randn(w_shape, dtype, 1000 + i)
        b = randn(w_shape[1] * kwargs["groups"], dtype, 2000 + i) if with_bias else None
        _, want = check_conv_transpose2d(x, w, b, **kwargs)
        packed = tops.pack_conv_weight(w, kwargs["groups"], True, stride=kwargs["stride"], padding=kwargs["padding"],
                                       dilation=kwargs["dilation"])
        assert_close(F.conv_transpose2d(x, packed, b, **kwargs), want, **tol(dtype, w_shape[0] * w_shape[2] * w_shape[3]))


def test_sweeps_cover_the_edges():
    """The seeded lists keep covering what they are meant to cover."""
    def covers(cases, predicate):
        return any(predicate(*case) for case in cases)

    c2, ct = CONV2D_CASES, CONV_TRANSPOSE2D_CASES
    assert covers(c2, lambda x, w, b, k: len(x) == 3) and covers(ct, lambda x, w, b, k: len(x) == 3)
    assert covers(c2, lambda x, w, b, k: x[0] == 0 and len(x) == 4) and covers(ct, lambda x, w, b, k: x[0] == 0)
    assert covers(c2, lambda x, w, b, k: k["padding"] == "same") and covers(c2, lambda x, w, b, k: k["padding"] == "valid")
    assert covers(c2, lambda x, w, b, k: k["groups"] == x[-3] and w[0] == x[-3])  # depthwise, multiplier 1
    assert covers(c2, lambda x, w, b, k: k["groups"] == x[-3] and w[0] == 2 * x[-3])  # depthwise, multiplier 2
    assert covers(c2, lambda x, w, b, k: 1 < k["groups"] < x[-3])
    assert covers(ct, lambda x, w, b, k: k["groups"] > 1)
    assert covers(c2, lambda x, w, b, k: k["dilation"] != (1, 1) and k["stride"] != (1, 1))
    assert covers(ct, lambda x, w, b, k: any(k["output_padding"]))
    assert covers(c2, lambda x, w, b, k: x[-2:] == (1, 1))
    assert covers(c2, lambda x, w, b, k: not b) and covers(ct, lambda x, w, b, k: not b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_shapes(dtype):
    x = randn((2, 6, 7, 5), dtype, 1)
    # The kernel as large as the (padded) input, 1x1 inputs and kernels, one pixel of output.
    check_conv2d(x, randn((4, 6, 7, 5), dtype, 2), randn(4, dtype, 3))
    check_conv2d(x, randn((4, 6, 9, 7), dtype, 2), padding=1)
    check_conv2d(randn((3, 4, 1, 1), dtype, 4), randn((5, 4, 1, 1), dtype, 5))
    check_conv2d(randn((3, 4, 1, 1), dtype, 4), randn((5, 4, 3, 3), dtype, 5), padding=1)
    check_conv2d(x, randn((4, 6, 1, 1), dtype, 6), stride=(3, 2))
    check_conv_transpose2d(randn((2, 3, 1, 1), dtype, 7), randn((3, 4, 1, 1), dtype, 8))
    check_conv_transpose2d(randn((2, 3, 1, 1), dtype, 7), randn((3, 4, 3, 3), dtype, 8), padding=1)
    # Output channels that cross the GEMM tiles, and an image that spans several blocks.
    check_conv2d(randn((1, 40, 23, 29), dtype, 9), randn((37, 40, 3, 3), dtype, 10), randn(37, dtype, 11), padding=1)
    check_conv2d(randn((2, 16, 33, 31), dtype, 12), randn((33, 16, 3, 5), dtype, 13), stride=(2, 1), padding=(4, 2),
                 dilation=(3, 1))
    check_conv_transpose2d(randn((2, 17, 9, 11), dtype, 14), randn((17, 19, 4, 4), dtype, 15), randn(19, dtype, 16),
                           stride=2, padding=1)
    # Depthwise planes wider than a vector, with a channel multiplier.
    check_conv2d(randn((2, 5, 19, 37), dtype, 17), randn((10, 1, 3, 3), dtype, 18), randn(10, dtype, 19), padding=1,
                 groups=5)
    check_conv2d(randn((2, 5, 19, 37), dtype, 17), randn((5, 1, 5, 3), dtype, 18), stride=2, dilation=(1, 2), groups=5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_inputs(dtype):
    w = randn((4, 3, 3, 3), dtype, 1)
    for x_shape, kwargs in [((0, 3, 8, 8), {}), ((0, 3, 8, 8), dict(stride=2)), ((0, 3, 2, 9), dict(padding=1))]:
        got, _ = check_conv2d(randn(x_shape, dtype, 2), w, randn(4, dtype, 3), **kwargs)
        assert got.size == 0
    # torch gives an input with no channels zero output channels, whatever the weight.
    check_conv2d(randn((2, 0, 8, 8), dtype, 4), randn((5, 0, 3, 3), dtype, 5), randn(5, dtype, 6))
    check_conv2d(randn((0, 8, 8), dtype, 4), randn((5, 0, 3, 3), dtype, 5))
    check_conv_transpose2d(randn((0, 3, 4, 4), dtype, 7), randn((3, 2, 3, 3), dtype, 8), stride=2)
    # With no images, torch reports neither a too-small output nor a too-large output_padding.
    check_conv_transpose2d(randn((0, 3, 1, 1), dtype, 7), randn((3, 2, 3, 3), dtype, 8), padding=1)
    check_conv_transpose2d(randn((0, 3, 1, 1), dtype, 7), randn((3, 2, 3, 3), dtype, 8), output_padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    """Any strides: Fortran order, strided slices and negative strides, for every operand."""
    x, w, b = randn((2, 6, 9, 11), dtype, 1), randn((4, 3, 3, 2), dtype, 2), randn(4, dtype, 3)
    want = _torch(TF.conv2d, x, w, b, padding=1, groups=2)
    wt = randn((6, 2, 3, 2), dtype, 4)
    want_t = _torch(TF.conv_transpose2d, x, wt, None, stride=2, groups=3)
    for (_, xv), (_, wv), (_, bv) in zip(layouts(x), layouts(w), layouts(b)):
        assert_close(F.conv2d(xv, wv, bv, padding=1, groups=2), want, **tol(dtype, 18))
    for _, xv in layouts(x):
        assert_close(F.conv_transpose2d(xv, wt, stride=2, groups=3), want_t, **tol(dtype, 12))
    transposed = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # rows along the last axis
    assert_close(F.conv2d(transposed, w, b, padding=1, groups=2), want, **tol(dtype, 18))
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert_close(F.conv2d(channels_last, w, b, padding=1, groups=2), want, **tol(dtype, 18))
    assert_close(F.conv2d(x[:, :, ::-1, ::-1], w, b, padding=1, groups=2),
                 _torch(TF.conv2d, x[:, :, ::-1, ::-1], w, b, padding=1, groups=2), **tol(dtype, 18))


def test_torch_tensors_and_lists():
    x, w, b = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3), torch.randn(4)
    assert_close(F.conv2d(x, w, b, padding=1), TF.conv2d(x, w, b, padding=1), **tol(np.float32, 27))
    assert_close(F.conv_transpose2d(x, w.transpose(0, 1), b), TF.conv_transpose2d(x, w.transpose(0, 1), b),
                 **tol(np.float32, 36))
    x_list = [[[1.0, 2.0], [3.0, 4.0]]]
    assert_close(F.conv2d(x_list, [[[[1.0]]]]), TF.conv2d(torch.tensor(x_list, dtype=torch.float64),
                                                           torch.ones(1, 1, 1, 1, dtype=torch.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_infinity_propagate(dtype):
    x = randn((2, 3, 7, 7), dtype, 1)
    x[0, 1, 2, 3] = np.nan
    x[1, 0, 5, 5] = np.inf
    x[1, 2, 0, 0] = -np.inf
    w = randn((4, 3, 3, 3), dtype, 2)
    w_inf = w.copy()
    w_inf[2, 1, 1, 1] = np.inf
    for weight in (w, w_inf):
        check_conv2d(x, weight, padding=1)
        check_conv2d(x, weight, stride=2, dilation=2, padding=2)
        check_conv_transpose2d(x, np.ascontiguousarray(weight.transpose(1, 0, 2, 3)), stride=2)
    check_conv2d(x, randn((6, 1, 3, 3), dtype, 3), padding=1, groups=3)


def test_results_do_not_depend_on_the_thread_count():
    x, w, b = randn((3, 8, 15, 17), np.float32, 1), randn((12, 8, 3, 3), np.float32, 2), randn(12, np.float32, 3)
    wd, wt = randn((16, 1, 3, 3), np.float32, 4), randn((8, 6, 4, 4), np.float32, 5)
    before = tops.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            tops.set_num_threads(threads)
            results.append((F.conv2d(x, w, b, padding=1), F.conv2d(x, wd, padding=1, groups=8),
                            F.conv_transpose2d(x, wt, stride=2, padding=1)))
    finally:
        tops.set_num_threads(before)
    for other in results[1:]:
        for a, b_ in zip(other, results[0]):
            np.testing.assert_array_equal(a, b_)


def test_inputs_are_not_modified():
    x, w, b = randn((2, 4, 6, 6), np.float32, 1), randn((4, 4, 3, 3), np.float32, 2), randn(4, np.float32, 3)
    r = randn((2, 4, 6, 6), np.float32, 4)
    copies = [a.copy() for a in (x, w, b, r)]
    F.conv2d(x, w, b, padding=1, activation="relu", residual=r)
    F.conv_transpose2d(x, w, b, padding=1, activation="silu", residual=r)
    for before, after in zip(copies, (x, w, b, r)):
        assert before.tobytes() == after.tobytes()


# ---- fused extensions: activation, residual, out= ----------------------------------------------

ACTIVATIONS = {None: lambda t: t, "relu": torch.relu, "gelu": TF.gelu,
               "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"), "silu": TF.silu}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_activation_and_residual(dtype, activation):
    act = ACTIVATIONS[activation]
    x, w, b = randn((2, 6, 9, 8), dtype, 1, 2.0), randn((8, 3, 3, 3), dtype, 2), randn(8, dtype, 3)
    t = tol(dtype, 27)
    ref = _torch(TF.conv2d, x, w, b, padding=1, groups=2)
    assert_close(F.conv2d(x, w, b, padding=1, groups=2, activation=activation), act(ref), **t)
    for shape in [(2, 8, 9, 8), (8, 1, 1), (1, 8, 1, 1), (9, 8), (1,), ()]:
        r = randn(shape, dtype, 4)
        got = F.conv2d(x, w, b, padding=1, groups=2, activation=activation, residual=r)
        assert_close(got, act(ref + T(np.asarray(r))), **t)
    # Depthwise and transposed take the same epilogue.
    wd = randn((12, 1, 3, 3), dtype, 5)
    ref_d = _torch(TF.conv2d, x, wd, None, stride=2, groups=6)
    r = randn(ref_d.shape, dtype, 6)
    assert_close(F.conv2d(x, wd, stride=2, groups=6, activation=activation, residual=r), act(ref_d + T(r)), **t)
    wt = randn((6, 4, 3, 3), dtype, 7)
    ref_t = _torch(TF.conv_transpose2d, x, wt, b[:4], stride=2, padding=1, output_padding=1)
    r = randn((4, 1, 1), dtype, 8)
    assert_close(F.conv_transpose2d(x, wt, b[:4], stride=2, padding=1, output_padding=1, activation=activation,
                                    residual=r), act(ref_t + T(r)), **tol(dtype, 54))
    # The transposed window path (phase grids at least a panel wide), with and without a residual.
    xw = randn((2, 6, 5, 40), dtype, 10, 2.0)
    ref_w = _torch(TF.conv_transpose2d, xw, wt, b[:4], stride=2, padding=1, output_padding=1)
    assert_close(F.conv_transpose2d(xw, wt, b[:4], stride=2, padding=1, output_padding=1, activation=activation),
                 act(ref_w), **tol(dtype, 54))
    r = randn(ref_w.shape, dtype, 11)
    assert_close(F.conv_transpose2d(xw, wt, b[:4], stride=2, padding=1, output_padding=1, activation=activation,
                                    residual=r), act(ref_w + T(r)), **tol(dtype, 54))
    # Unbatched input with a residual of the unbatched output's shape.
    ref_u = _torch(TF.conv2d, x[0], w, b, padding=1, groups=2)
    r = randn(ref_u.shape, dtype, 9)
    assert_close(F.conv2d(x[0], w, b, padding=1, groups=2, activation=activation, residual=r), act(ref_u + T(r)), **t)


def test_activation_specials():
    # Pre-activations across the range where gelu and silu change regime, NaN and infinities.
    # The reference is torch in float64: torch's float32 gelu makes NaN of +inf.
    x = np.concatenate([np.linspace(-12, 12, 61), [np.nan, np.inf, -np.inf]]).astype(np.float32).reshape(1, 1, 1, -1)
    w = np.ones((1, 1, 1, 1), np.float32)
    for activation, act in ACTIVATIONS.items():
        assert_close(F.conv2d(x, w, activation=activation), act(T(x).double()).float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(dtype):
    x, w, b = randn((2, 4, 6, 7), dtype, 1), randn((5, 4, 3, 3), dtype, 2), randn(5, dtype, 3)
    want = _torch(TF.conv2d, x, w, b, padding=1)
    out = np.full((2, 5, 6, 7), np.nan, dtype)
    assert F.conv2d(x, w, b, padding=1, out=out) is out
    assert_close(out, want, **tol(dtype, 36))
    out_t = np.empty((2, 5, 8, 9), dtype)
    assert F.conv_transpose2d(x, w.transpose(1, 0, 2, 3), b, out=out_t) is out_t
    assert_close(out_t, _torch(TF.conv_transpose2d, x, np.ascontiguousarray(w.transpose(1, 0, 2, 3)), b),
                 **tol(dtype, 45))
    out_u = np.empty((5, 6, 7), dtype)
    assert F.conv2d(x[1], w, b, padding=1, out=out_u) is out_u
    assert_close(out_u, want[1], **tol(dtype, 36))
    # out may be the input itself (a 1x1 convolution keeps the shape): the result is still right.
    w1 = randn((4, 4, 1, 1), dtype, 4)
    want_1 = _torch(TF.conv2d, x, w1, None)
    alias = x.copy()
    assert F.conv2d(alias, w1, out=alias) is alias
    assert_close(alias, want_1, **tol(dtype, 4))
    residual = x.copy()
    assert F.conv2d(x, w1, residual=residual, out=residual) is residual
    assert_close(residual, want_1 + T(x), **tol(dtype, 4))


def test_out_errors():
    x, w = randn((2, 4, 6, 7), np.float32, 1), randn((5, 4, 3, 3), np.float32, 2)
    with pytest.raises(TypeError, match="conv2d: Expected out tensor to have dtype float, but got double instead"):
        F.conv2d(x, w, out=np.empty((2, 5, 4, 5)))
    with pytest.raises(tops.ShapeError, match=r"conv2d: out has shape \[2, 5, 6, 7\], expected \[2, 5, 4, 5\]"):
        F.conv2d(x, w, out=np.empty((2, 5, 6, 7), np.float32))
    with pytest.raises(tops.ShapeError, match="conv_transpose2d: out must be C-contiguous"):
        F.conv_transpose2d(x, w.transpose(1, 0, 2, 3), out=np.empty((2, 5, 9, 8), np.float32).transpose(0, 1, 3, 2))
    with pytest.raises(TypeError, match="conv2d: out must be a numpy.ndarray, got list"):
        F.conv2d(x, w, out=[])
    read_only = np.empty((2, 5, 4, 5), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="conv2d: out is read-only"):
        F.conv2d(x, w, out=read_only)


# ---- packed filters ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_weights(dtype):
    x = randn((2, 6, 10, 9), dtype, 1)
    cases = [(randn((8, 6, 3, 3), dtype, 3), 1), (randn((8, 3, 3, 2), dtype, 4), 2), (randn((12, 1, 3, 3), dtype, 5), 6),
             (randn((8, 6, 1, 1), dtype, 6), 1)]
    for w, groups in cases:
        b = randn(w.shape[0], dtype, 2)
        packed = tops.pack_conv_weight(w, groups)
        assert (packed.dtype, packed.groups, packed.transposed) == (np.dtype(dtype).name, groups, False)
        assert tuple(packed.weight_shape) == w.shape
        # A conv2d filter serves every geometry.
        for kwargs in [dict(padding=1), dict(stride=2), dict(padding="same", dilation=2), dict(padding=(2, 0))]:
            want = _torch(TF.conv2d, x, w, b, groups=groups, **kwargs)
            assert_close(F.conv2d(x, packed, b, groups=groups, **kwargs), want, **tol(dtype, w[0].size))
        assert_close(F.conv2d(x, packed, groups=groups, padding="same", activation="relu", residual=x[:, :1]),
                     torch.relu(_torch(TF.conv2d, x, w, None, groups=groups, padding="same") + T(x[:, :1])),
                     **tol(dtype, w[0].size))
    wt, b = randn((6, 4, 3, 3), dtype, 7), randn(8, dtype, 8)
    for kwargs in [dict(stride=2, padding=1), dict(stride=(3, 2), dilation=(1, 2)), dict()]:
        packed = tops.pack_conv_weight(wt, 2, True, **kwargs)
        assert packed.transposed and packed.groups == 2
        for output_padding in ([0, 0], [min(1, max(s, d) - 1) for s, d in zip(packed.stride, packed.dilation)]):
            want = _torch(TF.conv_transpose2d, x, wt, b, groups=2, output_padding=output_padding, **kwargs)
            got = F.conv_transpose2d(x, packed, b, groups=2, output_padding=output_padding, **kwargs)
            assert_close(got, want, **tol(dtype, 6 * 9))


def test_packed_weight_errors():
    x, w = randn((1, 4, 6, 6), np.float32, 1), randn((4, 2, 3, 3), np.float32, 2)
    packed = tops.pack_conv_weight(w, 2)
    with pytest.raises(tops.ShapeError, match=r"conv2d: the weight was packed for groups=2, but this call has groups=1"):
        F.conv2d(x, packed)
    with pytest.raises(tops.ShapeError, match=r"conv_transpose2d: the weight was packed for conv2d \(pack_conv_weight"):
        F.conv_transpose2d(x, packed, groups=2)
    packed_t = tops.pack_conv_weight(w, 2, True, stride=2)
    with pytest.raises(tops.ShapeError, match=r"conv2d: the weight was packed for conv_transpose2d"):
        F.conv2d(x, packed_t, groups=2)
    with pytest.raises(tops.ShapeError, match=r"conv_transpose2d: the weight was packed for groups=2, "
                                              r"stride=\(2, 2\), padding=\(0, 0\), dilation=\(1, 1\), but this call has "
                                              r"groups=2, stride=\(1, 1\)"):
        F.conv_transpose2d(x, packed_t, groups=2)
    # torch's checks see the packed filter's shape and dtype.
    with pytest.raises(tops.ShapeError, match=r"conv2d: Given groups=2, weight of size \[4, 2, 3, 3\], expected "
                                              r"input\[1, 6, 6, 6\] to have 4 channels, but got 6 channels instead"):
        F.conv2d(randn((1, 6, 6, 6), np.float32, 3), packed, groups=2)
    with pytest.raises(TypeError, match="conv2d: expected scalar type Double but found Float"):
        F.conv2d(x.astype(np.float64), packed, groups=2)
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: weight must be 4-D"):
        tops.pack_conv_weight(w[0])
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: Given groups=3, expected weight to be divisible by 3"):
        tops.pack_conv_weight(w, 3)
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: non-positive groups is not supported"):
        tops.pack_conv_weight(w, 0)
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: non-positive stride is not supported"):
        tops.pack_conv_weight(w, 2, True, stride=0)
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: negative padding is not supported"):
        tops.pack_conv_weight(w, 2, True, padding=(0, -1))
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: non-positive dilation is not supported"):
        tops.pack_conv_weight(w, 2, True, dilation=0)
    with pytest.raises(tops.ShapeError, match="pack_conv_weight: kernel size should be greater than zero"):
        tops.pack_conv_weight(w[:, :, :0])
    with pytest.raises(TypeError, match=r"pack_conv_weight\(\): argument 'transposed' must be bool, not int"):
        tops.pack_conv_weight(w, 2, 1)
    with pytest.raises(TypeError, match='pack_conv_weight: "weight" has unsupported dtype int32'):
        tops.pack_conv_weight(w.astype(np.int32))


# ---- errors: torch's type and message ----------------------------------------------------------

def _r(*shape, dtype=np.float32):
    return randn(shape, dtype, 7)


X = _r(2, 3, 8, 8)
W = _r(4, 3, 3, 3)
WT = _r(3, 4, 3, 3)
X64 = X.astype(np.float64)

CONV2D_ERRORS = [
    # ranks and channels
    (_r(8, 112, 112, 3), _r(32, 3, 3, 3), None, {}),
    (_r(2, 6, 8, 8), _r(4, 2, 3, 3), None, dict(groups=2)),
    (_r(5, 8, 8), W, None, {}),
    (_r(8, 8), W, None, {}),
    (_r(1, 2, 3, 8, 8), W, None, {}),
    (_r(3), W, None, {}),
    (_r(8, 8), W, None, dict(groups=0)),
    (X, _r(4, 3), None, {}),
    (X, _r(4, 3), None, dict(groups=0)),
    (X, _r(4, 3, 3), None, {}),
    (X, _r(4, 3, 3), None, dict(stride=(1,))),
    (X, _r(4, 3, 3), None, dict(stride=(1,), padding=(0,), dilation=(1,))),
    (X, _r(4, 3, 3, 3, 3), None, {}),
    # kernel larger than the padded input
    (_r(1, 3, 2, 2), W, None, {}),
    (_r(1, 3, 2, 2), W, None, dict(padding=(0, 1))),
    (_r(1, 3, 5, 5), W, None, dict(dilation=3)),
    (_r(0, 3, 2, 2), W, None, {}),
    (_r(1, 3, 0, 8), W, None, dict(padding=1)),
    (_r(1, 3, 0, 8), _r(4, 3, 1, 1), None, {}),
    (_r(1, 3, 0, 8), _r(4, 3, 1, 1), None, dict(padding=1)),
    # (a zero dilation is reported after the kernel check; torch words it as its oneDNN path
    # does, which float32 takes for a batch of two)
    (_r(2, 3, 1, 1), W, None, dict(dilation=0)),
    # groups
    (X, _r(4, 1, 3, 3), None, dict(groups=2)),
    (_r(2, 4, 8, 8), _r(3, 2, 3, 3), None, dict(groups=2)),
    (_r(2, 6, 8, 8), _r(4, 1, 3, 3), None, dict(groups=6)),
    (X, W, None, dict(groups=0)),
    (X, W, None, dict(groups=-1)),
    (X, _r(0, 3, 3, 3), None, {}),
    # stride, padding, dilation
    (X, W, None, dict(stride=0)),
    (X, W, None, dict(stride=(1, -1))),
    (X, W, None, dict(dilation=0)),
    (X, W, None, dict(dilation=(1, 0))),
    (X, W, None, dict(dilation=-1)),
    (_r(2, 5, 8, 8), W, None, dict(dilation=-1)),
    (_r(2, 5, 8, 8), W, None, dict(dilation=0)),
    (X, W, None, dict(dilation=-1, groups=3)),
    (X, W, None, dict(padding=-1)),
    (X, W, None, dict(padding=(1, -1))),
    (X, W, None, dict(stride=0, padding=-1)),
    (X, W, None, dict(stride=0, dilation=0)),
    (X, W, None, dict(dilation=0, groups=0)),
    (X, W, None, dict(stride=(1, 1, 1))),
    (X, W, None, dict(padding=(1, 1, 1))),
    (X, W, None, dict(dilation=(1, 1, 1))),
    (X, W, None, dict(stride=())),
    (X, W, None, dict(stride=(1, 1, 1), padding=-1)),
    (X64, _r(4, 3, 0, 3, dtype=np.float64), None, dict()),  # float32 meets oneDNN's own words
    # bias
    (X, W, _r(3), {}),
    (X, W, _r(4, 1), {}),
    (X, W, _r(), {}),
    (_r(2, 5, 8, 8), W, _r(3), {}),
    (_r(1, 3, 2, 2), W, _r(3), {}),
    (X, W, _r(3), dict(dilation=0)),
    # padding strings
    (X, W, None, dict(stride=2, padding="same")),
    (X, W, None, dict(stride=(1, 2), padding="same")),
    (X, W, None, dict(stride=0, padding="same")),
    (X, W, None, dict(padding="foo")),
    (X, W, None, dict(padding="SAME")),
    (X, W, None, dict(padding="same", stride=(1, 1, 1))),
    (X, W, None, dict(padding="same", dilation=(1, 1, 1))),
    (X, W, None, dict(padding="same", groups=0)),
    (X, W, None, dict(padding="same", dilation=-1)),
    (X, _r(4, 3, 4, 4), None, dict(padding="same", dilation=0)),
    (X, _r(4, 3, 4, 4), None, dict(padding="same", dilation=-1)),
    (_r(2, 5, 8, 8), _r(4, 3, 4, 4), None, dict(padding="same")),
    (_r(2, 5, 8, 8), _r(4, 3, 4, 3), None, dict(padding="same", dilation=(1, 2))),
    (_r(1, 3, 0, 4), _r(4, 3, 4, 4), None, dict(padding="same")),
    (_r(8, 8), W, None, dict(padding="same")),
    (_r(8, 8), W, None, dict(padding="valid")),
    (X, _r(4, 3, 3), None, dict(padding="same")),
    (X, _r(4, 3), None, dict(padding="same")),
    (_r(1, 3, 2, 2), W, None, dict(padding="valid")),
]

CONV_TRANSPOSE2D_ERRORS = [
    (X, WT, None, dict(stride=2, output_padding=2)),
    (X, WT, None, dict(stride=2, output_padding=(0, 2))),
    (X, WT, None, dict(stride=2, output_padding=-1)),
    (X, WT, None, dict(stride=2, output_padding=-1, padding=-1)),
    (X, WT, None, dict(stride=0, output_padding=-1)),
    (X, WT, None, dict(output_padding=(0, 0, 0))),
    (X, WT, None, dict(output_padding=1, dilation=(1, 2))),
    (_r(2, 5, 8, 8), WT, None, {}),
    (_r(2, 6, 8, 8), _r(4, 2, 3, 3), None, dict(groups=2)),
    (_r(5, 8, 8), WT, None, {}),
    (X, _r(3, 2, 3, 3), None, dict(groups=2)),
    (X, WT, None, dict(groups=4)),
    (X, WT, _r(3), {}),
    (_r(2, 4, 8, 8), _r(4, 2, 3, 3), _r(2), dict(groups=2)),
    (_r(2, 5, 8, 8), WT, None, dict(stride=2, output_padding=2)),
    (X, WT, _r(3), dict(stride=2, output_padding=2)),
    (_r(1, 3, 1, 1), WT, None, dict(stride=2, output_padding=2, padding=4)),
    (_r(1, 3, 1, 1), WT, _r(3), dict(padding=4)),
    (_r(8, 8), WT, None, {}),
    (X, _r(3, 4, 3), None, {}),
    (X, _r(3, 4, 3), None, dict(stride=(1,), padding=(0,), dilation=(1,), output_padding=(0,))),
    (X, _r(3, 4), None, {}),
    (_r(1, 3, 1, 1), WT, None, dict(padding=2)),
    (_r(1, 3, 1, 1), WT, None, dict(padding=(5, 0))),
    (_r(1, 3, 2, 2), WT, None, dict(padding=3, dilation=2)),
    (X, WT, None, dict(stride=0)),
    (X, WT, None, dict(groups=0)),
    (X, WT, None, dict(padding=-1)),
    (X, WT, None, dict(dilation=-1)),
    (_r(2, 5, 8, 8), WT, None, dict(dilation=-1)),
    (X, WT, None, dict(dilation=-1, groups=2)),
    (X, WT, None, dict(dilation=-1, output_padding=-1)),
    (_r(0, 3, 8, 8), WT, None, dict(dilation=-1)),
    (_r(1, 3, 0, 8), WT, None, {}),
    (_r(1, 3, 0, 1), WT, None, dict(padding=4)),
    (_r(2, 0, 8, 8), _r(0, 4, 3, 3), None, {}),
    (_r(0, 3, 1, 1), WT, None, dict(padding=4)),
    (X64, WT.astype(np.float64), None, dict(dilation=0)),
    (X64, WT.astype(np.float64), None, dict(dilation=(1, 0))),
    (X64, WT.astype(np.float64), None, dict(dilation=0, output_padding=1, stride=2)),
    (X64, _r(3, 4, 0, 3, dtype=np.float64), None, {}),
    (X64, _r(3, 4, 0, 3, dtype=np.float64), None, dict(output_padding=1)),
    (X64, _r(3, 0, 3, 3, dtype=np.float64), None, {}),
]


def _expect_torch_error(fn, args, kwargs):
    with pytest.raises(Exception) as caught:
        fn(*[None if a is None else T(np.array(a)) for a in args], **kwargs)
    return caught.value


def _assert_same_error(ours_fn, torch_fn, op, args, kwargs):
    expected = _expect_torch_error(torch_fn, args, kwargs)
    with pytest.raises(type(expected)) as ours:
        ours_fn(*args, **kwargs)
    assert str(ours.value) == f"{op}: {expected}"
    if type(expected) is RuntimeError:
        assert isinstance(ours.value, tops.ShapeError)


@pytest.mark.single_isa
@pytest.mark.parametrize("x, w, b, kwargs", CONV2D_ERRORS, ids=[f"conv2d-{i}" for i in range(len(CONV2D_ERRORS))])
def test_conv2d_errors_match_torch(x, w, b, kwargs):
    _assert_same_error(F.conv2d, TF.conv2d, "conv2d", (x, w, b), kwargs)


@pytest.mark.single_isa
@pytest.mark.parametrize("x, w, b, kwargs", CONV_TRANSPOSE2D_ERRORS,
                         ids=[f"conv_transpose2d-{i}" for i in range(len(CONV_TRANSPOSE2D_ERRORS))])
def test_conv_transpose2d_errors_match_torch(x, w, b, kwargs):
    _assert_same_error(F.conv_transpose2d, TF.conv_transpose2d, "conv_transpose2d", (x, w, b), kwargs)


@pytest.mark.single_isa
def test_dtype_errors():
    # A mismatched weight: torch's wording where it checks on its reference path (oneDNN, which
    # torch picks for most float32 calls, words it differently).
    x1 = _r(1, 3, 8, 8)
    for op, fn, torch_fn, w in [("conv2d", F.conv2d, TF.conv2d, W), ("conv_transpose2d", F.conv_transpose2d,
                                                                     TF.conv_transpose2d, WT)]:
        for xx, ww in [(x1, w.astype(np.float64)), (x1.astype(np.float64), w)]:
            expected = _expect_torch_error(torch_fn, (xx, ww), {})
            with pytest.raises(TypeError) as ours:
                fn(xx, ww)
            assert str(ours.value) == f"{op}: {expected}"
        with pytest.raises(TypeError, match=rf"{op}: Input type \(float\) and bias type \(double\) should be the same"):
            fn(X, w, _r(4, dtype=np.float64))
        with pytest.raises(TypeError, match=rf"{op}: Input type \(double\) and bias type \(float\) should be the same"):
            fn(X64, w.astype(np.float64), _r(4))
        for dtype in (np.int32, np.int64, np.float16, np.bool_):
            with pytest.raises(TypeError, match=f'{op}: "input" has unsupported dtype {np.dtype(dtype)}'):
                fn(X.astype(dtype), w)
            with pytest.raises(TypeError, match=f'{op}: "weight" has unsupported dtype {np.dtype(dtype)}'):
                fn(X, w.astype(dtype))
            with pytest.raises(TypeError, match=f'{op}: "bias" has unsupported dtype {np.dtype(dtype)}'):
                fn(X, w, np.zeros(4, dtype))
        with pytest.raises(TypeError, match="must be an array-like"):
            fn(object(), w)
    # The conv2d bias check comes first, as in torch.
    expected = _expect_torch_error(TF.conv2d, (_r(8, 8), W, _r(4, dtype=np.float64)), {})
    with pytest.raises(TypeError) as ours:
        F.conv2d(_r(8, 8), W, _r(4, dtype=np.float64))
    assert str(ours.value) == f"conv2d: {expected}"


@pytest.mark.single_isa
def test_argument_type_errors():
    cases = [
        (F.conv2d, dict(stride=1.5), "conv2d(): argument 'stride' must be tuple of ints, not float"),
        # After the first element torch unpacks indices, with its own message (pos counts from 1).
        (F.conv2d, dict(padding=(1, 1.5)), "conv2d(): argument 'padding' failed to unpack the object at pos 2 with "
                                           'error "type must be tuple of ints,but got float"'),
        (F.conv2d, dict(stride=(1, np.bool_(True))), "conv2d(): argument 'stride' failed to unpack the object at pos 2 "
                                                     'with error "type must be tuple of ints,but got numpy.bool"'),
        (F.conv2d, dict(padding=None), "conv2d(): argument 'padding' must be tuple of ints, not NoneType"),
        (F.conv2d, dict(groups="2"), "conv2d(): argument 'groups' must be int, not str"),
        (F.conv2d, dict(groups=True), "conv2d(): argument 'groups' must be int, not bool"),
        (F.conv2d, dict(stride=(True, 1)), "conv2d(): argument 'stride' must be tuple of ints, but found element of "
                                           "type bool at pos 0"),
        (F.conv_transpose2d, dict(stride=1.5), "conv_transpose2d(): argument 'stride' must be tuple of ints, not float"),
        (F.conv_transpose2d, dict(groups=1.0), "conv_transpose2d(): argument 'groups' must be int, not float"),
        (F.conv_transpose2d, dict(padding="same"), "conv_transpose2d(): argument 'padding' must be tuple of ints, not "
                                                   "str"),
        (F.conv_transpose2d, dict(output_padding=[0, None]), "conv_transpose2d(): argument 'output_padding' failed "
                                                             "to unpack the object at pos 2 with error \"type must be "
                                                             'tuple of ints,but got NoneType"'),
    ]
    for fn, kwargs, message in cases:
        with pytest.raises(TypeError) as caught:
            fn(X, W if fn is F.conv2d else WT, **kwargs)
        assert str(caught.value) == message
        if "unpack" in message:
            torch_fn = TF.conv2d if fn is F.conv2d else TF.conv_transpose2d
            expected = _expect_torch_error(torch_fn, (X, W if fn is F.conv2d else WT), kwargs)
            assert str(expected) == message
    # ... which lets a Python bool through there as 0 or 1.
    for kwargs in (dict(stride=(2, True)), dict(padding=[1, False]), dict(dilation=(1, True))):
        assert_close(F.conv2d(X, W, **kwargs), TF.conv2d(torch.from_numpy(X), torch.from_numpy(W), **kwargs))
    assert_close(F.conv_transpose2d(X, WT, stride=2, output_padding=(1, True)),
                 TF.conv_transpose2d(torch.from_numpy(X), torch.from_numpy(WT), stride=2, output_padding=(1, True)))
    # NumPy and 0-d torch integers are ints, as torch's parser takes them.
    assert F.conv2d(X, W, stride=np.int64(2), groups=np.int32(1)).shape == (2, 4, 3, 3)
    assert F.conv2d(X, W, stride=torch.tensor(2)).shape == (2, 4, 3, 3)


@pytest.mark.single_isa
def test_huge_sizes_raise_before_allocating():
    x, w = _r(1, 1, 3, 3), _r(1, 1, 1, 1)
    for fn, torch_fn in [(F.conv2d, TF.conv2d), (F.conv_transpose2d, TF.conv_transpose2d)]:
        expected = _expect_torch_error(torch_fn, (x, w), dict(stride=2**70))
        with pytest.raises(ValueError) as ours:
            fn(x, w, stride=2**70)
        assert str(ours.value) == str(expected) == "Overflow when unpacking long long"
    with pytest.raises(tops.ShapeError, match=r"conv2d: an output of shape \[1, 1, 2199023255555, 2199023255555\] is "
                                              r"too large to allocate"):
        F.conv2d(x, w, padding=2**40)
    with pytest.raises(tops.ShapeError, match="conv_transpose2d: an output of shape .* is too large to allocate"):
        F.conv_transpose2d(x[:0], w, stride=2**62)
    # Dilations and strides far beyond the input are fine when the output is small.
    w2 = _r(1, 1, 2, 2)
    check_conv2d(x, w2, dilation=2**40, padding=2**39)
    check_conv2d(x, w2, stride=2**62, padding=1)


@pytest.mark.single_isa
def test_extension_errors():
    for op, fn, w in [("conv2d", F.conv2d, W), ("conv_transpose2d", F.conv_transpose2d, WT)]:
        with pytest.raises(tops.ShapeError, match=rf"{op}: unknown activation 'tanh'; expected None, 'relu', 'gelu', "
                                                  rf"'gelu_tanh' or 'silu'"):
            fn(X, w, activation="tanh")
        with pytest.raises(tops.ShapeError, match=rf"{op}: residual of shape \[3, 1, 1\] does not broadcast to the "
                                                  rf"output shape \[2, 4, \d+, \d+\]"):
            fn(X, w, residual=_r(3, 1, 1))
        with pytest.raises(tops.ShapeError, match=rf"{op}: residual of shape \[1, 2, 4, 1, 1\] does not broadcast"):
            fn(X, w, residual=_r(1, 2, 4, 1, 1))
        with pytest.raises(TypeError, match=f"{op}: residual has dtype float64, expected float32"):
            fn(X, w, residual=_r(4, 1, 1, dtype=np.float64))
        with pytest.raises(TypeError, match=f'{op}: "residual" has unsupported dtype int64'):
            fn(X, w, residual=np.zeros((4, 1, 1), np.int64))


# ---- modules -----------------------------------------------------------------------------------

CONV2D_MODULES = [
    ((3, 8, 3), {}),
    ((3, 8, (3, 5)), dict(stride=(2, 1), padding=(4, 2), dilation=(3, 1))),
    ((4, 8, 3), dict(padding=1, groups=2, bias=False)),
    ((6, 12, 3), dict(padding=1, groups=6)),
    ((3, 5, 4), dict(padding="same")),
    ((3, 5, (4, 3)), dict(padding="same", dilation=(1, 2))),
    ((3, 5, 3), dict(padding="valid", stride=2)),
    ((3, 5, 3), dict(padding=2, padding_mode="reflect")),
    ((3, 5, 3), dict(padding=(1, 3), padding_mode="replicate", stride=2)),
    ((3, 5, (3, 2)), dict(padding=(2, 1), padding_mode="circular", dilation=2)),
    ((3, 5, 4), dict(padding="same", padding_mode="reflect")),
    ((3, 5, 3), dict(padding="same", padding_mode="circular", dilation=2)),
    ((3, 5, 3), dict(padding="valid", padding_mode="replicate")),
    ((3, 5, 1), dict(padding=-1, padding_mode="reflect")),
    ((3, 5, 3), dict(padding=(2, -1), padding_mode="circular")),
    ((4, 6, 3), dict(padding=1, padding_mode="replicate", groups=2, bias=False)),
]


@pytest.mark.parametrize("args, kwargs", CONV2D_MODULES, ids=[str(i) for i in range(len(CONV2D_MODULES))])
def test_conv2d_module_matches_torch(args, kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(*args, **kwargs)
    ours = tnn.Conv2d(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    fan_in = args[2] if isinstance(args[2], int) else 1
    k = theirs.weight[0].numel() * fan_in
    for x_shape in [(2, args[0], 9, 8), (args[0], 7, 10)]:
        x = torch.randn(*x_shape)
        assert_close(ours(x), theirs(x).detach(), **tol(np.float32, k))
    assert ours.weight.shape == tuple(theirs.weight.shape)


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=(3, 2), padding=(1, 0), dilation=(2, 1), groups=2, bias=False),
                                    dict(stride=2, output_padding=(1, 0), dilation=1, groups=4)])
def test_conv_transpose2d_module_matches_torch(kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(4, 8, 3, **kwargs)
    ours = tnn.ConvTranspose2d(4, 8, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    for x_shape in [(2, 4, 5, 6), (4, 3, 7)]:
        x = torch.randn(*x_shape)
        assert_close(ours(x), theirs(x).detach(), **tol(np.float32, 8 * 9))


def test_conv_transpose2d_output_size():
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=(3, 2), padding=1, dilation=(1, 2))
    ours = tnn.ConvTranspose2d(2, 3, 3, stride=(3, 2), padding=1, dilation=(1, 2))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 2, 5, 5)
    for size in ([13, 12], [15, 11], (14, 12), [1, 3, 13, 11], torch.Size([15, 12])):
        assert_close(ours(x, output_size=size), theirs(x, output_size=size).detach(), **tol(np.float32, 18))
    xu = torch.randn(2, 5, 5)
    for size in ([13, 12], [3, 14, 11]):
        assert_close(ours(xu, output_size=size), theirs(xu, output_size=size).detach(), **tol(np.float32, 18))
    module = tnn.ConvTranspose2d(2, 3, 3, stride=2)
    reference = torch.nn.ConvTranspose2d(2, 3, 3, stride=2)
    cases = [(torch.randn(1, 2, 5, 5), [11]), (torch.randn(1, 2, 5, 5), [13, 12]), (torch.randn(2, 5, 5), (10, 12)),
             (torch.randn(2, 5, 5), [1, 3, 12, 12]), (torch.randn(1, 1, 2, 5, 5), [11, 11]), (torch.randn(5, 5), [11, 11]),
             (torch.randn(1, 2, 5, 5), 11)]
    for x, size in cases:
        expected = _expect_torch_error(reference, (x.numpy(),), dict(output_size=size))
        with pytest.raises(type(expected)) as ours_error:
            module(x, output_size=size)
        assert is_torch_message(ours_error.value, expected), (str(ours_error.value), str(expected))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_at_the_edges_match_torch(mode):
    """Pads as large as the input and beyond, empty planes and wrong ranks: the values where
    torch computes, torch's error where it refuses (F.pad's, or conv2d's after padding)."""
    cases = [((2, 3, 3), 3, 3), ((2, 3, 3), (3, 0), 3), ((2, 3, 3), (0, 3), 3), ((1, 2, 3, 3), 4, 3),
             ((1, 2, 3, 3), 2, 3), ((1, 2, 0, 3), 1, 3), ((1, 2, 1, 5), 1, 1), ((1, 2, 1, 5), (2, 0), 1),
             ((1, 0, 4, 4), 1, 3), ((1, 2, 0, 5), 0, 1), ((1, 2, 2, 2), 1, 5), ((1, 4, 5, 5), 1, 3), ((0, 2, 4, 4), 1, 3),
             ((4, 4), 1, 3), ((1, 1, 2, 4, 4), 1, 3)]
    for x_shape, padding, kernel in cases:
        theirs = torch.nn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode)
        ours = tnn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode)
        ours.load_state_dict(theirs.state_dict())
        x = randn(x_shape, np.float32, 1)
        try:
            want = theirs(T(x)).detach()
        except (RuntimeError, NotImplementedError) as expected:
            with pytest.raises(tops.ShapeError) as ours_error:
                ours(x)
            conv_error = str(expected).startswith(("Given groups", "Calculated padded"))
            assert str(ours_error.value) == (f"conv2d: {expected}" if conv_error else str(expected))
        else:
            assert_close(ours(x), want, **tol(np.float32, 2 * kernel * kernel))


def _sets_sorted(message: str) -> str:
    """The message with the members of each printed set sorted: torch prints Python sets,
    whose order changes from process to process."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


@pytest.mark.single_isa
def test_module_constructor_errors_match_torch():
    cases = [
        ("Conv2d", (2, 3, 3), dict(padding_mode="foo")),
        ("Conv2d", (2, 3, 3), dict(padding="foo")),
        ("Conv2d", (2, 3, 3), dict(padding="same", stride=2)),
        ("Conv2d", (2, 3, 3), dict(padding="same", stride=(1, 2))),
        ("Conv2d", (2, 3, 3), dict(groups=0)),
        ("Conv2d", (3, 4, 3), dict(groups=2)),
        ("Conv2d", (4, 3, 3), dict(groups=2)),
        ("Conv2d", (2, -1, 3), {}),
        ("ConvTranspose2d", (2, 3, 3), dict(padding_mode="reflect")),
        ("ConvTranspose2d", (2, 3, 3), dict(padding_mode="foo")),
        ("ConvTranspose2d", (3, 4, 3), dict(groups=2)),
        ("ConvTranspose2d", (4, 3, 3), dict(groups=2)),
        ("ConvTranspose2d", (4, 4, 3), dict(groups=-2)),
    ]
    for name, args, kwargs in cases:
        with pytest.raises(Exception) as caught:
            getattr(torch.nn, name)(*args, **kwargs)
        expected = caught.value
        with pytest.raises(type(expected)) as ours:
            getattr(tnn, name)(*args, **kwargs)
        assert _sets_sorted(str(ours.value)) == _sets_sorted(str(expected))
    with pytest.raises(TypeError, match="Conv2d: unsupported dtype int32"):
        tnn.Conv2d(2, 3, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="Conv2d: tensorops computes on the CPU, got device 'cuda'"):
        tnn.Conv2d(2, 3, 3, device="cuda")
    assert tnn.Conv2d(2, 3, 3, device="cpu").weight.dtype == np.float32
    assert tnn.Conv2d(2, 3, 3, device=torch.device("cpu"), dtype=np.float64).weight.dtype == np.float64


@pytest.mark.single_isa
def test_conv_transpose2d_module_refuses_padding_modes_at_forward():
    module = tnn.ConvTranspose2d(2, 3, 3)
    module.padding_mode = "reflect"
    reference = torch.nn.ConvTranspose2d(2, 3, 3)
    reference.padding_mode = "reflect"
    x = randn((1, 2, 4, 4), np.float32, 1)
    expected = _expect_torch_error(reference, (x,), {})
    with pytest.raises(ValueError) as ours:
        module(x)
    assert str(ours.value) == str(expected)


def test_module_initialisation_like_torch():
    for module in (tnn.Conv2d(6, 8, (3, 5), groups=2), tnn.ConvTranspose2d(6, 8, (3, 5), groups=2)):
        fan_in = module.weight.shape[1] * 15
        bound = 1 / math.sqrt(fan_in)
        assert module.weight.dtype == np.float32 and module.bias.dtype == np.float32
        assert np.abs(module.weight).max() <= bound and np.abs(module.bias).max() <= bound
        # Uniform over the whole range, not a narrower one.
        assert np.abs(module.weight).max() > 0.8 * bound
    empty = tnn.Conv2d(0, 4, 3)
    np.testing.assert_array_equal(empty.bias, np.zeros(4, np.float32))


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_modules_repack_when_weights_change(kind):
    x = torch.randn(2, 4, 7, 7)
    given = x if kind == "torch" else x.numpy()
    for name, kwargs in [("Conv2d", dict(padding=1)), ("ConvTranspose2d", dict(stride=2, padding=1))]:
        theirs = getattr(torch.nn, name)(4, 6, 3, **kwargs)
        ours = getattr(tnn, name)(4, 6, 3, **kwargs)
        t = tol(np.float32, 54)
        ours.load_state_dict(theirs.state_dict())
        assert_close(ours(given), theirs(x).detach(), **t)
        other = getattr(torch.nn, name)(4, 6, 3, **kwargs)
        ours.load_state_dict(other.state_dict())
        assert_close(ours(given), other(x).detach(), **t)
        # Assignment, in-place arithmetic and dtype conversion are seen; writes through an index
        # after reset_packed_weight().
        ours.weight = other.weight.detach().numpy() * 2
        assert_close(ours(given), _twice(other, x), **t)
        ours.weight /= 2
        assert_close(ours(given), other(x).detach(), **t)
        ours.weight[...] = 0
        ours.reset_packed_weight()
        zero = ours(given)
        np.testing.assert_allclose(zero, np.broadcast_to(ours.bias[:, None, None], zero.shape[1:])[None].repeat(2, 0))
        ours.load_state_dict(other.state_dict())
        ours.double()
        x64 = x.double()
        assert_close(ours(x64 if kind == "torch" else x64.numpy()), other.double()(x64).detach(), **tol(np.float64, 54))


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_conv2d_module_reuses_its_checks_only_for_a_like_call(kind):
    # nn.Conv2d keeps the plan of its last call (and, for an ndarray input, goes straight to
    # the kernel when the call is like the last one); any change of the input's shape or
    # dtype, the int arguments, the bias or the filter must go through torch's checks again,
    # and the bias's current values are used.
    def given(t):
        return t if kind == "torch" else t.numpy()

    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(4, 6, 3, padding=1)
    ours = tnn.Conv2d(4, 6, 3, padding=1)
    ours.load_state_dict(theirs.state_dict())
    t = tol(np.float32, 36)
    for shape in [(2, 4, 7, 7), (2, 4, 7, 7), (1, 4, 5, 9), (1, 4, 5, 9), (4, 6, 6), (4, 6, 6), (0, 4, 5, 5)]:
        x = torch.randn(*shape)
        assert_close(ours(given(x)), theirs(x).detach(), **t)
        if kind == "numpy" and shape[0]:
            # The layer's own Parameter bias is kept: a like call goes straight to the kernel.
            assert ours.__dict__["_plan_memo"][0] is not None
    with pytest.raises(tops.ShapeError, match="expected input.* to have 4 channels, but got 3 channels"):
        ours(np.zeros((1, 3, 7, 7), np.float32))
    x = torch.randn(2, 4, 7, 7)
    assert_close(ours(x.flip(2) if kind == "torch" else x.numpy()[:, :, ::-1]), theirs(x.flip(2)).detach(), **t)
    for attr, value in [("stride", (2, 1)), ("padding", (0, 2)), ("stride", (1, 1)), ("dilation", (2, 2)),
                        ("padding", "same")]:
        setattr(ours, attr, value)
        setattr(theirs, attr, value)
        assert_close(ours(given(x)), theirs(x).detach(), **t)
        assert_close(ours(given(x)), theirs(x).detach(), **t)
    ours.bias[...] += 1
    with torch.no_grad():
        theirs.bias += 1
    assert_close(ours(given(x)), theirs(x).detach(), **t)
    ours.bias = theirs.bias.detach().numpy() * 3
    with torch.no_grad():
        theirs.bias *= 3
    assert_close(ours(given(x)), theirs(x).detach(), **t)
    ours.bias = None
    with torch.no_grad():
        theirs.bias = None
    assert_close(ours(given(x)), theirs(x).detach(), **t)
    with pytest.raises(TypeError, match="conv2d"):
        ours(given(x.double()))  # float32 filter, float64 input: refused as torch refuses it
    ours.double()
    assert_close(ours(given(x.double())), theirs.double()(x.double()).detach(), **tol(np.float64, 36))


def _twice(module, x):
    with torch.no_grad():
        weight = module.weight.clone()
        module.weight.mul_(2)
        result = module(x)
        module.weight.copy_(weight)
    return result


def test_modules_inside_a_torch_model():
    """A torch model of these layers, rebuilt with tensorops.nn under the same names, loads
    its state_dict and computes the same output."""
    torch.manual_seed(0)

    def build(nn):
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.Conv2d(8, 16, 1),
                             nn.ConvTranspose2d(16, 4, 4, stride=2, padding=1))

    theirs, ours = build(torch.nn), build(tnn)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 12, 10)
    assert_close(ours(x), theirs(x).detach(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_shifted_window_band_buffer_left_by_another_call(threads):
    """The shifted-window path's band rows share their zero columns with the next row, and a
    plane's first row reads the zeros that end the plane before it: a short last band must
    write them too rather than read what an earlier call left in the thread's buffer."""
    before = tops.get_num_threads()
    tops.set_num_threads(threads)
    try:
        w = randn((17, 40, 3, 3), np.float32, 2)
        F.conv2d(np.full((1, 40, 9, 70), 1e6, np.float32), w, None, padding=1)  # another row pitch
        for h in (3, 5, 11):
            x = randn((1, 40, h, 64), np.float32, h)
            assert_close(F.conv2d(x, w, None, padding=1), _torch(TF.conv2d, x, w, None, padding=1),
                         **tol(np.float32, 360))
    finally:
        tops.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_window_strides(dtype):
    """Convolutions with more than one tap take the shifted-window path at any stride: the
    band holds each stride phase (row phase x column phase) that some tap reads as a plane
    of its own, and phases no tap reads are left out. Strides past the kernel, dilations
    that put every tap in one phase, paddings wider than the kernel, phases with no inside
    column, every channel count around the microkernel's blocks, non-contiguous inputs."""
    x = randn((2, 5, 23, 19), dtype, 1)
    for i, (kernel, stride, padding, dilation) in enumerate([
            ((7, 7), 2, 3, 1), ((3, 3), 2, 1, 1), ((3, 3), 2, 0, 1), ((3, 5), (2, 1), (4, 2), (3, 1)),
            ((2, 2), 3, 1, (3, 1)), ((3, 3), 4, 2, 1), ((3, 3), 2, 1, 2), ((2, 3), (1, 3), (0, 5), 1),
            ((4, 4), 3, 4, 2), ((1, 3), (2, 2), (0, 1), 1), ((5, 5), (3, 2), (2, 6), (1, 3))]):
        w = randn((9, 5, *kernel), dtype, 10 + i)
        check_conv2d(x, w, randn(9, dtype, 30 + i), stride=stride, padding=padding, dilation=dilation)
        check_conv2d(x[:, :, ::-1, ::2], w, None, stride=stride, padding=padding, dilation=dilation)
    # Narrow inputs: column phases whose every position is padding.
    check_conv2d(randn((1, 3, 6, 2), dtype, 40), randn((4, 3, 3, 3), dtype, 41), None, stride=3, padding=3)
    check_conv2d(randn((1, 3, 2, 1), dtype, 42), randn((4, 3, 2, 5), dtype, 43), None, stride=(1, 4), padding=(1, 4))
    for cin in (1, 63, 64, 65, 129):
        check_conv2d(randn((1, cin, 9, 8), dtype, cin), randn((15, cin, 3, 3), dtype, cin + 1), None, stride=2,
                     padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_small_planes(dtype, assumed_l2):
    """1x1 stride-1 convolutions on planes of at most 144 outputs that the direct GEMM's
    panels would fill only partly, with at least 128 output channels filling the lanes and 64
    input channels, take the shifted-window path with channels in the lanes (its tiles run
    across rows and images); a filter kept for many calls (a module's, or pack_conv_weight's)
    makes those panels on its first such plane, from its general ones (below 1 MiB of L2 a
    core only planes of at most 4 outputs take the path; both sizes are tested). Planes that
    take it (7x7, 10x10, 5x5, 3x5, 1x1, 2x2) and, beside them, layers that stay on the GEMM
    (channels that do not fill the lanes, too few input channels, 12x12); groups, batch 1 and 3,
    non-contiguous input (read in place where its rows lie as the band's), NaN and infinities, the fused extensions, the same filter on a
    large plane and again on a small one, a lowered ISA cap after the first call (the panels
    keep the kernel set they were made for), new weights, identical bits for any thread
    count."""
    cases = [  # (cin, cout, groups, (h, w))
        (256, 128, 1, (7, 7)), (300, 144, 1, (10, 10)), (64, 160, 1, (5, 5)), (128, 256, 2, (7, 7)),
        (260, 128, 1, (1, 1)), (96, 128, 1, (3, 5)), (72, 130, 1, (7, 7)), (40, 128, 1, (7, 7)),
        (512, 128, 1, (12, 12)), (128, 256, 1, (2, 2))]
    for i, (cin, cout, groups, (h, w)) in enumerate(cases):
        x = randn((3 if i % 2 else 1, cin, h, w), dtype, 300 + i)
        x[0, 1, 0, w - 1], x[-1, cin - 1, h - 1, 0] = np.nan, -np.inf
        wt = randn((cout, cin // groups, 1, 1), dtype, 320 + i)
        b = randn(cout, dtype, 340 + i) if i % 2 == 0 else None
        check_conv2d(x, wt, b, groups=groups)
        check_conv2d(x[:, :, ::-1], wt, b, groups=groups)
        # Rows that lie as a band's are read in place whatever the image and channel strides:
        # reversed, every other channel of a larger array, one image broadcast to the batch.
        check_conv2d(x[::-1, ::-1], wt, b, groups=groups)
        check_conv2d(randn((x.shape[0], 2 * cin, h, w), dtype, 350 + i)[:, ::2], wt, b, groups=groups)
        check_conv2d(np.broadcast_to(x[:1], x.shape), wt, b, groups=groups)
        want = _torch(TF.conv2d, x, wt, b, groups=groups)
        assert_close(F.conv2d(x, tops.pack_conv_weight(wt, groups=groups), b, groups=groups), want,
                     **tol(dtype, cin // groups))
    # A module: small plane first (its window panels made then), a large plane, small again.
    conv = tnn.Conv2d(320, 128, 1).to(dtype)
    ref = torch.nn.Conv2d(320, 128, 1).to(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    conv.load_state_dict(ref.state_dict())
    small, large = randn((2, 320, 7, 7), dtype, 360), randn((1, 320, 20, 17), dtype, 361)
    with torch.no_grad():
        for x in (small, large, small):
            assert_close(conv(x), ref(T(x)).numpy(), **tol(dtype, 320))
        previous = tops._core.isa_cap()
        tops._core.set_isa_cap("generic")
        try:
            assert_close(conv(small), ref(T(small)).numpy(), **tol(dtype, 320))
        finally:
            tops._core.set_isa_cap(previous)
        # New weights: the module packs them afresh, window panels included.
        ref.weight.mul_(-2)
        conv.load_state_dict(ref.state_dict())
        assert_close(conv(small), ref(T(small)).numpy(), **tol(dtype, 320))
    # The fused extensions, and the bits for every thread count.
    x, wt, b = randn((3, 288, 7, 7), dtype, 370), randn((128, 288, 1, 1), dtype, 371), randn(128, dtype, 372)
    r = randn((3, 128, 7, 7), dtype, 373)
    got = assert_same_for_thread_counts(lambda: F.conv2d(x, wt, b, residual=r, activation="gelu"))
    assert_close(got, TF.gelu(_torch(TF.conv2d, x, wt, b) + T(r)), **tol(dtype, 288))


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide_stride1_paths(dtype):
    """Stride-1 convolutions take the shifted-window path (a padded input band read in place
    per tap) and 3x3 depthwise its row-walking kernel: every padding, dilation, group count
    and layout they handle, against torch."""
    x = randn((2, 64, 11, 13), dtype, 1)
    w = randn((20, 64, 3, 3), dtype, 2)
    b = randn(20, dtype, 3)
    check_conv2d(x, w, b, padding=1)
    check_conv2d(x, w, b, padding=(0, 2), dilation=(2, 3))
    check_conv2d(x, randn((20, 64, 2, 4), dtype, 4), b, padding="same")
    check_conv2d(x, randn((20, 64, 5, 1), dtype, 5), None, padding=(3, 0))
    check_conv2d(x, w, b, padding="valid")
    check_conv2d(x, randn((30, 32, 3, 3), dtype, 6), randn(30, dtype, 7), padding=1, groups=2)
    check_conv2d(x[:, :, ::-1, 1:], w, b, padding=1)  # negative and offset strides
    check_conv2d(np.asfortranarray(x), w, b, padding=2)
    check_conv2d(randn((1, 40, 3, 70), dtype, 8), randn((17, 40, 3, 3), dtype, 9), None, padding=1)
    # The fused extensions on this path.
    r = randn((2, 20, 11, 13), dtype, 10)
    got = F.conv2d(x, w, b, padding=1, residual=r, activation="relu")
    want = torch.relu(_torch(TF.conv2d, x, w, b, padding=1) + T(r))
    assert_close(got, want, **tol(dtype, 64 * 9))
    # Depthwise 3x3 over wide planes, every row count mod 4, and small same-size planes.
    for h in (5, 6, 7, 8, 21):
        xd = randn((2, 3, h, 37), dtype, 11 + h)
        check_conv2d(xd, randn((3, 1, 3, 3), dtype, 12), randn(3, dtype, 13), padding=1, groups=3)
        check_conv2d(xd, randn((6, 1, 3, 3), dtype, 14), None, padding=(0, 2), groups=3)
    check_conv2d(randn((1, 8, 7, 7), dtype, 15), randn((8, 1, 3, 3), dtype, 16), randn(8, dtype, 17), padding=1,
                 groups=8)
    check_conv2d(randn((1, 8, 5, 6), dtype, 15), randn((8, 1, 5, 5), dtype, 16), None, padding=2, groups=8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_column_walk(dtype):
    """3x3 depthwise layers at stride 1 and 3x3 and 5x5 at stride 2 walk columns of two
    vectors (one where one remains) down the rows, in which a vector whose loads would leave
    the row loads under masks (the first, the second, both or neither): widths and paddings
    (to past the kernel's half) that put the seams at every place, for vectors of 2 to 16
    lanes; heights of a few rows and of many; runs of rows that start and end anywhere in the
    plane (three planes are split into blocks of rows, more of them with more threads), each
    of which first takes in the rows above its first output row."""
    for k, stride in ((3, 1), (3, 2), (5, 2)):
        for width in (k, 9, 17, 18, 33, 35, 56, 66, 67, 100):
            for pad in range(k // 2 + 2):
                for height in (k, 7, 29):
                    x = randn((1, 3, height, width), dtype, width + pad)
                    w, b = randn((3, 1, k, k), dtype, k), randn(3, dtype, 5)
                    assert_same_for_thread_counts(
                        lambda: check_conv2d(x, w, b, stride=stride, padding=pad, groups=3)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_window_channels_in_lanes(dtype):
    """Output channels that fill the vector lanes put the output pixels in the microkernel's
    rows instead, with the x86 kernel sets (pixel-major tiles, then transposed to NCHW):
    channel counts at and around the panel widths (AVX-512 16 for float64 and 32 for float32,
    AVX2 8 and 16), rows of 1 to 31 pixels against MR = 14 and 6: rows of MR - 1 pixels and
    more as one stream of full tiles that cross from row to row, rows of at most MR / 2 two to
    a tile, those in between a tile each; strides, dilation, groups, parts of the channels
    per thread, non-contiguous input, the fused extensions and a streamed output. (Only
    filters of at least 256 multiply-adds an output take this path: 29 input channels and
    more here.)"""
    for i, (cout, size, kwargs) in enumerate([
            (32, (14, 14), dict(padding=1)), (64, (9, 31), dict(padding=1)), (28, (5, 13), dict(padding=1)),
            (60, (7, 7), dict(padding=1, stride=2)), (16, (6, 15), dict(padding=2, dilation=2)),
            (14, (3, 29), dict(padding=(0, 1))), (8, (11, 1), dict(padding=1)), (7, (4, 5), dict(padding=1)),
            (96, (6, 6), dict(padding=(1, 3), stride=(1, 2))), (33, (5, 8), dict(padding=1)),
            (64, (7, 7), dict(padding=1)), (32, (5, 4), dict(padding=(2, 1), dilation=(2, 1))),
            (32, (5, 10), dict(padding=1)), (16, (3, 4), dict(padding=1))]):
        cin = 29 + 20 * (i % 4)
        x = randn((2, cin, *size), dtype, i)
        check_conv2d(x, randn((cout, cin, 3, 3), dtype, 100 + i), randn(cout, dtype, 200 + i), **kwargs)
        check_conv2d(x[:, :, ::-1], randn((cout, cin, 3, 3), dtype, 100 + i), None, **kwargs)
    x = randn((1, 70, 9, 10), dtype, 50)
    check_conv2d(x, randn((64, 35, 3, 3), dtype, 51), randn(64, dtype, 52), padding=1, groups=2)
    w, b, r = randn((32, 70, 3, 3), dtype, 53), randn(32, dtype, 54), randn((1, 32, 9, 10), dtype, 55)
    got = F.conv2d(x, w, b, padding=1, residual=r, activation="silu")
    assert_close(got, TF.silu(_torch(TF.conv2d, x, w, b, padding=1) + T(r)), **tol(dtype, 70 * 9))
    assert_same_for_thread_counts(
        lambda: check_conv2d(randn((1, 64, 14, 14), dtype, 56), randn((128, 64, 3, 3), dtype, 57), None, padding=1)[0])
    # 16 MB of output and more is stored past the cache: planes of whole lines straight from
    # the transpose, others (257 x 257) through staging rows.
    for size in (256, 257):
        check_conv2d(randn((1, 2, size, size), dtype, 58), randn((64, 2, 3, 3), dtype, 59), randn(64, dtype, 60),
                     padding=1)


def test_transposed_strides_far_beyond_the_kernel():
    """Only the stride phases a tap reaches cost anything: the rest are the bias."""
    x = np.ones((1, 1, 1, 1), np.float32)
    np.testing.assert_array_equal(F.conv_transpose2d(x, x, stride=2**20), [[[[1.0]]]])
    check_conv_transpose2d(randn((1, 2, 3, 2), np.float64, 1), randn((2, 3, 2, 2), np.float64, 2),
                           randn(3, np.float64, 3), stride=(1000, 7), padding=(0, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_channels_in_lanes_sweep(dtype):
    """A seeded sweep over the channels-in-lanes path's inputs (filters of 256 and more
    multiply-adds an output, output channels that fill the lanes): odd plane sizes from 1 to
    33 wide, so that tiles cross from row to row, run out mid-row or pair rows, against MR = 14
    (AVX-512) and 6 (AVX2); kernels up to 5x5, strides, dilations, paddings, groups, batches
    of 1-4, on 1 and 2 threads."""
    rng = np.random.default_rng(8128)
    done = 0
    while done < 24:
        groups = int(rng.choice([1, 1, 2]))
        kernel = tuple(int(v) for v in rng.integers(1, 6, 2))
        cin_g = max(int(rng.integers(29, 81)), -(-256 // (kernel[0] * kernel[1])))
        cout_g = int(rng.choice([16, 24, 32, 48, 60, 64]))
        size = (int(rng.integers(1, 12)), int(rng.integers(1, 34)))
        stride, dilation = tuple(int(v) for v in rng.integers(1, 3, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        if any(s + 2 * p < d * (k - 1) + 1 for s, p, d, k in zip(size, padding, dilation, kernel)):
            continue
        x = randn((int(rng.integers(1, 5)), cin_g * groups, *size), dtype, 400 + done)
        w = randn((cout_g * groups, cin_g, *kernel), dtype, 500 + done)
        b = randn(cout_g * groups, dtype, 600 + done)
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        _, want = check_conv2d(x, w, b, **kwargs)
        got = assert_same_for_thread_counts(lambda: F.conv2d(x, w, b, **kwargs), counts=(1, 2))
        assert_close(got, want, **tol(dtype, cin_g * kernel[0] * kernel[1]))
        done += 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_window_several_images_per_task(dtype):
    """With channels in the lanes, when a band is a whole image a task takes several images,
    pixels counted across them: a narrow image's output rows share tiles with other
    images' rows, and the last task takes what is left of the batch. Batches of 2-9 odd
    small planes (7x7, 5x3, 1x1, 14x14), stride 2, groups, a residual and an activation, and
    1-3 threads give identical results."""
    cases = [((9, 40, 7, 7), 64, dict(padding=1)), ((5, 32, 5, 3), 32, dict(padding=1)),
             ((7, 30, 1, 1), 48, dict(padding=1)), ((3, 64, 14, 14), 64, dict(padding=1)),
             ((6, 36, 13, 11), 32, dict(padding=1, stride=2)), ((4, 60, 6, 5), 64, dict(padding=(1, 0), groups=2))]
    for i, (shape, cout, kwargs) in enumerate(cases):
        x = randn(shape, dtype, 300 + i)
        w = randn((cout, shape[1] // kwargs.get("groups", 1), 3, 3), dtype, 310 + i)
        b = randn(cout, dtype, 320 + i)
        check_conv2d(x, w, b, **kwargs)
        check_conv2d(x[::-1, :, ::-1], w, None, **kwargs)
    x, w, b = randn((5, 48, 7, 7), dtype, 330), randn((64, 48, 3, 3), dtype, 331), randn(64, dtype, 332)
    r = randn((5, 64, 7, 7), dtype, 333)
    want = TF.relu(_torch(TF.conv2d, x, w, b, padding=1) + T(r))
    got = assert_same_for_thread_counts(lambda: F.conv2d(x, w, b, padding=1, residual=r, activation="relu"))
    assert_close(got, want, **tol(dtype, 48 * 9))

@pytest.mark.parametrize("dtype", DTYPES)
def test_channels_in_lanes_tiles_leave_out_the_padding(dtype):
    """With channels in the lanes a tile multiplies only the filter rows that some row of it
    reads inside the image (the taps over the top and bottom padding drop out), rows of
    narrow images pair with rows that read the same taps (the first rows of two images), and
    the pixels that start and end output rows skip the taps over the left and right padding:
    batches of 1-5 (odd rows left to pair across classes), planes whose edge rows read no row
    at all (padding beyond the kernel), dilated and strided rows and columns whose runs of taps
    do not touch, rows that tiles cross (13 and 27 wide) or fill (14 wide), a one-pixel row
    (first and last at once), 5x5 filters, and 1 and 2 threads."""
    cases = [((1, 40, 7, 7), 64, 3, dict(padding=1)), ((2, 40, 7, 7), 64, 3, dict(padding=1)),
             ((3, 40, 7, 7), 64, 3, dict(padding=1)), ((5, 32, 7, 6), 32, 3, dict(padding=(2, 1))),
             ((2, 30, 2, 5), 32, 3, dict(padding=3)), ((3, 30, 4, 3), 48, 3, dict(padding=(4, 1), dilation=(3, 1))),
             ((2, 36, 9, 13), 32, 3, dict(padding=(2, 1), stride=(2, 1), dilation=(2, 1))),
             ((2, 40, 5, 13), 64, 3, dict(padding=1)), ((1, 40, 6, 14), 64, 3, dict(padding=(2, 1))),
             ((2, 30, 11, 3), 32, 3, dict(padding=(5, 1), stride=(3, 1))), ((2, 40, 3, 1), 64, 3, dict(padding=1)),
             ((1, 40, 5, 27), 64, 3, dict(padding=1)), ((2, 32, 6, 15), 32, 3, dict(padding=(1, 2), dilation=(1, 2))),
             ((2, 32, 5, 16), 32, 3, dict(padding=1, stride=(1, 2))), ((2, 30, 9, 9), 32, 5, dict(padding=2)),
             ((3, 30, 6, 11), 64, 5, dict(padding=(1, 4), stride=2))]
    for i, (shape, cout, kernel, kwargs) in enumerate(cases):
        x = randn(shape, dtype, 700 + i)
        w, b = randn((cout, shape[1], kernel, kernel), dtype, 720 + i), randn(cout, dtype, 740 + i)
        _, want = check_conv2d(x, w, b, **kwargs)
        got = assert_same_for_thread_counts(lambda: F.conv2d(x, w, b, **kwargs), counts=(1, 2))
        assert_close(got, want, **tol(dtype, shape[1] * kernel * kernel))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_border_classes(dtype):
    """A transposed filter kept for many calls (a module's, pack_conv_weight's) or packed for
    one call (a weight given as an array: then only its per-tap panels, made tap-major first)
    over small images whose border products mostly leave the output (a generator's 4x4/2
    layers) groups the input pixels by the taps that stay inside and multiplies only those: 4x4 and 8x8
    images, batches 1-9 (several chunks of images at 8x8 with 64 output channels), groups,
    dilation, strides and paddings per axis, output_padding, 1x1 and 1xN images, paddings
    that leave some pixels no tap inside, non-contiguous input, bias or none, a residual
    and an activation, float32 and float64, identical bits on 1 and 2 threads."""
    cases = [  # (batch, cin, cout, (h, w), kernel, kwargs)
        (3, 24, 20, (4, 4), 4, dict(stride=2, padding=1)),
        (1, 16, 24, (4, 4), 4, dict(stride=2, padding=1)),
        (9, 32, 64, (8, 8), 4, dict(stride=2, padding=1)),
        (2, 12, 18, (5, 3), 3, dict(stride=(2, 1), padding=(1, 2), output_padding=(1, 0))),
        (3, 16, 12, (4, 6), 3, dict(stride=2, padding=2, dilation=(2, 1), groups=2)),
        (2, 10, 14, (1, 1), 3, dict(padding=1)),
        (4, 20, 16, (1, 7), (1, 5), dict(padding=(0, 2))),
        (2, 8, 10, (3, 3), 3, dict(stride=3, padding=3, output_padding=2)),
        (5, 18, 9, (6, 5), 5, dict(stride=(1, 3), padding=(3, 2), groups=3)),
    ]
    for i, (batch, cin, cout, size, kernel, kwargs) in enumerate(cases):
        kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        groups = kwargs.get("groups", 1)
        x = randn((batch, cin, *size), dtype, 900 + i)
        w = randn((cin, cout // groups, *kernel), dtype, 920 + i)
        b = randn(cout, dtype, 940 + i) if i % 2 == 0 else None
        want = _torch(TF.conv_transpose2d, x, w, b, **kwargs)
        pack_args = {k: v for k, v in kwargs.items() if k in ("stride", "padding", "dilation")}
        packed = tops.pack_conv_weight(w, groups, True, **pack_args)
        got = assert_same_for_thread_counts(lambda: F.conv_transpose2d(x, packed, b, **kwargs), counts=(1, 2))
        assert_close(got, want, **tol(dtype, cin * kernel[0] * kernel[1]))
        got = assert_same_for_thread_counts(lambda: F.conv_transpose2d(x, w, b, **kwargs), counts=(1, 2))
        assert_close(got, want, **tol(dtype, cin * kernel[0] * kernel[1]))
        xr = x[::-1, ::-1]
        assert_close(F.conv_transpose2d(xr, packed, b, **kwargs), _torch(TF.conv_transpose2d, xr, w, b, **kwargs),
                     **tol(dtype, cin * kernel[0] * kernel[1]))
    x, w, b = randn((3, 24, 4, 4), dtype, 960), randn((24, 20, 4, 4), dtype, 961), randn(20, dtype, 962)
    r = randn((3, 20, 8, 8), dtype, 963)
    packed = tops.pack_conv_weight(w, 1, True, stride=2, padding=1)
    got = F.conv_transpose2d(x, packed, b, stride=2, padding=1, residual=r, activation="relu")
    want = TF.relu(_torch(TF.conv_transpose2d, x, w, b, stride=2, padding=1) + T(r))
    assert_close(got, want, **tol(dtype, 24 * 16))
    module = tnn.ConvTranspose2d(24, 20, 4, stride=2, padding=1).to(dtype)
    ref = torch.nn.ConvTranspose2d(24, 20, 4, stride=2, padding=1).to(T(x).dtype)
    module.load_state_dict(ref.state_dict())
    with torch.no_grad():
        assert_close(module(x), ref(T(x)).numpy(), **tol(dtype, 24 * 16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_packed_for_one_call_serves_that_call(dtype):
    """A weight passed as an array is packed with only the panels its call's path reads: the
    shifted-window panels for an ordinary 3x3, the general path's for a padding so wide that
    the shifted window's band would not fit. A filter packed once serves both."""
    cases = [(randn((2, 5, 6, 9), dtype, 1), randn((4, 5, 3, 2), dtype, 2), randn(4, dtype, 3), dict(padding=1)),
             (randn((1, 3, 1, 4), dtype, 4), randn((1, 3, 1, 2), dtype, 5), randn(1, dtype, 6),
              dict(padding=(0, 600_000)))]
    for x, w, b, kwargs in cases:
        got, want = check_conv2d(x, w, b, **kwargs)
        assert_close(F.conv2d(x, tops.pack_conv_weight(w), b, **kwargs), want, **tol(dtype, 30))


@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_panels_put_taps_first_across_channel_blocks(dtype):
    """The shifted-window panels take a filter's taps first within each block of 64 input
    channels, stored there while the filter is read channel by channel: blocks of 1-64
    channels, a last partial block, kernels of 1x3 to 3x3 and 5x2, output channels around the
    panel widths (pixels or channels in the lanes), groups, a weight that is a strided view,
    the weight as an array (packed for the call) and packed once."""
    cases = [(64, 15, (3, 3), {}), (65, 17, (3, 3), {}), (130, 33, (2, 5), {}), (200, 1, (1, 3), {}),
             (96, 64, (3, 3), dict(groups=2)), (70, 31, (5, 2), dict(stride=2)), (128, 14, (3, 3), {})]
    for i, (cin, cout, (kh, kw), kwargs) in enumerate(cases):
        x = randn((2, cin, 7, 9), dtype, 400 + i)
        w = randn((cout, cin // kwargs.get("groups", 1), kh, kw), dtype, 410 + i)
        b = randn(cout, dtype, 420 + i)
        _, want = check_conv2d(x, w, b, padding=(kh // 2, kw // 2), **kwargs)
        packed = F.conv2d(x, tops.pack_conv_weight(w, kwargs.get("groups", 1)), b, padding=(kh // 2, kw // 2), **kwargs)
        assert_close(packed, want, **tol(dtype, cin * kh * kw))
    w = randn((20, 130, 3, 6), dtype, 430)[:, :, :, ::2]
    check_conv2d(randn((1, 130, 6, 8), dtype, 431), w, randn(20, dtype, 432), padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_filters_too_large_for_the_cache(dtype):
    """A filter of 19 MB, past the size from which a filter packed for one call streams its
    panels (8 MiB): a last
    panel of output channels and a last block of input channels both partial, the weight as
    an array (packed for the call, into blocks of the buffer pool: twice, so that the second
    call reuses the first's blocks) and packed once, the same bits on every thread count."""
    cout, cin = (1000, 520) if np.dtype(dtype) == np.float32 else (500, 520)
    x = randn((1, cin, 3, 4), dtype, 440)
    w = randn((cout, cin, 3, 3), dtype, 441)
    b = randn(cout, dtype, 442)
    _, want = check_conv2d(x, w, b, padding=1)
    got = assert_same_for_thread_counts(lambda: F.conv2d(x, w, b, padding=1), counts=(1, 2))
    assert_close(got, want, **tol(dtype, cin * 9))
    packed = assert_same_for_thread_counts(lambda: F.conv2d(x, tops.pack_conv_weight(w), b, padding=1), counts=(1, 2))
    assert_close(packed, want, **tol(dtype, cin * 9))


def test_filters_packed_for_each_call_reuse_pool_blocks():
    """The larger panel sets of a filter packed for one call live in blocks of the buffer pool,
    which return at the end of the call and serve the next one: repeated calls hold no more
    idle blocks than the first left (panel sets of 0.5 and 1.2 MB: 1x1 and 3x3 filters)."""
    from tensorops import _core
    x3, w3 = randn((1, 128, 7, 7), np.float32, 450), randn((512, 128, 3, 3), np.float32, 451)
    x1, w1 = randn((1, 512, 7, 7), np.float32, 452), randn((512, 512, 1, 1), np.float32, 453)
    for x, w, padding in ((x3, w3, 1), (x1, w1, 0)):
        _, want = check_conv2d(x, w, padding=padding)
        idle = _core.cache_idle_bytes()
        for _ in range(3):
            assert_close(F.conv2d(x, w, padding=padding), want, **tol(np.float32, w[0].size))
        assert _core.cache_idle_bytes() == idle


def test_filter_packed_for_a_call_takes_one_pool_block():
    """The panel sets of a filter packed for one call are slices of one pool block (the pool
    rounds a block up to 2 MiB: a block per set had held 16.8 MB for this 9.4 MB filter)."""
    from tensorops import _core
    x, w = randn((1, 512, 7, 7), np.float32, 454), randn((512, 512, 3, 3), np.float32, 455)
    _core.empty_cache()
    _, want = check_conv2d(x, w, padding=1)
    assert_close(F.conv2d(x, w, padding=1), want, **tol(np.float32, w[0].size))
    assert _core.cache_idle_bytes() <= w.nbytes + (2 << 20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_filter_phases_across_channel_blocks(dtype):
    """A transposed filter is read once for all its stride phases, whose tap counts differ
    (3 taps at stride 2: phases of 2 and 1; 4 at stride 3 with dilation 2), into both the
    general panels and the window blocks of 64 input channels (a last partial block),
    groups included; as an array (packed for the call) and packed once."""
    cases = [((1, 130, 5, 6), (130, 20, 3, 4), dict(stride=(2, 3), padding=(1, 0))),
             ((2, 96, 4, 3), (96, 24, 4, 3), dict(stride=(3, 2), dilation=(2, 1), groups=2, output_padding=(1, 0))),
             ((1, 70, 6, 6), (70, 33, 4, 4), dict(stride=2, padding=1))]
    for i, (x_shape, w_shape, kwargs) in enumerate(cases):
        x, w = randn(x_shape, dtype, 500 + i), randn(w_shape, dtype, 510 + i)
        b = randn(w_shape[1] * kwargs.get("groups", 1), dtype, 520 + i)
        _, want = check_conv_transpose2d(x, w, b, **kwargs)
        placement = {key: kwargs[key] for key in ("stride", "padding", "dilation") if key in kwargs}
        packed = tops.pack_conv_weight(w, kwargs.get("groups", 1), True, **placement)
        assert_close(F.conv_transpose2d(x, packed, b, **kwargs), want, **tol(dtype, w_shape[0] * 12))


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_outputs_stored_in_row_order(dtype):
    """Every row phase of a band is stored together, each output plane's rows in order, as
    whole vectors that bypass the cache from 16 MB of output on; with a row stride so large
    that one grid row of every row phase overflows the tile budget, a band is one grid row
    of a chunk of row phases."""
    x, w, b = randn((3, 5, 9, 130), dtype, 1), randn((5, 7, 3, 4), dtype, 2), randn(7, dtype, 3)
    for kwargs in (dict(stride=2), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0)),
                   dict(stride=(450, 2), padding=(0, 1))):
        check_conv_transpose2d(x, w, b, **kwargs)
    large = randn((20, 4, 50, 100), dtype, 4)
    check_conv_transpose2d(large, randn((4, 11, 3, 3), dtype, 5), randn(11, dtype, 6), stride=2)


@pytest.mark.single_isa
def test_repeated_calls_reuse_checked_plans():
    """conv2d remembers the checks of a call for later calls with inputs, filter and bias of
    the same shapes and dtypes and the same int arguments; anything else is checked anew,
    so a float or bool that equals an int is still refused, and views of a known shape are
    read through their own strides."""
    x, w, b = randn((2, 6, 9, 8), np.float32, 1), randn((5, 6, 3, 3), np.float32, 2), randn(5, np.float32, 3)
    pw = tops.pack_conv_weight(w)
    want = _torch(TF.conv2d, x, w, b, stride=2, padding=1)
    for _ in range(2):
        assert_close(F.conv2d(x, pw, b, stride=2, padding=1), want, **tol(np.float32, 54))
        assert_close(F.conv2d(x, w, b, [2, 2], (1, 1)), want, **tol(np.float32, 54))
    for bad in (2.0, True, [2, 2.0]):
        with pytest.raises(TypeError, match="argument 'stride' (must be tuple of ints|failed to unpack)"):
            F.conv2d(x, pw, b, stride=bad, padding=1)
    with pytest.raises(TypeError, match="argument 'groups' must be int"):
        F.conv2d(x, pw, b, stride=2, padding=1, groups=True)
    # The same shapes through other strides, unbatched, and with a bias of another shape.
    view = randn((2, 6, 18, 8), np.float32, 4)[:, :, ::2]
    assert_close(F.conv2d(view, pw, b, stride=2, padding=1), _torch(TF.conv2d, view, w, b, stride=2, padding=1),
                 **tol(np.float32, 54))
    assert_close(F.conv2d(x[0], pw, b, stride=2, padding=1), want[0], **tol(np.float32, 54))
    with pytest.raises(tops.ShapeError, match="expected bias to be 1-dimensional with 5 elements"):
        F.conv2d(x, pw, b[:4], stride=2, padding=1)
    # A filter packed with another shape under the same arguments.
    w2 = randn((5, 3, 3, 3), np.float32, 5)
    with pytest.raises(tops.ShapeError, match="expected input\\[2, 6, 9, 8\\] to have 3 channels"):
        F.conv2d(x, tops.pack_conv_weight(w2), b, stride=2, padding=1)
    # More distinct calls than the cache holds.
    for size in range(8, 8 + 300):
        F.conv2d(np.zeros((1, 1, 3, size), np.float32), np.ones((1, 1, 1, 1), np.float32))
    assert_close(F.conv2d(x, pw, b, stride=2, padding=1), want, **tol(np.float32, 54))


@pytest.mark.single_isa
def test_repeated_calls_with_a_packed_filter_follow_their_arguments():
    """F.conv2d with a packed filter keeps its last call beside the filter and skips the
    checks when the same objects come again; whatever the caller changes between calls is
    still seen: a bias edited in place (as an array, or as a list, which is not kept), an
    argument list edited in place, another input shape or dtype, another bias object. The
    kept call does not keep the filter alive."""
    x, w = randn((2, 6, 9, 8), np.float32, 1), randn((5, 6, 3, 3), np.float32, 2)
    b = randn(5, np.float32, 3)
    pw = tops.pack_conv_weight(w)
    stride, padding = (2, 2), (1, 1)
    for _ in range(2):
        assert_close(F.conv2d(x, pw, b, stride, padding), _torch(TF.conv2d, x, w, b, stride=2, padding=1),
                     **tol(np.float32, 54))
    b += 1
    assert_close(F.conv2d(x, pw, b, stride, padding), _torch(TF.conv2d, x, w, b, stride=2, padding=1),
                 **tol(np.float32, 54))
    listed = list(b)  # float32 scalars
    F.conv2d(x, pw, listed, stride, padding)
    listed[0] += 10
    b[0] += 10
    assert_close(F.conv2d(x, pw, listed, stride, padding), _torch(TF.conv2d, x, w, b, stride=2, padding=1),
                 **tol(np.float32, 54))
    strides = [2, 2]
    F.conv2d(x, pw, b, strides, padding)
    strides[0] = 1
    assert_close(F.conv2d(x, pw, b, strides, padding), _torch(TF.conv2d, x, w, b, stride=(1, 2), padding=1),
                 **tol(np.float32, 54))
    other = randn((3, 6, 5, 7), np.float32, 4)
    assert_close(F.conv2d(other, pw, b, stride, padding), _torch(TF.conv2d, other, w, b, stride=2, padding=1),
                 **tol(np.float32, 54))
    assert_close(F.conv2d(x, pw, None, stride, padding), _torch(TF.conv2d, x, w, None, stride=2, padding=1),
                 **tol(np.float32, 54))
    with pytest.raises(TypeError, match="conv2d"):
        F.conv2d(x.astype(np.float64), pw, b, stride, padding)
    import gc
    import weakref

    alive = weakref.ref(pw)
    del pw
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_1x1_few_output_channels(dtype):
    """A 1x1 convolution whose output channels fit one microkernel tile streams the image
    through the tile in place, K block by K block, instead of packing it: output channel
    counts up to and past the tile (6 rows with AVX2, 14 with AVX-512), input channels past
    one K block (256 and 384), widths that end in a partial panel, groups, planes past 4096
    pixels (streamed only with K <= 64), the bias fused or followed by a residual and an
    activation, and any thread count with identical bits."""
    for i, (cin, cout, hw, groups) in enumerate([
            (32, 1, (56, 56), 1), (8, 6, (7, 9), 1), (64, 7, (14, 14), 1), (24, 14, (5, 37), 1), (520, 13, (6, 11), 1),
            (800, 4, (3, 41), 1), (300, 15, (8, 8), 1), (12, 8, (9, 10), 2), (3, 2, (1, 1), 1),
            (100, 5, (70, 61), 1), (40, 3, (65, 70), 1)]):
        x = randn((2, cin, *hw), dtype, 700 + i)
        w = randn((cout * groups, cin // groups, 1, 1), dtype, 720 + i)
        check_conv2d(x, w, randn(cout * groups, dtype, 740 + i), groups=groups)
        check_conv2d(x, w, None, groups=groups)
    x, w, b = randn((2, 400, 9, 13), dtype, 760), randn((10, 400, 1, 1), dtype, 761), randn(10, dtype, 762)
    r = randn((2, 10, 9, 13), dtype, 763)
    got = F.conv2d(x, w, b, residual=r, activation="gelu")
    assert_close(got, TF.gelu(_torch(TF.conv2d, x, w, b) + T(r)), **tol(dtype, 400))
    assert_same_for_thread_counts(lambda: check_conv2d(x, w, b)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_padded_rows(dtype):
    """Depthwise layers other than 3x3 stride 1 (5x5 and 7x7 kernels, strides, dilations,
    column strides) copy the input rows a band reads into zero-bordered rows, one per column
    phase of the stride, and read every tap from them: widths around whole vectors, every
    band height mod 4, strides up to and past the copy's phase table (16), paddings wider than
    the kernel, non-contiguous and reversed inputs, NaN and infinities (which must reach only
    the outputs whose window covers them), and planes split into row blocks between threads."""
    cases = [  # (channels, multiplier, (h, w), (kh, kw), stride, padding, dilation)
        (3, 1, (28, 28), (5, 5), 1, 2, 1), (5, 1, (9, 64), (7, 7), 1, 3, 1), (2, 2, (13, 17), (5, 3), 1, (1, 2), 1),
        (4, 1, (12, 31), (3, 3), 2, 1, 1), (3, 1, (11, 33), (5, 5), 2, 2, 1), (2, 1, (10, 15), (3, 3), (2, 3), 1, 1),
        (3, 1, (8, 16), (3, 5), 1, (2, 4), (2, 1)), (2, 1, (14, 20), (3, 3), 1, 2, (2, 3)), (2, 1, (7, 40), (1, 4), 1, 0, 1),
        (2, 1, (6, 70), (2, 3), (1, 17), (1, 5), 1), (1, 1, (5, 5), (7, 7), 1, 6, 1), (2, 3, (1, 1), (3, 3), 1, 1, 1),
        (3, 1, (17, 23), (4, 2), (3, 1), (0, 1), (1, 2)),
    ]
    for i, (c, mult, (h, w), kernel, stride, padding, dilation) in enumerate(cases):
        x = randn((2, c, h, w), dtype, 300 + i)
        wt = randn((c * mult, 1, *kernel), dtype, 400 + i)
        b = randn(c * mult, dtype, 500 + i) if i % 2 == 0 else None
        check_conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=c)
        check_conv2d(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2), wt, b, stride=stride,
                     padding=padding, dilation=dilation, groups=c)  # columns a row apart
        check_conv2d(x[:, :, ::-1, ::-1], wt, b, stride=stride, padding=padding, dilation=dilation, groups=c)
    x = randn((1, 2, 20, 21), dtype, 600)
    x[0, 0, 3, 4], x[0, 1, 10, 0], x[0, 1, 19, 20] = np.nan, np.inf, -np.inf
    check_conv2d(x, randn((2, 1, 5, 5), dtype, 601), None, padding=2, groups=2)
    check_conv2d(x, randn((2, 1, 3, 3), dtype, 602), None, stride=2, padding=1, groups=2)
    # Few planes: each thread takes blocks of rows; identical bits for any thread count.
    x, wt = randn((1, 3, 45, 37), dtype, 603), randn((3, 1, 7, 7), dtype, 604)
    assert_same_for_thread_counts(lambda: check_conv2d(x, wt, None, padding=3, groups=3)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_5x5_7x7_stride1_windows(dtype):
    """5x5 and 7x7 depthwise layers at stride 1 build each tap column's window from aligned
    loads of the copied rows (AVX-512; the shared-rows block elsewhere): widths around one,
    two and three vectors of 8 and 16 lanes, heights off the band of 4 rows, paddings from 0
    to past the kernel's half, a channel multiplier, NaN and infinities at the row ends, and
    any thread count."""
    for k in (5, 7):
        for i, w in enumerate((1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 56)):
            h = 3 + 2 * (i % 4)
            padding = (k // 2, 1, 0, k - 1)[i % 4]
            if w + 2 * padding < k or h + 2 * padding < k:
                continue
            mult = 1 + i % 2
            x = randn((2, 3, h, w), dtype, 700 + i)
            x[0, 0, 0, w - 1], x[1, 2, h - 1, 0] = np.nan, np.inf
            check_conv2d(x, randn((3 * mult, 1, k, k), dtype, 710 + i), randn(3 * mult, dtype, 720 + i),
                         padding=padding, groups=3)
    x, wt = randn((1, 4, 21, 50), dtype, 730), randn((4, 1, 7, 7), dtype, 731)
    assert_same_for_thread_counts(lambda: check_conv2d(x, wt, None, padding=3, groups=4)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_stride2_windows(dtype):
    """3x3 and 5x5 depthwise layers of stride 2 read each tap pair from one deinterleaved
    window of the input row: widths around one and two windows of every vector width (4, 8
    and 16 lanes), so that blocks are whole, partial, masked at either end or both; paddings
    0 to past the kernel; heights that leave 1 to 4 rows in the last band; channel
    multipliers; rows a stride apart (a column slice); NaN and infinities at the row ends,
    which must reach only the outputs whose windows cover them; and row blocks split between
    threads."""
    cases = [  # (channels, multiplier, (h, w), kernel, padding)
        (3, 1, (9, 7), 3, 1), (2, 1, (8, 16), 3, 0), (2, 1, (11, 17), 3, 1), (2, 2, (10, 33), 3, 1),
        (3, 1, (7, 64), 3, 1), (2, 1, (12, 65), 3, 2), (2, 1, (13, 67), 3, 1), (2, 1, (6, 130), 3, 1),
        (3, 1, (9, 7), 5, 2), (2, 1, (8, 16), 5, 0), (2, 2, (11, 31), 5, 2), (2, 1, (10, 33), 5, 1),
        (2, 1, (12, 63), 5, 2), (2, 1, (14, 66), 5, 3), (2, 1, (5, 129), 5, 2), (1, 1, (5, 5), 5, 6),
        (2, 1, (3, 3), 3, 1), (2, 1, (1, 40), 3, 1),
    ]
    for i, (c, mult, (h, w), k, padding) in enumerate(cases):
        x = randn((2, c, h, w), dtype, 700 + i)
        wt = randn((c * mult, 1, k, k), dtype, 750 + i)
        b = randn(c * mult, dtype, 800 + i) if i % 2 == 0 else None
        check_conv2d(x, wt, b, stride=2, padding=padding, groups=c)
        wide = randn((2, c, h, w + 3), dtype, 850 + i)
        check_conv2d(wide[:, :, :, 1:-2], wt, b, stride=2, padding=padding, groups=c)  # rows w + 3 apart
    x = randn((1, 2, 12, 37), dtype, 900)
    x[0, 0, 0, 0], x[0, 0, 5, 36], x[0, 1, 11, 35], x[0, 1, 6, 17] = np.nan, np.inf, -np.inf, np.nan
    for k in (3, 5):
        check_conv2d(x, randn((2, 1, k, k), dtype, 901 + k), None, stride=2, padding=k // 2, groups=2)
    x, wt = randn((1, 3, 61, 45), dtype, 910), randn((3, 1, 5, 5), dtype, 911)
    assert_same_for_thread_counts(lambda: check_conv2d(x, wt, None, stride=2, padding=2, groups=3)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_small_planes(dtype):
    """Depthwise layers with small planes (MobileNet's 14x14 and 7x7) run with one channel per
    vector lane where the ISA has that kernel, except where the column walk takes the plane and
    its output rows hold 12 or more (both sides of that edge: 11 and 12 wide): channel counts
    around the lane count, strides, dilations, kernels up to the plane's size, batches, the
    fused extensions, and the layouts that fall back to the plane-at-a-time kernel."""
    for i, (c, hw, k, stride, padding, dilation) in enumerate([
            (16, 7, 3, 1, 1, 1), (20, 7, 3, 1, 1, 1), (37, 14, 3, 2, 1, 1), (5, 6, 5, 1, 2, 1),
            (21, 11, 3, 1, 1, 1), (19, 12, 3, 1, 1, 1), (18, 24, 3, 2, 1, 1), (17, 23, 5, 2, 2, 1),
            (33, 9, 3, 1, 2, 2), (48, 7, 7, 1, 3, 1), (17, (5, 11), (3, 1), (1, 2), (1, 0), 1), (1, 3, 3, 1, 0, 1)]):
        x = randn((2, c, *((hw, hw) if isinstance(hw, int) else hw)), dtype, i)
        w = randn((c, 1, *((k, k) if isinstance(k, int) else k)), dtype, 50 + i)
        b = randn(c, dtype, 100 + i) if i % 2 == 0 else None
        check_conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=c)
    x, w, b = randn((3, 40, 7, 7), dtype, 200), randn((40, 1, 3, 3), dtype, 201), randn(40, dtype, 202)
    r = randn((3, 40, 7, 7), dtype, 203)
    got = F.conv2d(x, w, b, padding=1, groups=40, residual=r, activation="relu")
    assert_close(got, torch.relu(_torch(TF.conv2d, x, w, b, padding=1, groups=40) + T(r)), **tol(dtype, 9))
    check_conv2d(x[:, :, :, ::-1], w, b, padding=1, groups=40)  # rows not contiguous: the other kernel
    check_conv2d(np.ascontiguousarray(x[:, ::2]), w[::2], b[::2], padding=1, groups=20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_wide_filters_channels_in_lanes(dtype):
    """Filters 5 to 13 taps wide at unit column stride, or as tall and one wide at unit row
    stride (AVX-512; 5 and 7 with AVX2), take the kernel with channels in the lanes on
    planes of any size that fits its tile (float; the row kernels elsewhere, and for larger
    filters): channel counts around 8, 16 and 32, ConvNeXt's 56 x 56 and 28 x 28 and odd
    planes, 9x9 to 15x15, 1x11 and 11x1 to 5x1 (a column stride, a dilation that does not
    matter for one tap and one that does), rows narrower
    than the filter, paddings 0 to k - 1, non-square filters and dilation or stride along
    the rows only, NaN and infinities, a channel slice, fused residual and activation over
    split rows, a plane too large for the tile, and identical bits for any thread count (few
    channel blocks: a block's rows split between threads)."""
    cases = [  # (channels, (h, w), (kh, kw), stride, padding, dilation)
        (16, (56, 56), (7, 7), 1, 3, 1), (33, (28, 28), (7, 7), 1, 3, 1), (15, (29, 23), (5, 5), 1, 2, 1),
        (17, (9, 64), (7, 7), 1, 0, 1), (16, (31, 3), (5, 5), 1, (2, 4), 1), (20, (1, 40), (1, 7), 1, 0, 1),
        (18, (23, 19), (3, 7), 1, (1, 6), 1), (16, (20, 13), (7, 5), (2, 1), (3, 1), (2, 1)),
        (32, (14, 14), (5, 5), 1, 0, 1), (1, (120, 120), (7, 7), 1, 3, 1), (17, (30, 26), (9, 9), 1, 4, 1),
        (16, (20, 33), (11, 11), 1, 5, 1), (9, (15, 40), (13, 13), 1, 6, 1), (16, (12, 50), (1, 11), 1, (0, 5), 1),
        (3, (20, 20), (15, 15), 1, 7, 1), (16, (40, 30), (11, 1), 1, (5, 0), 1), (20, (28, 28), (7, 1), (1, 2), (3, 0), 1),
        (9, (13, 17), (13, 1), 1, 6, 1), (17, (30, 9), (5, 1), 1, (0, 0), (1, 3)), (16, (21, 21), (5, 1), 1, 2, (2, 1)),
    ]
    for i, (c, (h, w), kernel, stride, padding, dilation) in enumerate(cases):
        x = randn((2, c, h, w), dtype, 1000 + i)
        x[0, 0, h // 2, 0], x[1, c - 1, h - 1, w - 1] = np.nan, np.inf
        wt = randn((c, 1, *kernel), dtype, 1020 + i)
        b = randn(c, dtype, 1040 + i) if i % 2 == 0 else None
        check_conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=c)
    x, wt, b = randn((1, 40, 56, 56), dtype, 1060), randn((40, 1, 7, 7), dtype, 1061), randn(40, dtype, 1062)
    check_conv2d(x[:, ::2], wt[::2], b[::2], padding=3, groups=20)  # planes two apart
    want = _torch(TF.conv2d, x, wt, b, padding=3, groups=40)
    r = randn(want.shape, dtype, 1063)
    got = assert_same_for_thread_counts(lambda: F.conv2d(x, wt, b, padding=3, groups=40, residual=r, activation="silu"))
    assert_close(got, TF.silu(want + T(r)), **tol(dtype, 49))
    x, wt = randn((1, 16, 37, 30), dtype, 1064), randn((16, 1, 5, 5), dtype, 1065)
    assert_same_for_thread_counts(lambda: check_conv2d(x, wt, None, padding=2, groups=16)[0])
    wt = randn((16, 1, 7, 1), dtype, 1066)
    assert_same_for_thread_counts(lambda: check_conv2d(x, wt, None, padding=(3, 0), groups=16)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_products_of_few_small_images(dtype):
    """A transposed convolution of a few images small next to its filter multiplies every
    input pixel by the whole filter (read in place) and gathers each output's products: a
    DCGAN-like 4x4 layer, a 1x1 latent under an 8x8 filter in chunks of images (20 images,
    16 or 8 per chunk), groups with dilation, uneven strides and output padding, a kernel
    wider than the input; bias, activation and residual; every input layout; a module whose
    filter is packed keeps the dense weight for its latent-sized calls and packs for larger."""
    cases = [((1, 64, 4, 4), (64, 32, 4, 4), dict(stride=2, padding=1)),
             ((20, 4, 1, 1), (4, 256, 8, 8), dict()),
             ((2, 48, 2, 3), (48, 20, 3, 5), dict(groups=2, stride=(2, 3), dilation=(2, 1), padding=(1, 2),
                                                 output_padding=(1, 0))),
             ((3, 16, 2, 2), (16, 8, 5, 5), dict(padding=1))]
    for i, (x_shape, w_shape, kwargs) in enumerate(cases):
        x, w = randn(x_shape, dtype, 600 + i), randn(w_shape, dtype, 610 + i)
        b = randn(w_shape[1] * kwargs.get("groups", 1), dtype, 620 + i)
        for _, xv in layouts(x):
            check_conv_transpose2d(xv, w, b, **kwargs)
        check_conv_transpose2d(x, w, None, **kwargs)
        got = assert_same_for_thread_counts(lambda: F.conv_transpose2d(x, w, b, **kwargs))
        want = _torch(TF.conv_transpose2d, x, w, b, **kwargs)
        r = randn(want.shape, dtype, 630 + i)
        assert_close(F.conv_transpose2d(x, w, b, activation="gelu", residual=r, **kwargs),
                     TF.gelu(want + T(r)), **tol(dtype, w_shape[0] * w_shape[2] * w_shape[3]))
        assert_close(F.conv_transpose2d(x, w, b, activation="relu", **kwargs), TF.relu(want),
                     **tol(dtype, w_shape[0] * w_shape[2] * w_shape[3]))
    reference = torch.nn.ConvTranspose2d(4, 256, 8).to(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    layer = tnn.ConvTranspose2d(4, 256, 8, dtype=dtype)
    layer.load_state_dict(reference.state_dict())
    for x_shape in [(20, 4, 1, 1), (2, 4, 9, 11), (20, 4, 1, 1)]:
        x = randn(x_shape, dtype, 640)
        assert_close(layer(x), reference(T(x)).detach(), **tol(dtype, 4 * 64))


def test_workspace_requests_are_counted_from_a_mark():
    """The bench's per-case workspace figure: the largest request of every per-thread
    workspace since mark_workspace_requests(), whatever earlier calls left them holding."""
    core = tops._core
    x, w = randn((1, 64, 30, 30), np.float32), randn((32, 64, 3, 3), np.float32, seed=1)
    F.conv2d(randn((2, 256, 56, 56), np.float32), randn((64, 256, 1, 1), np.float32))  # a larger request first
    core.mark_workspace_requests()
    assert core.workspace_requested_bytes() == 0
    F.conv2d(x, w, padding=1)
    first = core.workspace_requested_bytes()
    assert 0 < first <= core.workspace_bytes()
    F.conv2d(x, w, padding=1)
    assert core.workspace_requested_bytes() == first  # the same requests again: no more needed
    core.mark_workspace_requests()
    assert core.workspace_requested_bytes() == 0


@pytest.mark.single_isa
def test_module_sizes_take_any_iterable_and_padding_modes_refuse_odd_paddings():
    for size in (np.array([3, 2]), range(2, 4)):
        ours, theirs = tnn.Conv2d(4, 6, size), torch.nn.Conv2d(4, 6, size)
        assert ours.weight.shape == tuple(theirs.weight.shape) and repr(ours) == repr(theirs)
    x = np.ones((1, 4, 8, 8), np.float32)
    for padding in ((1,), (1, 2, 3)):
        with pytest.raises(tops.ShapeError, match="expected padding to be a single integer value or a list of 2"):
            tnn.Conv2d(4, 6, 3, padding=padding, padding_mode="reflect")(x)
