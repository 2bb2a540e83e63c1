import itertools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorops as tops
from tensorops import ShapeError
from tensorops.norm import batch_norm, group_norm, instance_norm, layer_norm
from reference import (DTYPES, L2_SIZES, ODD_SIZES, assert_close, assumed_l2_cache_bytes, layouts,
                       randn, rng)


def tol(dtype):
    """Normalised outputs are O(1); the statistics are summed in a different order than
    torch's, so allow a few ulp of the output scale."""
    return dict(rtol=1e-5, atol=2e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-11)


def t(a):
    return None if a is None else torch.from_numpy(np.array(a))


def channel_params(c, dtype, seed=1):
    g = rng(seed)
    return ((g.standard_normal(c) + 1).astype(dtype), g.standard_normal(c).astype(dtype),
            g.standard_normal(c).astype(dtype), (g.random(c) + 0.5).astype(dtype))


def check_op_against_torch(ours, theirs, x, dtype):
    """The op's result against torch's on the same values; the input stays untouched."""
    before = x.copy()
    assert_close(ours(x), theirs(torch.from_numpy(x.copy())), **tol(dtype))
    np.testing.assert_array_equal(x, before)


# ---- batch_norm -------------------------------------------------------------------------------

BN_SHAPES = [(2, 3), (7, 5), (1, 4, 5), (3, 5, 7, 11), (2, 3, 4, 5, 6), (4, 17, 1, 1), (2, 3, 4099), (64, 3),
             (3, 130), (1, 2, 2), (130, 200)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch_over_steps(dtype, shape, affine, assumed_l2):
    c = shape[1]
    w, b, rm, rv = channel_params(c, dtype)
    w, b = (w, b) if affine else (None, None)
    trm, trv = t(rm), t(rv)
    for step in range(3):
        x = randn(shape, dtype, seed=step, scale=2.0) + step
        y = batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
        ref = F.batch_norm(t(x), trm, trv, t(w), t(b), training=True, momentum=0.3)
        assert_close(y, ref, **tol(dtype))
        assert_close(rm, trm, **tol(dtype))
        assert_close(rv, trv, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_eval_matches_torch(dtype, shape):
    w, b, rm, rv = channel_params(shape[1], dtype)
    x = randn(shape, dtype, scale=3.0)
    check_op_against_torch(lambda v: batch_norm(v, rm, rv, w, b),
                           lambda v: F.batch_norm(v, t(rm), t(rv), t(w), t(b)), x, dtype)
    check_op_against_torch(lambda v: batch_norm(v, rm, rv, eps=0.1),
                           lambda v: F.batch_norm(v, t(rm), t(rv), eps=0.1), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_training_without_running_stats(dtype):
    x = randn((6, 4, 9), dtype)
    assert_close(batch_norm(x, None, None, training=True, eps=1e-3),
                 F.batch_norm(t(x), None, None, training=True, eps=1e-3), **tol(dtype))


@pytest.mark.parametrize("spatial", ODD_SIZES[1:])
def test_batch_norm_odd_plane_sizes(spatial):
    x = randn((3, 4, spatial), np.float32, scale=2.0) + 0.5
    w, b, rm, rv = channel_params(4, np.float32)
    trm, trv = t(rm), t(rv)
    if 3 * spatial == 1:
        return
    assert_close(batch_norm(x, rm, rv, w, b, training=True),
                 F.batch_norm(t(x), trm, trv, t(w), t(b), training=True), **tol(np.float32))
    assert_close(rv, trv, **tol(np.float32))


@pytest.mark.parametrize("channels", ODD_SIZES[1:])
def test_batch_norm_odd_channel_counts_2d(channels):
    x = randn((37, channels), np.float32) * 3 - 1
    w, b, rm, rv = channel_params(channels, np.float32)
    trm, trv = t(rm), t(rv)
    assert_close(batch_norm(x, rm, rv, w, b, training=True),
                 F.batch_norm(t(x), trm, trv, t(w), t(b), training=True), **tol(np.float32))
    assert_close(rm, trm, **tol(np.float32))
    assert_close(rv, trv, **tol(np.float32))


def test_batch_norm_updates_strided_running_stats_in_place():
    x = randn((5, 3, 4), np.float32) + 4
    store_m, store_v = np.zeros(6, np.float32), np.ones(6, np.float32)
    rm, rv = store_m[::2], store_v[::2]
    trm, trv = torch.zeros(3), torch.ones(3)
    batch_norm(x, rm, rv, training=True)
    F.batch_norm(t(x), trm, trv, training=True)
    assert_close(store_m[::2], trm, **tol(np.float32))
    assert_close(store_v[::2], trv, **tol(np.float32))
    np.testing.assert_array_equal(store_m[1::2], 0)
    np.testing.assert_array_equal(store_v[1::2], 1)


def test_batch_norm_updates_torch_running_stats_in_place():
    x = randn((5, 3, 4), np.float32) - 2
    rm, rv = torch.zeros(3), torch.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    y = batch_norm(torch.from_numpy(x), rm, rv, training=True)
    ref = F.batch_norm(t(x), trm, trv, training=True)
    assert_close(y, ref, **tol(np.float32))
    assert_close(rm.numpy(), trm, **tol(np.float32))
    assert_close(rv.numpy(), trv, **tol(np.float32))


# ---- instance_norm ----------------------------------------------------------------------------

IN_SHAPES = [(2, 3, 5), (1, 4, 7, 9), (3, 2, 4099), (2, 3, 2), (1, 1, 17), (2, 5, 3, 4, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", IN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch_over_steps(dtype, shape, affine):
    w, b, rm, rv = channel_params(shape[1], dtype)
    w, b = (w, b) if affine else (None, None)
    trm, trv = t(rm), t(rv)
    for step in range(3):
        x = randn(shape, dtype, seed=step, scale=1.5) - step
        y = instance_norm(x, rm, rv, w, b, momentum=0.2)
        ref = F.instance_norm(t(x), trm, trv, t(w), t(b), momentum=0.2)
        assert_close(y, ref, **tol(dtype))
        assert_close(rm, trm, **tol(dtype))
        assert_close(rv, trv, **tol(dtype))
    x = randn(shape, dtype, seed=9)
    assert_close(instance_norm(x, None, None, w, b), F.instance_norm(t(x), None, None, t(w), t(b)), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3), (4, 3, 1)], ids=str)
def test_instance_norm_running_stats_mode(dtype, shape):
    w, b, rm, rv = channel_params(shape[1], dtype)
    x = randn(shape, dtype)
    check_op_against_torch(lambda v: instance_norm(v, rm, rv, w, b, use_input_stats=False),
                           lambda v: F.instance_norm(v, t(rm), t(rv), t(w), t(b), use_input_stats=False), x, dtype)


@pytest.mark.parametrize("spatial", ODD_SIZES[2:])
def test_instance_norm_odd_plane_sizes(spatial):
    x = randn((2, 3, spatial), np.float32) + 1
    assert_close(instance_norm(x), F.instance_norm(t(x)), **tol(np.float32))


# ---- group_norm -------------------------------------------------------------------------------

GN_CASES = [((2, 6, 5), 1), ((2, 6, 5), 2), ((2, 6, 5), 3), ((2, 6, 5), 6), ((1, 32, 7, 7), 8), ((2, 6), 3),
            ((3, 4, 4097), 2), ((4, 6), 1), ((1, 9, 2, 3), 3), ((2, 4, 3, 2, 2), 4)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", GN_CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(dtype, shape, groups, affine):
    w, b, _, _ = channel_params(shape[1], dtype)
    w, b = (w, b) if affine else (None, None)
    x = randn(shape, dtype, scale=2.0) + 0.5
    check_op_against_torch(lambda v: group_norm(v, groups, w, b),
                           lambda v: F.group_norm(v, groups, t(w), t(b)), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("plane", [2, 3, 7, 16, 31, 32])
@pytest.mark.parametrize("with_weight,with_bias", [(True, True), (True, False), (False, True), (False, False)])
def test_group_norm_short_channels(dtype, plane, with_weight, with_bias):
    """Channels of up to 31 elements take weight and bias per element (each channel's
    repeated over its plane), so a piece of a group spans channels in one call: groups of
    3 and 5 channels whose pieces (4 KiB chunks) start inside channels, 1 and 2 threads."""
    g = rng(11)
    for channels, groups in [(15, 5), (15, 3), (12, 1)]:
        x = randn((37, channels, plane), dtype, seed=plane, scale=3.0) + 2
        w = (g.standard_normal(channels) + 1).astype(dtype) if with_weight else None
        b = g.standard_normal(channels).astype(dtype) if with_bias else None
        ours = group_norm(x, groups, w, b)
        assert_close(ours, F.group_norm(t(x), groups, t(w), t(b)), **tol(dtype))
        np.testing.assert_array_equal(on_two_threads(lambda: group_norm(x, groups, w, b))(), ours)


@pytest.mark.parametrize("spatial", ODD_SIZES[1:])
def test_group_norm_odd_sizes(spatial):
    x = randn((2, 4, spatial), np.float32)
    w, b, _, _ = channel_params(4, np.float32)
    assert_close(group_norm(x, 2, w, b), F.group_norm(t(x), 2, t(w), t(b)), **tol(np.float32))


# ---- layer_norm -------------------------------------------------------------------------------

LN_CASES = [((4, 7), (7,)), ((2, 3, 17), (3, 17)), ((5, 4099), (4099,)), ((3, 1), (1,)), ((2, 3, 8193), (8193,)),
            ((1, 768), 768), ((16,), [16]), ((2, 2, 3, 5), (2, 3, 5))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", LN_CASES, ids=str)
@pytest.mark.parametrize("with_weight,with_bias", [(True, True), (True, False), (False, True), (False, False)])
def test_layer_norm_matches_torch(dtype, shape, normalized, with_weight, with_bias):
    dims = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    g = rng(3)
    w = (g.standard_normal(dims) + 1).astype(dtype) if with_weight else None
    b = g.standard_normal(dims).astype(dtype) if with_bias else None
    x = randn(shape, dtype, scale=2.0) - 1
    check_op_against_torch(lambda v: layer_norm(v, normalized, w, b),
                           lambda v: F.layer_norm(v, dims, t(w), t(b)), x, dtype)


def placed_at(values, offset):
    """A copy of values starting `offset` elements past a 64-byte boundary."""
    buffer = np.zeros(values.size + 64, values.dtype)
    start = (-buffer.ctypes.data // buffer.itemsize) % (64 // buffer.itemsize) + offset
    placed = buffer[start:start + values.size]
    placed[:] = values
    return placed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1, 3], ids=["offset", "odd"])
@pytest.mark.parametrize("width", [17, 768, 16384, 16385])
@pytest.mark.parametrize("with_weight,with_bias", [(True, True), (True, False), (False, True)])
def test_layer_norm_parameters_at_any_alignment(dtype, offset, width, with_weight, with_bias):
    """With 16 rows and more, weight and bias that start inside a cache line go to the kernel
    as aligned copies (rows of up to 64 KiB): the copies must hold the parameters' values
    and give the bits of the same parameters aligned."""
    g = rng(7)
    x = randn((16 if width > 1000 else 40, width), dtype, scale=2.0) - 1
    w = (g.standard_normal(width) + 1).astype(dtype) if with_weight else None
    b = g.standard_normal(width).astype(dtype) if with_bias else None
    placed = [None if v is None else placed_at(v, offset) for v in (w, b)]
    ours = layer_norm(x, width, *placed)
    assert_close(ours, F.layer_norm(t(x), (width,), t(w), t(b)), **tol(dtype))
    aligned = [None if v is None else placed_at(v, 0) for v in (w, b)]
    np.testing.assert_array_equal(ours, layer_norm(x, width, *aligned))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65])
def test_short_rows_in_groups(dtype, width):
    """Layer norm rows and instance norm planes of up to 64 elements go through the kernel a
    vector's lanes of rows at a time (their reductions shared): groups cut short at the end
    and at thread shares, a NaN, an infinite, a constant and a far-off row inside a group,
    each row with the values it has alone; activations; running statistics; the bits of one
    thread on two."""
    rows = 37
    x = randn((rows, width), dtype, seed=width, scale=2.0) + 1
    x[3] = np.nan
    x[5, 0] = np.inf
    x[6] = 2.5
    x[20] += 100
    g = rng(5)
    w, b = (g.standard_normal(width) + 1).astype(dtype), g.standard_normal(width).astype(dtype)
    ln = lambda: layer_norm(x, width, w, b, activation="silu")
    ours = ln()
    assert_close(ours, F.silu(F.layer_norm(t(x), (width,), t(w), t(b))), **tol(dtype))
    for r in (0, 3, 5, 6, 20, 36):
        np.testing.assert_array_equal(layer_norm(x[r:r + 1], width, w, b, activation="silu"), ours[r:r + 1])
    np.testing.assert_array_equal(on_two_threads(ln)(), ours)
    if width < 2:
        return
    planes = x.reshape(rows, 1, width)[:36].reshape(12, 3, width)
    cw, cb, rm, rv = channel_params(3, dtype)

    def inst():
        running = rm.copy(), rv.copy()
        y = instance_norm(planes, *running, cw, cb, use_input_stats=True, activation="relu")
        return y, *running

    ours = inst()
    running = t(rm), t(rv)
    want = F.relu(F.instance_norm(t(planes), *running, t(cw), t(cb), use_input_stats=True))
    for got, expected in zip(ours, (want, *running)):
        assert_close(got, expected, **tol(dtype))
    for got, expected in zip(on_two_threads(inst)(), ours):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("width", ODD_SIZES[1:])
def test_layer_norm_odd_widths(width):
    x = randn((3, width), np.float32) + 2
    w = randn((width,), np.float32, seed=5)
    assert_close(layer_norm(x, (width,), w), F.layer_norm(t(x), (width,), t(w)), **tol(np.float32))


# ---- every op: layouts, empty tensors, special values, accuracy, threads, extensions ---------

OPS = {
    "batch_norm_train": (lambda x, c: batch_norm(x, None, None, training=True),
                         lambda x, c: F.batch_norm(x, None, None, training=True)),
    "batch_norm_eval": (lambda x, c: batch_norm(x, np.full(c, 0.5, x.dtype), np.full(c, 2.0, x.dtype)),
                        lambda x, c: F.batch_norm(x, torch.full((c,), 0.5, dtype=x.dtype),
                                                  torch.full((c,), 2.0, dtype=x.dtype))),
    "instance_norm": (lambda x, c: instance_norm(x), lambda x, c: F.instance_norm(x)),
    "group_norm": (lambda x, c: group_norm(x, 2), lambda x, c: F.group_norm(x, 2)),
    "layer_norm": (lambda x, c: layer_norm(x, x.shape[2:]), lambda x, c: F.layer_norm(x, x.shape[2:])),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_non_contiguous_inputs(dtype, op):
    ours, theirs = OPS[op]
    x = randn((3, 4, 5, 6), dtype)
    expected = theirs(t(x), 4)
    for name, v in layouts(x):
        assert_close(ours(v, 4), expected, **tol(dtype))
    transposed = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last memory
    assert_close(ours(transposed, 4), expected, **tol(dtype))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(0, 4, 5), (2, 4, 0), (0, 4, 0, 3)], ids=str)
def test_empty_inputs(op, shape):
    ours, theirs = OPS[op]
    x = np.zeros(shape, np.float32)
    if op == "layer_norm" and 0 in shape[2:]:
        assert_close(layer_norm(x, shape[2:]), F.layer_norm(t(x), shape[2:]))
        return
    assert_close(ours(x, 4), theirs(t(x), 4))


def test_empty_inputs_update_running_stats_as_torch():
    """Batch norm over no element leaves the running statistics; instance norm over no
    instance (batch 0) averages the instances' statistics into NaN, as torch does, and over
    empty planes of a non-empty batch leaves them."""
    for op, shapes in ((batch_norm, [(0, 3, 4), (2, 3, 0), (0, 3)]), (instance_norm, [(0, 3, 4), (2, 3, 0), (0, 3, 0)])):
        for shape in shapes:
            rm, rv = np.full(3, 0.5, np.float32), np.full(3, 2.0, np.float32)
            trm, trv = t(rm.copy()), t(rv.copy())
            if op is batch_norm:
                y = op(np.zeros(shape, np.float32), rm, rv, training=True)
                F.batch_norm(torch.zeros(shape), trm, trv, training=True)
            else:
                y = op(np.zeros(shape, np.float32), rm, rv, momentum=0.3)
                F.instance_norm(torch.zeros(shape), trm, trv, use_input_stats=True, momentum=0.3)
            assert y.shape == shape
            np.testing.assert_array_equal(rm, trm.numpy())
            np.testing.assert_array_equal(rv, trv.numpy())
    x = np.zeros((2, 0, 3), np.float32)
    assert batch_norm(x, np.zeros(0, np.float32), np.ones(0, np.float32), training=True).shape == (2, 0, 3)
    assert group_norm(x, 1).shape == (2, 0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate_like_torch(dtype):
    x = randn((3, 4, 6), dtype)
    x[0, 0, 0] = np.inf
    x[1, 1, 2] = np.nan
    x[2, 2, 3] = -np.inf
    x[0, 2, 1] = np.inf
    for op, (ours, theirs) in OPS.items():
        assert_close(ours(x, 4), theirs(t(x), 4), **tol(dtype))
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    trm, trv = t(rm), t(rv)
    batch_norm(x, rm, rv, training=True)
    F.batch_norm(t(x), trm, trv, training=True)
    assert_close(rm, trm, **tol(dtype))
    assert_close(rv, trv, **tol(dtype))


def test_infinite_mean_across_chunks():
    # Two statistic chunks with +inf each: the merged mean is +inf (not inf - inf = NaN).
    x = np.ones((1, 1, 2 * 4096 + 5), np.float32)
    x[0, 0, 3] = x[0, 0, 5000] = np.inf
    rm, rv = np.zeros(1, np.float32), np.ones(1, np.float32)
    trm, trv = torch.zeros(1), torch.ones(1)
    batch_norm(x, rm, rv, training=True)
    F.batch_norm(t(x), trm, trv, training=True)
    assert_close(rm, trm)
    assert_close(rv, trv)


def float64_reference(x, axes, eps=1e-5):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = x64.var(axis=axes, keepdims=True)
    return (x64 - mean) / np.sqrt(var + eps), mean, var


@pytest.mark.parametrize("offset", [1000.0, -3e4])
def test_large_mean_stays_accurate(offset):
    x = (offset + randn((4, 3, 9000), np.float64)).astype(np.float32)
    expected, mean, var = float64_reference(x, (0, 2))
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = batch_norm(x, rm, rv, training=True, momentum=1.0)
    n = x.shape[0] * x.shape[2]
    np.testing.assert_allclose(rv, var.ravel() * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(rm, mean.ravel(), rtol=1e-7)
    # The output can be no better than float32 rounding of the mean (ulp(offset) / 2).
    floor = np.spacing(np.float32(abs(offset))) * 2
    torch_error = np.abs(F.batch_norm(t(x), None, None, training=True).numpy() - expected).max()
    assert np.abs(y - expected).max() <= max(floor, 1.5 * torch_error)
    for ours, axes in [(instance_norm(x), (2,)), (group_norm(x, 1), (1, 2)), (layer_norm(x, (3, 9000)), (1, 2))]:
        expected = float64_reference(x, axes)[0]
        assert np.abs(ours - expected).max() <= floor
    x2 = (offset + randn((300, 5), np.float64)).astype(np.float32)  # (N, C): the column kernels
    rm, rv = np.zeros(5, np.float32), np.ones(5, np.float32)
    batch_norm(x2, rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rv, x2.astype(np.float64).var(axis=0, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead", [0.0, 0.5, 3.0, 40.0, 1e4], ids=lambda v: f"lead{v:g}")
def test_statistics_whose_first_values_lie_far_out(dtype, lead):
    # The one-sweep statistics take deviations from the mean of a chunk's first vector; where
    # that lies beyond a standard deviation of the chunk's mean (leads 3 and up), the chunk is
    # swept again. Either way the outputs keep torch's accuracy against a float64 reference,
    # on a large offset (rows of 768 and 9 are single chunks; 5000 spans two).
    for width in (768, 9, 5000):
        x64 = rng(11).standard_normal((6, 4, width))
        x64[..., :16] += lead
        x = (300.0 + x64).astype(dtype)
        tx = torch.from_numpy(x)
        for ours, theirs, axes in [(layer_norm(x, (width,)), F.layer_norm(tx, (width,)), (2,)),
                                   (instance_norm(x), F.instance_norm(tx), (2,)),
                                   (group_norm(x, 1), F.group_norm(tx, 1), (1, 2)),
                                   (batch_norm(x, None, None, training=True),
                                    F.batch_norm(tx, None, None, training=True), (0, 2))]:
            expected = float64_reference(x, axes)[0]
            torch_error = np.abs(theirs.numpy() - expected).max()
            assert np.abs(ours - expected).max() <= max(1.5 * torch_error, 4 * np.spacing(dtype(300.0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_few_units_per_thread(dtype):
    """A unit (row, plane, group) is normalised two units after its statistics: tasks of one,
    two and three units have no unit two on, and every unit must still be written, with
    torch's values."""
    previous = tops.get_num_threads()
    try:
        for units, threads in itertools.product(range(1, 7), (1, 2, 3)):
            tops.set_num_threads(threads)
            x = randn((units, 2, 3, 5), dtype, seed=units, scale=3.0) + 2
            t = torch.from_numpy(x)
            w, b = randn((3, 5), dtype, seed=40), randn((3, 5), dtype, seed=41)
            assert_close(layer_norm(x, (3, 5), w, b), F.layer_norm(t, (3, 5), torch.from_numpy(w), torch.from_numpy(b)))
            assert_close(instance_norm(x), F.instance_norm(t))
            assert_close(group_norm(x, 2), F.group_norm(t, 2))
            assert_close(layer_norm(x[:, 0, 0, :], (5,)), F.layer_norm(t[:, 0, 0, :], (5,)))
    finally:
        tops.set_num_threads(previous)


@pytest.mark.parametrize("shape", [(5, 3, 4099), (5, 4, 100), (6, 100, 35), (2, 3, 9000), (300, 70), (2, 1, 20000),
                                   (4, 6, 700), (3, 8, 300)], ids=str)
def test_results_identical_for_any_thread_count(shape):
    """Every thread split gives the same bits, and so do batch norm training's two paths
    (channel by channel, its statistics beside the previous channel's normalising sweep; or,
    where a core's L2 is small, statistics in memory order and then a normalising sweep)."""
    x = randn(shape, np.float32, scale=4.0) + 7
    c = shape[1]
    results = []
    previous = tops.get_num_threads()
    try:
        for threads, l2 in itertools.product((1, 2, 3), L2_SIZES.values()):
            tops.set_num_threads(threads)
            rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
            irm, irv = np.zeros(c, np.float32), np.ones(c, np.float32)
            with assumed_l2_cache_bytes(l2):
                outs = [batch_norm(x, rm, rv, training=True), rm, rv,
                        batch_norm(x, rm, rv), layer_norm(x, shape[1:])]
                if len(shape) > 2:
                    # Group norm pieces within a channel (one sweep with the next unit's statistics)
                    # and pieces across channels (two sweeps) must agree on every thread split.
                    outs += [instance_norm(x, irm, irv), irm, irv] + [group_norm(x, g) for g in (1, 2, c) if c % g == 0]
            results.append(outs)
    finally:
        tops.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,fn", [("relu", F.relu), ("silu", F.silu)])
def test_fused_activation(dtype, activation, fn):
    x = randn((3, 4, 37), dtype, scale=3.0)
    x[0, 0, 0] = np.nan
    w, b, rm, rv = channel_params(4, dtype)
    checks = [
        (batch_norm(x, rm.copy(), rv.copy(), w, b, training=True, activation=activation),
         fn(F.batch_norm(t(x), t(rm), t(rv), t(w), t(b), training=True))),
        (batch_norm(x, rm, rv, w, b, activation=activation), fn(F.batch_norm(t(x), t(rm), t(rv), t(w), t(b)))),
        (batch_norm(x[:, :, 0], rm, rv, w, b, activation=activation),
         fn(F.batch_norm(t(x[:, :, 0]), t(rm), t(rv), t(w), t(b)))),
        (instance_norm(x, None, None, w, b, activation=activation), fn(F.instance_norm(t(x), None, None, t(w), t(b)))),
        (group_norm(x, 2, w, b, activation=activation), fn(F.group_norm(t(x), 2, t(w), t(b)))),
        (group_norm(x[:, :, 0], 2, w, b, activation=activation), fn(F.group_norm(t(x[:, :, 0]), 2, t(w), t(b)))),
        (layer_norm(x, (37,), activation=activation), fn(F.layer_norm(t(x), (37,)))),
    ]
    for ours, ref in checks:
        assert_close(ours, ref, **tol(dtype))


@pytest.mark.parametrize("op", ["batch_norm", "instance_norm", "group_norm", "layer_norm"])
def test_unknown_activation(op):
    x = randn((2, 4, 3), np.float32)
    call = {"batch_norm": lambda a: batch_norm(x, None, None, training=True, activation=a),
            "instance_norm": lambda a: instance_norm(x, activation=a),
            "group_norm": lambda a: group_norm(x, 2, activation=a),
            "layer_norm": lambda a: layer_norm(x, 3, activation=a)}[op]
    with pytest.raises(ShapeError, match=re.escape(f"{op}: activation must be None, 'relu' or 'silu', got 'gelu'")):
        call("gelu")
    with pytest.raises(ShapeError, match="activation must be None"):
        call(1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(dtype):
    x = randn((2, 4, 5), dtype)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    for call, ref in [
        (lambda o: batch_norm(x, rm, rv, out=o), F.batch_norm(t(x), t(rm), t(rv))),
        (lambda o: instance_norm(x, out=o), F.instance_norm(t(x))),
        (lambda o: group_norm(x, 2, out=o), F.group_norm(t(x), 2)),
        (lambda o: layer_norm(x, 5, out=o), F.layer_norm(t(x), (5,))),
    ]:
        out = np.full(x.shape, -7, dtype)
        assert call(out) is out
        assert_close(out, ref, **tol(dtype))
        with pytest.raises(ShapeError, match=r"out has shape \[2, 4\], expected \[2, 4, 5\]"):
            call(np.empty((2, 4), dtype))
        with pytest.raises(TypeError, match="out has dtype"):
            call(np.empty(x.shape, np.float64 if dtype == np.float32 else np.float32))
        with pytest.raises(ShapeError, match="out must be C-contiguous"):
            call(np.empty((5, 4, 2), dtype).T)


def test_in_place_through_out():
    x = randn((3, 4, 50), np.float32) + 3
    expected = F.batch_norm(t(x), None, None, training=True)
    y = batch_norm(x, None, None, training=True, out=x)
    assert y is x
    assert_close(x, expected, **tol(np.float32))


# Outputs of 16 MiB and more (8 MiB on one thread) are written with streaming stores, whole
# cache lines only, the elements before and after them with ordinary stores: planes and rows
# whose length is no multiple of the vector width, and out= arrays one element and half a line
# (AVX2's vector) past an aligned address, put every output run at a different alignment.
STREAMED = {np.float32: [(4, 3, 617, 593), (140001, 31)], np.float64: [(6, 3, 401, 293), (70001, 31)]}


def on_two_threads(call):
    def run():
        before = tops.get_num_threads()
        tops.set_num_threads(2)
        try:
            return call()
        finally:
            tops.set_num_threads(before)
    return run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", [0, 1], ids=["planes", "rows"])
@pytest.mark.parametrize("offset", [0, 1, 8], ids=["aligned", "offset", "half_line"])
def test_streamed_outputs_match_torch(dtype, layout, offset):
    shape = STREAMED[dtype][layout]
    x = randn(shape, dtype, scale=2.0) + 1
    c = shape[1]
    w, b, rm, rv = channel_params(c, dtype)
    size = int(np.prod(shape))
    buffer = np.full(size + offset, -7, dtype)
    out = buffer[offset:].reshape(shape)
    assert out.nbytes >= 16 << 20
    calls = [
        (lambda: batch_norm(x, rm, rv, w, b, out=out, activation="relu"),
         lambda: F.relu(F.batch_norm(t(x), t(rm), t(rv), t(w), t(b)))),
        # Three channels on two threads: statistics in parallel, then a separate streamed pass.
        (on_two_threads(lambda: batch_norm(x[:, :3], None, None, training=True)),
         lambda: F.batch_norm(t(x[:, :3]), None, None, training=True)),
        (lambda: layer_norm(x, shape[-1], w if layout else None, out=out),
         lambda: F.layer_norm(t(x), (shape[-1],), t(w) if layout else None)),
    ]
    if layout == 0:
        calls += [(lambda: instance_norm(x, out=out), lambda: F.instance_norm(t(x))),
                  (lambda: group_norm(x, 1, w[:c], b[:c], out=out), lambda: F.group_norm(t(x), 1, t(w), t(b)))]
    for ours, theirs in calls:
        buffer[:] = -7
        assert_close(ours(), theirs(), **tol(dtype))


@pytest.mark.parametrize("l2", list(L2_SIZES.values()), ids=list(L2_SIZES))
@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
def test_streamed_units_match_torch_and_every_thread_count(offset, l2):
    """Where L2 is under 2 MiB, streamed outputs whose units (a batch norm channel over the
    batch, an instance plane, a layer norm row) hold 4 KiB or more (under 1 MiB) or 2 KiB or
    more (from 1 MiB) run each unit's statistics and then its normalising apart, the
    normalising streamed; elsewhere the fused sweep. Batch norm over more than 16 MiB takes
    that per-channel path (smaller inputs reread from L3 there); layer norm rows of 4124 and
    3084 bytes fall on either side of the bounds; the bits must not depend on the threads."""
    shape = (4, 16, 257, 263)
    x = randn(shape, np.float32, scale=2.0) + 3
    w, b, rm, rv = channel_params(16, np.float32)
    buffer = np.full(x.size + offset, -7, np.float32)
    out = buffer[offset:].reshape(shape)
    assert out.nbytes > 16 << 20
    rows = x.reshape(-1)[:x.size // 2062 * 2062].reshape(-1, 2062)[:, :1031]  # rows of 4124 bytes
    short_rows = x.reshape(-1)[:x.size // 771 * 771].reshape(-1, 771)  # rows of 3084 bytes, 16 MiB and more
    cases = [
        (lambda: batch_norm(x, rm.copy(), rv.copy(), w, b, training=True, out=out),
         lambda: F.batch_norm(t(x), t(rm), t(rv), t(w), t(b), training=True)),
        (lambda: group_norm(x, 4, w, b, out=out), lambda: F.group_norm(t(x), 4, t(w), t(b))),
        (lambda: instance_norm(x, out=out), lambda: F.instance_norm(t(x))),
        (lambda: layer_norm(rows, 1031), lambda: F.layer_norm(t(np.ascontiguousarray(rows)), (1031,))),
        (lambda: layer_norm(short_rows, 771), lambda: F.layer_norm(t(np.ascontiguousarray(short_rows)), (771,))),
    ]
    with assumed_l2_cache_bytes(l2):
        for ours, theirs in cases:
            buffer[:] = -7
            one = ours().copy()
            assert_close(one, theirs(), **tol(np.float32))
            buffer[:] = -7
            np.testing.assert_array_equal(on_two_threads(ours)(), one)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 4, 4), (2, 7, 1, 17), (5, 3, 31, 1), (1, 2, 3, 11), (4, 9, 35, 45),
                                   (20, 100, 35, 45)], ids=str)
@pytest.mark.parametrize("offset", [0, 1, 5], ids=["aligned", "offset", "odd"])
def test_batch_norm_eval_runs_across_planes(dtype, shape, offset):
    """Eval batch norm hands each thread's share to the kernel as one run across its planes
    (planes of 16 elements and more): a vector straddling two planes takes each lane's
    channel, the channels wrap round from the last to the first, a share may start and end
    inside a plane, and the largest shape streams its output (unaligned too)."""
    c = shape[1]
    w, b, rm, rv = channel_params(c, dtype)
    x = randn(shape, dtype, scale=2.0) + 1
    buffer = np.full(x.size + offset, -7, dtype)
    out = buffer[offset:].reshape(shape)
    want = F.relu(F.batch_norm(t(x), t(rm), t(rv), t(w), t(b)))
    one = batch_norm(x, rm, rv, w, b, out=out, activation="relu").copy()
    assert_close(one, want, **tol(dtype))
    buffer[:] = -7
    np.testing.assert_array_equal(on_two_threads(lambda: batch_norm(x, rm, rv, w, b, out=out, activation="relu"))(),
                                  one)
    assert (buffer[:offset] == -7).all()


# Streamed on one thread (8 MiB and more), not on two (under 16 MiB): 35x45 planes (6300
# bytes in float32) and groups of 40 planes of 17 put unit and plane boundaries inside lines.
PLANE_UNITS = {np.float32: [(20, 100, 35, 45), (1544, 80, 17)], np.float64: [(10, 100, 35, 45), (772, 80, 17)]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0, 1, 5], ids=["aligned", "offset", "odd"])
def test_streamed_plane_units_run_across_planes(dtype, offset):
    """Where L2 is under 2 MiB, streamed instance and group norm units of 2 KiB and more
    normalise each unit as one run across its planes, from the first element of the line it
    shares with the unit before (whose run stopped at its last line boundary): every plane's
    coefficients must land on its own elements, at any output alignment, with the running
    statistics of the same moments, and the bits of the two-thread (fused) sweep."""
    planes_shape, rows_shape = PLANE_UNITS[dtype]
    cases = []
    for shape, groups in [(planes_shape, None), (planes_shape, 4), (rows_shape, 2)]:
        x = randn(shape, dtype, scale=2.0) + 1
        w, b, rm, rv = channel_params(shape[1], dtype)
        buffer = np.full(x.size + offset, -7, dtype)
        out = buffer[offset:].reshape(shape)
        assert out.nbytes >= 8 << 20
        if groups is None:
            def ours(x=x, w=w, b=b, rm=rm, rv=rv, out=out):
                running = rm.copy(), rv.copy()
                y = instance_norm(x, *running, w, b, use_input_stats=True, out=out, activation="relu")
                return (y.copy(), *running)

            def theirs(x=x, w=w, b=b, rm=rm, rv=rv):
                running = t(rm), t(rv)
                y = F.relu(F.instance_norm(t(x), *running, t(w), t(b), use_input_stats=True))
                return (y, *running)
        else:
            def ours(x=x, w=w, b=b, out=out, groups=groups):
                return (group_norm(x, groups, w, b, out=out).copy(),)

            def theirs(x=x, w=w, b=b, groups=groups):
                return (F.group_norm(t(x), groups, t(w), t(b)),)
        cases.append((ours, theirs, buffer))
    with assumed_l2_cache_bytes(L2_SIZES["mid_l2"]):
        for ours, theirs, buffer in cases:
            buffer[:] = -7
            one = ours()
            for got, want in zip(one, theirs()):
                assert_close(got, want, **tol(dtype))
            assert (buffer[:offset] == -7).all()
            for got, want in zip(on_two_threads(ours)(), one):
                np.testing.assert_array_equal(got, want)


# (channels, plane): (N, C) data up to 256 channels and planes under 16 elements (whose
# period stays within 65536) normalise in runs across planes; (N, C) past 256 channels row
# by row; training gathers columns of (N, C * S) up to planes of 63. Float32 streams some.
SHORT_PLANES = [(1, 1), (3, 1), (7, 1), (16, 1), (31, 1), (255, 1), (256, 1), (257, 1), (7, 2), (100, 3), (64, 7),
                (5, 15), (64, 16), (3, 17), (64, 31), (9, 63), (4, 64), (5000, 15)]
STREAMED_SHORT = {(7, 1), (257, 1), (64, 7), (3, 17)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels,plane", SHORT_PLANES, ids=str)
@pytest.mark.parametrize("offset", [0, 1, 5], ids=["aligned", "offset", "odd"])
def test_batch_norm_of_rows_and_short_planes(dtype, channels, plane, offset):
    """Every run and every thread's share may start at any channel, any element of a plane
    and any alignment, and an output of 8 MiB and more is streamed (on one thread). Eval and
    train, 1 and 2 threads (the same bits), out= arrays past an aligned address."""
    row = channels * plane
    if (channels, plane) in STREAMED_SHORT and dtype == np.float32:
        batch = (9 << 20) // (row * 4) + 3
    else:
        batch = max(3, min(397, (1 << 18) // row))
    shape = (batch, channels) if plane == 1 else (batch, channels, plane)
    x = randn(shape, dtype, scale=2.0) + 1
    w, b, rm, rv = channel_params(channels, dtype)
    buffer = np.full(x.size + offset, -7, dtype)
    out = buffer[offset:].reshape(x.shape)
    for training in (False, True):
        def ours():
            running = rm.copy(), rv.copy()
            return batch_norm(x, *running, w, b, training=training, out=out, activation="relu").copy(), *running

        buffer[:] = -7
        one = ours()
        # torch in float64: its float32 statistics over a million values stray by 1e-4.
        running = [t(v).double() for v in (rm, rv)]
        want = F.relu(F.batch_norm(t(x).double(), *running, t(w).double(), t(b).double(), training=training))
        for got, expected in zip(one, (want, *running)):
            assert_close(got, expected.to(t(x).dtype), **tol(dtype))
        assert (buffer[:offset] == -7).all()
        buffer[:] = -7
        for got, expected in zip(on_two_threads(ours)(), one):
            np.testing.assert_array_equal(got, expected)


def test_torch_tensor_inputs():
    x = torch.randn(3, 4, 5)
    w = torch.rand(4) + 0.5
    assert_close(group_norm(x, 2, w, torch.zeros(4)), F.group_norm(x, 2, w, torch.zeros(4)), **tol(np.float32))
    assert_close(layer_norm(x, (5,), torch.ones(5)), F.layer_norm(x, (5,), torch.ones(5)), **tol(np.float32))


def test_python_sequence_parameters_take_the_input_dtype():
    x = randn((3, 2, 4), np.float32)
    assert_close(batch_norm(x, np.zeros(2, np.float32), np.ones(2, np.float32), [2.0, 3.0], [0.5, -1.0]),
                 F.batch_norm(t(x), torch.zeros(2), torch.ones(2), torch.tensor([2.0, 3.0]), torch.tensor([0.5, -1.0])),
                 **tol(np.float32))


def test_batch_norm_weight_of_any_shape_with_c_elements():
    x = randn((3, 4), np.float32)
    w = randn((1, 4), np.float32, seed=4)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    assert_close(batch_norm(x, rm, rv, w), F.batch_norm(t(x), t(rm), t(rv), t(w)), **tol(np.float32))


# ---- errors: type and message as torch's ------------------------------------------------------

X = np.zeros((2, 3, 4), np.float32)
R3 = np.zeros(3, np.float32)


def torch_message(fn):
    with pytest.raises(Exception) as info:
        fn()
    return str(info.value)


ERROR_CASES = [
    # batch_norm
    (lambda: batch_norm(np.zeros((1, 3), np.float32), R3, R3 + 1, training=True), ShapeError,
     "Expected more than 1 value per channel when training, got input size torch.Size([1, 3])"),
    (lambda: batch_norm(np.zeros((1, 3, 1), np.float32), None, None, training=True), ShapeError,
     "Expected more than 1 value per channel when training, got input size torch.Size([1, 3, 1])"),
    (lambda: batch_norm(X, None, None), ShapeError, "running_mean must be defined in evaluation mode"),
    (lambda: batch_norm(X, R3, None), ShapeError, "running_var must be defined in evaluation mode"),
    (lambda: batch_norm(X, R3, None, training=True), ShapeError,
     "running_mean and running_var must either both be None or neither be None"),
    (lambda: batch_norm(X, np.zeros(4, np.float32), R3), ShapeError, "running_mean should contain 3 elements not 4"),
    (lambda: batch_norm(X, R3, np.ones(4, np.float32), training=True), ShapeError,
     "running_var should contain 3 elements not 4"),
    (lambda: batch_norm(X, R3, R3, np.ones(4, np.float32)), ShapeError, "weight should contain 3 elements not 4"),
    (lambda: batch_norm(X, R3, R3, None, np.ones(4, np.float32)), ShapeError, "bias should contain 3 elements not 4"),
    (lambda: batch_norm(X, np.zeros((1, 3), np.float32), R3), ShapeError,
     "TensorAccessor expected 1 dims but tensor has 2"),
    (lambda: batch_norm(X, R3.astype(np.float64), R3.astype(np.float64)), TypeError,
     "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    (lambda: batch_norm(X, R3, R3, np.ones(3, np.float64)), TypeError,
     "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    (lambda: batch_norm(X.astype(np.float64), R3, R3), TypeError,
     "mixed dtype (CPU): all inputs must share same datatype."),
    (lambda: batch_norm(X, R3, R3, eps=-1.0), ShapeError, "batch_norm eps must be non-negative, but got -1.0"),
    (lambda: batch_norm(X, R3, R3, training=True, eps=0.0), ShapeError,
     "batch_norm eps must be positive during training, but got 0.0"),
    (lambda: batch_norm(X, R3, R3, training=True, momentum=None), TypeError,
     "batch_norm(): argument 'momentum' (position 7) must be float, not NoneType"),
    (lambda: batch_norm(X, R3, R3, training=1), TypeError,
     "batch_norm(): argument 'training' (position 6) must be bool, not int"),
    (lambda: batch_norm(X, R3, R3, eps="a"), TypeError, "batch_norm(): argument 'eps' (position 8) must be float"),
    (lambda: batch_norm(np.zeros(3, np.float32), None, None, training=True), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got 1)"),
    (lambda: batch_norm(np.zeros(3, np.float32), R3, R3), ShapeError,
     "running_mean should contain 0 elements not 3"),
    (lambda: batch_norm(np.zeros((2, 3), np.int64), R3, R3), TypeError, "unsupported dtype int64"),
    (lambda: batch_norm(X, [0.0, 0.0, 0.0], R3), TypeError,
     "batch_norm(): argument 'running_mean' must be an array, not list"),
    # instance_norm
    (lambda: instance_norm(np.zeros((2, 3), np.float32)), ShapeError,
     "Expected more than 1 spatial element when training, got input size torch.Size([2, 3])"),
    (lambda: instance_norm(np.zeros((2, 3, 1), np.float32)), ShapeError,
     "Expected more than 1 spatial element when training, got input size torch.Size([2, 3, 1])"),
    (lambda: instance_norm(X, use_input_stats=False), ShapeError,
     "Expected running_mean and running_var to be defined when use_input_stats is false"),
    (lambda: instance_norm(X, R3, None), ShapeError,
     "running_mean and running_var must either both be None or neither be None"),
    (lambda: instance_norm(X, np.zeros(4, np.float32), np.ones(4, np.float32)), ShapeError,
     "running_mean should contain 6 elements not 8"),
    (lambda: instance_norm(X, None, None, np.ones(4, np.float32)), ShapeError,
     "weight should contain 6 elements not 8"),
    (lambda: instance_norm(X, None, None, None, np.ones(4, np.float32)), ShapeError,
     "bias should contain 6 elements not 8"),
    (lambda: instance_norm(X, None, None, np.ones(3, np.float64)), TypeError,
     "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    (lambda: instance_norm(X, use_input_stats=None), TypeError,
     "instance_norm(): argument 'use_input_stats' (position 6) must be bool, not NoneType"),
    (lambda: instance_norm(X, momentum=None), TypeError,
     "instance_norm(): argument 'momentum' (position 7) must be float, not NoneType"),
    # group_norm
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 4), ShapeError,
     "Expected number of channels in input to be divisible by num_groups, but got input of shape [2, 6, 4] and "
     "num_groups=4"),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 0), ZeroDivisionError, "integer division or modulo by zero"),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), -2), ShapeError,
     "Expected num groups to be greater than 0, got -2"),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 3, np.ones(5, np.float32)), ShapeError,
     "Expected weight to be a vector of size equal to the number of channels in input, but got weight of shape [5] "
     "and input of shape [2, 6, 4]"),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 3, np.ones((1, 6), np.float32)), ShapeError,
     "Expected weight to be a vector of size equal to the number of channels in input, but got weight of shape "
     "[1, 6] and input of shape [2, 6, 4]"),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 3, None, np.ones(5, np.float32)), ShapeError,
     "Expected bias to be a vector of size equal to the number of channels in input, but got bias of shape [0] "
     "and input of shape [2, 6, 4]"),
    (lambda: group_norm(np.zeros(6, np.float32), 3), ShapeError,
     "Expected at least 2 dimensions for input tensor but received 1"),
    (lambda: group_norm(np.zeros((1, 6), np.float32), 6), ShapeError,
     "Expected more than 1 value per channel when training, got input size [1, 6]"),
    (lambda: group_norm(np.zeros((2, 6), np.float32), 3.0), TypeError,
     "group_norm(): argument 'num_groups' (position 2) must be int, not float"),
    (lambda: group_norm(np.zeros((2, 6), np.float32), True), TypeError,
     "group_norm(): argument 'num_groups' (position 2) must be int, not bool"),
    (lambda: group_norm(np.zeros((2, 6), np.float32), 3, eps="a"), TypeError,
     "group_norm(): argument 'eps' (position 5) must be float, not str"),
    (lambda: group_norm(np.zeros((2, 6), np.float64), 3, np.ones(6, np.float32)), TypeError,
     "mixed dtype (CPU): all inputs must share same datatype."),
    # layer_norm
    (lambda: layer_norm(np.zeros((2, 4), np.float32), [5]), ShapeError,
     "Given normalized_shape=[5], expected input with shape [*, 5], but got input of size[2, 4]"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (2, 5)), ShapeError,
     "Given normalized_shape=[2, 5], expected input with shape [*, 2, 5], but got input of size[2, 4]"),
    (lambda: layer_norm(np.zeros(4, np.float32), (2, 4)), ShapeError,
     "Given normalized_shape=[2, 4], expected input with shape [*, 2, 4], but got input of size[4]"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), ()), ShapeError,
     "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, but got "
     "normalized_shape = []"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (4,), np.ones(5, np.float32)), ShapeError,
     "Expected weight to be of same shape as normalized_shape, but got weight of shape [5] and normalized_shape = [4]"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (4,), None, np.ones((1, 4), np.float32)), ShapeError,
     "Expected bias to be of same shape as normalized_shape, but got bias of shape [1, 4] and normalized_shape = [4]"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (4.0,)), TypeError,
     "layer_norm(): argument 'normalized_shape' (position 2) must be tuple of ints, but found element of type "
     "float at pos 0"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), "ab"), TypeError,
     "layer_norm(): argument 'normalized_shape' (position 2) must be tuple of ints, not str"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (4,), np.ones(4, np.float64)), TypeError,
     "mixed dtype (CPU): expect parameter to have scalar type of Float"),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), (4,), eps="a"), TypeError,
     "layer_norm(): argument 'eps' (position 5) must be float, not str"),
    (lambda: layer_norm(np.zeros((2, 4), np.float16), (4,)), TypeError, "unsupported dtype float16"),
]


@pytest.mark.single_isa
@pytest.mark.parametrize("call,error,message", ERROR_CASES, ids=[c[2][:60] for c in ERROR_CASES])
def test_errors(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


TORCH_ERROR_TWINS = [
    (lambda: batch_norm(np.zeros((1, 3), np.float32), R3, R3 + 1, training=True),
     lambda: F.batch_norm(torch.zeros(1, 3), torch.zeros(3), torch.ones(3), training=True)),
    (lambda: batch_norm(X, np.zeros(4, np.float32), R3),
     lambda: F.batch_norm(torch.zeros(2, 3, 4), torch.zeros(4), torch.zeros(3))),
    (lambda: instance_norm(X, None, None, np.ones(4, np.float32)),
     lambda: F.instance_norm(torch.zeros(2, 3, 4), None, None, torch.ones(4))),
    (lambda: group_norm(np.zeros((2, 6, 4), np.float32), 3, None, np.ones(5, np.float32)),
     lambda: F.group_norm(torch.zeros(2, 6, 4), 3, None, torch.ones(5))),
    (lambda: layer_norm(np.zeros((2, 4), np.float32), [5]), lambda: F.layer_norm(torch.zeros(2, 4), [5])),
]


@pytest.mark.single_isa
@pytest.mark.parametrize("ours,theirs", TORCH_ERROR_TWINS)
def test_error_text_is_torchs(ours, theirs):
    with pytest.raises(Exception) as info:
        ours()
    assert torch_message(theirs) in str(info.value)
    assert isinstance(info.value, (ValueError, RuntimeError))


@pytest.mark.single_isa
def test_read_only_running_stats_in_training():
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm.flags.writeable = False
    with pytest.raises(ShapeError, match="read-only"):
        batch_norm(X, rm, rv, training=True)
    batch_norm(X, rm, rv)  # evaluation mode only reads them


# ---- nn modules ------------------------------------------------------------------------------

import tensorops.nn as tnn  # noqa: E402

_MODULES = [
    ("BatchNorm2d", (6,), {}),
    ("BatchNorm2d", (6,), {"momentum": None}),
    ("BatchNorm2d", (6,), {"affine": False, "track_running_stats": False}),
    ("BatchNorm2d", (6,), {"bias": False, "eps": 1e-3}),
    ("InstanceNorm2d", (6,), {}),
    ("InstanceNorm2d", (6,), {"affine": True, "track_running_stats": True}),
    ("InstanceNorm2d", (6,), {"affine": True, "momentum": 0.3}),
    ("GroupNorm", (3, 6), {}),
    ("GroupNorm", (2, 6), {"affine": False}),
    ("LayerNorm", ((6, 5, 4),), {}),
    ("LayerNorm", (4,), {"elementwise_affine": False}),
    ("LayerNorm", (4,), {"bias": False}),
]


def _twin(name, args, kwargs):
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(tnn, name)(*args, **kwargs)
    with torch.no_grad():  # non-trivial affine parameters, loaded into ours through state_dict
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape))
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("name,args,kwargs", _MODULES)
def test_norm_modules_track_torch_over_training_steps(name, args, kwargs):
    ours, theirs = _twin(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    for step in range(3):
        x = (rng.standard_normal((4, 6, 5, 4)) * (step + 1) + step).astype(np.float32)
        got, want = ours(x), theirs(torch.from_numpy(x))
        assert_close(got, want.detach(), rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(np.asarray(ours.state_dict()[key]), value.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 6, 5, 4)).astype(np.float32)
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach(), rtol=1e-4, atol=1e-5)


def test_batchnorm_module_errors_and_old_checkpoints():
    bn = tnn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        bn(np.zeros((2, 3, 4), np.float32))
    old = {k: v for k, v in torch.nn.BatchNorm2d(3).state_dict().items() if k != "num_batches_tracked"}
    bn.load_state_dict(old)  # a checkpoint from before num_batches_tracked loads with a count of 0
    assert int(bn.num_batches_tracked) == 0
    assert bn.num_batches_tracked.dtype == np.int64


def test_instancenorm_module_unbatched_and_checks():
    ours, theirs = tnn.InstanceNorm2d(3), torch.nn.InstanceNorm2d(3)
    x = np.random.default_rng(1).standard_normal((3, 5, 7)).astype(np.float32)
    assert_close(ours(x), theirs(torch.from_numpy(x)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 5D input\)"):
        ours(np.zeros((1, 3, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features \(3\), but got: 4\."):
        tnn.InstanceNorm2d(3, affine=True)(np.zeros((2, 4, 3, 3), np.float32))
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        ours(np.ones((2, 4, 3, 3), np.float32))


def test_groupnorm_module_checks_divisibility():
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups \(3\)"):
        tnn.GroupNorm(3, 4)


def test_norm_modules_float64():
    theirs = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    ours = tnn.BatchNorm2d(4, dtype=np.float64)
    assert ours.weight.dtype == ours.running_var.dtype == np.float64
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(2).standard_normal((3, 4, 2, 5))
    assert_close(ours(x), theirs(torch.from_numpy(x)).detach())
    assert_close(ours.running_var, theirs.running_var)


def test_scalar_arguments_take_0d_tensors():
    """eps, momentum, num_groups and normalized_shape's sizes may be 0-d tensors, as torch's
    argument parser takes them."""
    x = randn((2, 4, 3, 3), np.float32)
    assert_close(group_norm(x, torch.tensor(2), eps=torch.tensor(1e-5)), F.group_norm(t(x), 2, eps=1e-5), **tol(np.float32))
    assert_close(layer_norm(x, (torch.tensor(3),), eps=np.array(1e-5)), F.layer_norm(t(x), (3,)), **tol(np.float32))
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    trm, trv = torch.zeros(4), torch.ones(4)
    got = batch_norm(x, rm, rv, training=True, momentum=torch.tensor(0.3), eps=torch.tensor(1e-5))
    want = F.batch_norm(t(x), trm, trv, training=True, momentum=0.3, eps=1e-5)
    assert_close(got, want, **tol(np.float32))
    assert_close(rm, trm, **tol(np.float32))
    with pytest.raises(TypeError, match="must be float"):
        batch_norm(x, rm, rv, training=True, eps="1e-5")


@pytest.mark.single_isa
def test_instance_norm_takes_running_statistics_of_the_other_float_dtype():
    """torch's instance norm makes its per-instance copies of the statistics in the input's
    dtype and writes the update back into the caller's arrays, of either float dtype."""
    for x_dtype, stats_dtype in ((np.float64, np.float32), (np.float32, np.float64)):
        x = randn((2, 3, 4), x_dtype, seed=3)
        for use_input_stats in (True, False):
            mean, var = randn((3,), stats_dtype, seed=4), np.abs(randn((3,), stats_dtype, seed=5)) + 0.5
            t_mean, t_var = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
            got = instance_norm(x, mean, var, use_input_stats=use_input_stats)
            want = F.instance_norm(torch.from_numpy(x), t_mean, t_var, use_input_stats=use_input_stats)
            assert_close(got, want)
            assert mean.dtype == stats_dtype
            assert_close(mean, t_mean, rtol=1e-6, atol=1e-7)
            assert_close(var, t_var, rtol=1e-6, atol=1e-7)


@pytest.mark.single_isa
def test_batch_norm_hands_back_an_empty_input_without_statistics():
    for shape in [(0, 3), (0, 3, 4), (2, 3, 0), (2, 0), (0,)]:
        got = batch_norm(np.zeros(shape, np.float32), None, None)
        assert got.shape == tuple(F.batch_norm(torch.zeros(shape), None, None).shape) and got.dtype == np.float32


@pytest.mark.single_isa
def test_out_overlapping_the_input_reads_the_input_first():
    """out= one element past the input in the same buffer: the kernels write out while they
    read the input, so the input is read from a copy (an exact alias stays in place)."""
    rng = np.random.default_rng(11)
    x0 = rng.standard_normal((4, 6, 16)).astype(np.float32)
    calls = {
        "layer_norm": lambda x, out: layer_norm(x, (16,), out=out),
        "batch_norm": lambda x, out: batch_norm(x, np.zeros(6, np.float32), np.ones(6, np.float32), out=out),
        "batch_norm training": lambda x, out: batch_norm(x, None, None, training=True, out=out),
        "instance_norm": lambda x, out: instance_norm(x, out=out),
        "group_norm": lambda x, out: group_norm(x, 3, out=out),
        "dropout": lambda x, out: tops.nn.functional.dropout(x, 0.5, True, out=out),
    }
    for name, call in calls.items():
        for shift in (1, -1):
            buffer = np.empty(x0.size + 1, np.float32)
            x = buffer[max(0, -shift):][:x0.size].reshape(x0.shape)
            out = buffer[max(0, shift):][:x0.size].reshape(x0.shape)
            x[...] = x0
            tops.manual_seed(3)
            got = call(x, out)
            tops.manual_seed(3)
            np.testing.assert_array_equal(got, call(x0.copy(), None), err_msg=name)
        same = x0.copy()
        tops.manual_seed(3)
        assert call(same, same) is same
