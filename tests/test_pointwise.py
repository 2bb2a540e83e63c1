"""Pointwise ops against torch 2.13: values, dtypes, shapes, broadcasting, promotion, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tensorops as tops
import tensorops.nn.functional as F
from reference import DTYPES, ODD_SIZES, assert_close, layouts, randn, special_values

T = torch.from_numpy


def tt(x):
    return torch.from_numpy(np.array(x, order="C"))  # np.ascontiguousarray would make 0-d arrays 1-d


# (tensorops function, torch function, input transform making the domain valid)
UNARY = {
    "neg": (tops.neg, torch.neg, None),
    "abs": (tops.abs, torch.abs, None),
    "sqrt": (tops.sqrt, torch.sqrt, np.abs),
    "rsqrt": (tops.rsqrt, torch.rsqrt, np.abs),
    "exp": (tops.exp, torch.exp, None),
    "log": (tops.log, torch.log, np.abs),
    "sin": (tops.sin, torch.sin, None),
    "cos": (tops.cos, torch.cos, None),
    "tanh": (tops.tanh, torch.tanh, None),
    "sigmoid": (tops.sigmoid, torch.sigmoid, None),
    "erf": (tops.erf, torch.erf, None),
    "floor": (tops.floor, torch.floor, None),
    "ceil": (tops.ceil, torch.ceil, None),
    "round": (tops.round, torch.round, None),
    "sign": (tops.sign, torch.sign, None),
    "reciprocal": (tops.reciprocal, torch.reciprocal, None),
    "square": (tops.square, torch.square, None),
}

ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "relu6": (F.relu6, TF.relu6),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
    "elu": (F.elu, TF.elu),
    "elu_0.5": (lambda x: F.elu(x, alpha=0.5), lambda t: TF.elu(t, alpha=0.5)),
    "selu": (F.selu, TF.selu),
    "celu": (F.celu, TF.celu),
    "celu_2": (lambda x: F.celu(x, 2.0), lambda t: TF.celu(t, 2.0)),
    # torch's float32 erf (hence gelu) is accurate to ~1e-6 absolute only; tensorops' is
    # several times closer to the float64 value, so float32 compares with float64 torch.
    "gelu": (F.gelu, lambda t: TF.gelu(t.double()).to(t.dtype)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda t: TF.gelu(t, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "mish": (F.mish, TF.mish),
    "sigmoid": (F.sigmoid, TF.sigmoid),
    "tanh": (F.tanh, TF.tanh),
    "hardtanh": (F.hardtanh, TF.hardtanh),
    "hardtanh_range": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda t: TF.hardtanh(t, -0.5, 2.0)),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid),
    "hardswish": (F.hardswish, TF.hardswish),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda t: TF.softplus(t, beta=2.0, threshold=3.0)),
    "softsign": (F.softsign, TF.softsign),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid),
}


def unary_input(name, x):
    transform = UNARY[name][2]
    return transform(x) if transform is not None else x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_sizes(name, dtype):
    ours, theirs, _ = UNARY[name]
    for n in ODD_SIZES:
        x = unary_input(name, randn((n,), dtype, seed=n, scale=3.0))
        assert_close(ours(x), theirs(T(x)), signed_zeros=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_layouts_and_special_values(name, dtype):
    ours, theirs, _ = UNARY[name]
    x = unary_input(name, randn((5, 7, 3), dtype, scale=2.0))
    expected = theirs(T(x))
    for layout, v in layouts(x):
        assert_close(ours(v), expected)
    s = special_values(dtype)
    with np.errstate(all="ignore"):
        assert_close(ours(s), theirs(T(s)), rtol=2e-6 if dtype == np.float32 else None, signed_zeros=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(name, dtype):
    ours, theirs = ACTIVATIONS[name]
    for n in (0, 1, 15, 17, 33, 257):
        x = randn((n,), dtype, seed=n, scale=4.0)
        assert_close(ours(x), theirs(T(x)))
    x = randn((4, 6, 5), dtype, scale=4.0)
    expected = theirs(T(x))
    for layout, v in layouts(x):
        assert_close(ours(v), expected)
    # Wide range, including the saturating regions of every activation.
    wide = np.linspace(-120, 120, 4801).astype(dtype)
    assert_close(ours(wide), theirs(T(wide)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_special_values(name, dtype):
    ours, theirs = ACTIVATIONS[name]
    s = special_values(dtype)
    expected = theirs(T(s)).numpy().copy()
    if name == "gelu":
        # torch's vectorised float32 gelu gives NaN at +inf and overflows to inf at float32's
        # max (its scalar path and float64 give x, the mathematical value); tensorops gives x.
        expected[s > 1e30] = s[s > 1e30]
    assert_close(ours(s), expected, signed_zeros=True)


def test_transcendental_accuracy_float32():
    # Dense sweep against the float64 result: within a few float32 ulp, not just torch's rtol.
    x = np.linspace(-10, 10, 200001).astype(np.float32)
    x64 = x.astype(np.float64)
    for ours, ref in [(tops.tanh, torch.tanh), (tops.sigmoid, torch.sigmoid), (tops.exp, torch.exp),
                      (F.silu, TF.silu), (F.elu, TF.elu), (F.mish, TF.mish), (F.softplus, TF.softplus)]:
        expected = ref(T(x64)).numpy()
        np.testing.assert_allclose(ours(x).astype(np.float64), expected, rtol=4e-7, atol=1e-37)
    # gelu = x/2 (1 + erf(x/sqrt 2)) cancels for x << 0 (as torch's formula does): absolute bound.
    np.testing.assert_allclose(F.gelu(x).astype(np.float64), TF.gelu(T(x64)).numpy(), rtol=4e-7, atol=4e-7)
    # erf: relative accuracy near 0 too (torch's float32 erf is only absolutely accurate).
    expected = torch.erf(T(x64)).numpy()
    np.testing.assert_allclose(tops.erf(x).astype(np.float64), expected, rtol=3e-7, atol=1e-37)


def test_sigmoid_saturates_to_exactly_one():
    # Past x = 17 (float32) sigmoid rounds to 1 in torch; a reciprocal estimate refined by one
    # Newton step left 0.99999994 there on AVX2.
    for dtype, first in ((np.float32, 17.0), (np.float64, 37.5)):
        x = np.array([first, 40.0, 88.0, 1e30, np.inf], dtype)
        assert (tops.sigmoid(x) == 1).all() and (F.silu(x) == x).all()
        assert (tops.sigmoid(x) == torch.sigmoid(T(x)).numpy()).all()


def test_sigmoid_underflows_to_zero():
    # Where the result would be subnormal, sigmoid flushes to 0 (torch's float32 gives 0 from
    # x = -90 on); it was held at the smallest normal result (1.2e-38) for every x below.
    for dtype, below in ((np.float32, -87.5), (np.float64, -708.5)):
        x = np.array([below, below - 10, -1e4, -np.inf], dtype)
        assert (tops.sigmoid(x) == 0).all() and (F.silu(x[:3]) == 0).all()
        edge = np.array([below + 1], dtype)
        assert_close(tops.sigmoid(edge), torch.sigmoid(T(edge)))


@pytest.mark.parametrize("decimals", [-2, -1, 1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_decimals(decimals, dtype):
    x = np.array([0.5, 1.5, 2.5, -0.5, 1.2345, 125.0, 135.0, 15.0, -2.675, 1e30, np.nan, np.inf], dtype)
    x = np.concatenate([x, randn((37,), dtype, scale=100.0)])
    assert_close(tops.round(x, decimals=decimals), torch.round(T(x), decimals=decimals), signed_zeros=True)


def test_round_decimals_must_be_int():
    with pytest.raises(TypeError, match="round: decimals must be an int"):
        tops.round(np.ones(3, np.float32), decimals=1.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_zero_dim_and_empty(dtype):
    x = np.array(-0.75, dtype)
    r = tops.exp(x)
    assert r.shape == () and r.dtype == dtype
    assert_close(r, torch.exp(T(x)))
    e = np.empty((3, 0, 2), dtype)
    assert tops.sigmoid(e).shape == (3, 0, 2)
    assert F.gelu(e).dtype == dtype


def test_unary_accepts_torch_tensors_and_lists():
    t = torch.randn(4, 5)
    assert_close(tops.tanh(t), torch.tanh(t))
    t64 = torch.randn(3, dtype=torch.float64).requires_grad_()
    assert_close(F.silu(t64), TF.silu(t64.detach()))
    assert_close(tops.sqrt([1.0, 4.0]), torch.sqrt(torch.tensor([1.0, 4.0], dtype=torch.float64)))


@pytest.mark.single_isa
def test_unary_rejects_integer_input():
    with pytest.raises(TypeError, match=r"exp: .*unsupported dtype int64"):
        tops.exp(np.arange(4))
    with pytest.raises(TypeError, match=r"relu: .*unsupported dtype int32"):
        F.relu(np.arange(4, dtype=np.int32))
    with pytest.raises(TypeError, match=r"sigmoid: .*unsupported dtype float16"):
        tops.sigmoid(np.ones(3, np.float16))


def test_inputs_not_modified():
    x = randn((9, 5), np.float32)
    before = x.copy()
    F.relu(x)
    F.elu(x)
    tops.add(x, x)
    tops.exp(x)
    assert np.array_equal(x, before)


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "silu", "mish",
                                  "hardtanh", "hardsigmoid", "hardswish"])
def test_inplace_writes_into_the_input_as_torch(name):
    base = randn((6, 10), np.float32)
    for layout, x in layouts(base):
        x = x.copy() if layout == "contiguous" else x
        t = torch.from_numpy(base.copy())
        result = getattr(F, name)(x, inplace=True)
        getattr(TF, name)(t, inplace=True)
        assert result is x or np.shares_memory(result, x)
        assert_close(np.ascontiguousarray(x), t)
    tt = torch.from_numpy(base.copy())
    getattr(F, name)(tt, inplace=True)  # a torch tensor is shared zero-copy and updated
    want = getattr(TF, name)(torch.from_numpy(base.copy()))
    assert_close(tt.numpy(), want)


def test_inplace_refusals():
    ro = randn((4,), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="relu: inplace=True needs a writeable input, but the input array is read-only"):
        F.relu(ro, inplace=True)
    with pytest.raises(TypeError, match="relu: inplace=True and out= cannot be combined"):
        F.relu(randn((4,), np.float32), inplace=True, out=np.empty(4, np.float32))


# ---- binary --------------------------------------------------------------------------------------

BINARY = {
    "add": (tops.add, torch.add),
    "add_alpha": (lambda a, b, **kw: tops.add(a, b, alpha=0.5, **kw), lambda a, b: torch.add(a, b, alpha=0.5)),
    "sub": (tops.sub, torch.sub),
    "sub_alpha": (lambda a, b, **kw: tops.sub(a, b, alpha=2, **kw), lambda a, b: torch.sub(a, b, alpha=2)),
    "mul": (tops.mul, torch.mul),
    "div": (tops.div, torch.div),
    "div_trunc": (lambda a, b, **kw: tops.div(a, b, rounding_mode="trunc", **kw),
                  lambda a, b: torch.div(a, b, rounding_mode="trunc")),
    "div_floor": (lambda a, b, **kw: tops.div(a, b, rounding_mode="floor", **kw),
                  lambda a, b: torch.div(a, b, rounding_mode="floor")),
    "pow": (tops.pow, torch.pow),
    "maximum": (tops.maximum, torch.maximum),
    "minimum": (tops.minimum, torch.minimum),
}

BROADCAST_PAIRS = [
    ((7,), (7,)),
    ((5, 7), (7,)),
    ((5, 1), (1, 7)),
    ((3, 1, 17), (4, 17)),
    ((2, 3, 4, 5), (3, 1, 1)),
    ((4, 33, 2, 2), (33, 1, 1)),
    ((), (6,)),
    ((5, 3), ()),
    ((0, 3), (3,)),
    ((2, 0, 4), (1, 1, 4)),
    ((1,), (0,)),
]


def binary_inputs(name, sa, sb, dtype):
    a = np.asarray(randn(sa, dtype, seed=1, scale=3.0))
    b = np.asarray(randn(sb, dtype, seed=2, scale=3.0))
    if name == "pow":
        a = np.asarray(np.abs(a) + dtype(0.1), dtype)
    if name.startswith("div"):
        b = np.where(np.abs(b) < 0.1, dtype(0.5), b).astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcasting(name, dtype):
    ours, theirs = BINARY[name]
    for sa, sb in BROADCAST_PAIRS:
        a, b = binary_inputs(name, sa, sb, dtype)
        assert_close(ours(a, b), theirs(tt(a), tt(b)))
        assert_close(ours(b, a), theirs(tt(b), tt(a)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_sizes_and_layouts(name, dtype):
    ours, theirs = BINARY[name]
    for n in ODD_SIZES:
        a, b = binary_inputs(name, (n,), (n,), dtype)
        assert_close(ours(a, b), theirs(T(a), T(b)))
    a, b = binary_inputs(name, (6, 5, 9), (6, 5, 9), dtype)
    expected = theirs(T(a), T(b))
    for (la, va), (lb, vb) in zip(layouts(a), list(layouts(b))[::-1]):
        assert_close(ours(va, vb), expected)
        assert_close(ours(va, b), expected)
    # A strided operand broadcast along a dim (gather path with a scalar partner).
    c = binary_inputs(name, (6, 1, 9), (6, 1, 9), dtype)[1]
    for lc, vc in layouts(c):
        assert_close(ours(a, vc), theirs(T(a), T(c)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_special_values(name, dtype):
    ours, theirs = BINARY[name]
    s = special_values(dtype)
    a = np.repeat(s, len(s))
    b = np.tile(s, len(s))
    with np.errstate(all="ignore"):
        assert_close(ours(a, b), theirs(T(a), T(b)), rtol=2e-6 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_python_scalars(name, dtype):
    ours, theirs = BINARY[name]
    a = np.abs(randn((4, 9), dtype, scale=3.0)) + dtype(0.5)
    for s in (2.5, 3, 0.5, -1.0, 2.0, True):
        if (name == "pow" and s == -1.0) or (name.startswith("sub") and s is True):
            continue
        # torch.maximum takes no Python numbers: compare with a 0-d tensor of a's dtype.
        number = torch.tensor(s, dtype=T(a).dtype) if name in ("maximum", "minimum") else s
        assert_close(ours(a, s), theirs(T(a), number))
        assert_close(ours(s, a), theirs(torch.tensor(s, dtype=T(a).dtype), T(a)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_with_exponents_the_dtype_cannot_hold(dtype):
    """torch applies a Python exponent in double: 16777217 is odd, 1e10 + 0.5 no integer,
    though float32 would round both to even integers (flipping a negative base's sign or NaN)."""
    base = np.array([-1.0, -1.0000001, -2.0, 0.5, 3.0, -0.5, 0.0, -0.0, np.inf, -np.inf, np.nan], dtype)
    for e in (16777217, -16777217, 2**31 + 1, 1e10 + 1, 1e10 + 0.5, 2.0**50 + 2**24 + 1, 2.0**52 + 1, 3.4e38, 1e39,
              1e300, float("inf"),
              float("-inf"), float("nan"), 2.5, -3):
        with np.errstate(all="ignore"):
            assert_close(tops.pow(base, e), torch.pow(T(base), e), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_short_rows_repeated_along_outer_dims(name, dtype):
    """An operand that repeats a short row (up to 256 elements) along every outer dim, against
    one contiguous across the last two dims, is tiled into runs of up to 2048 elements: rows
    of 1, 3, 8, 255, 256 (and 257, past the bound), a repeated row reversed or strided, the
    big operand as either argument, an output of 2 MiB and more on 1 and 2 threads."""
    ours, theirs = BINARY[name]
    for rows, width in [(7, 3), (70001, 8), (1000, 255), (33, 256), (33, 257), (5, 1)]:
        a, b = binary_inputs(name, (rows, width), (width,), dtype)
        a3 = a.reshape(rows, 1, width) if rows % 7 else a.reshape(rows // 7, 7, width)
        for row in (b, b[::-1].copy()[::-1], np.repeat(b, 2)[::2]):
            assert_close(ours(a, row), theirs(tt(a), tt(row)))
            assert_close(ours(row, a3), theirs(tt(row), tt(a3)))
        before = tops.get_num_threads()
        tops.set_num_threads(2)
        try:
            np.testing.assert_array_equal(ours(a, b), ours(a, b.copy()))
        finally:
            tops.set_num_threads(before)


def test_broadcast_large_inner_pattern_matches_torch():
    a = randn((2, 16, 23, 29), np.float32)
    b = randn((16, 1, 1), np.float32, seed=3)
    assert_close(tops.add(a, b), torch.add(T(a), T(b)))
    assert_close(tops.mul(b, a), torch.mul(T(b), T(a)))


# ---- type promotion -----------------------------------------------------------------------------

def _torch_operand(v):
    return tt(v) if isinstance(v, np.ndarray) else v


PROMOTION_OPERANDS = [
    np.ones(3, np.float32), np.ones(3, np.float64), np.ones(3, np.int32), np.ones(3, np.int64), np.ones(3, np.bool_),
    np.array(2.0, np.float32), np.array(2.0, np.float64), np.array(2, np.int64), 2.5, 2, True,
]


@pytest.mark.single_isa
@pytest.mark.parametrize("i", range(len(PROMOTION_OPERANDS)))
@pytest.mark.parametrize("j", range(len(PROMOTION_OPERANDS)))
def test_type_promotion_table(i, j):
    a, b = PROMOTION_OPERANDS[i], PROMOTION_OPERANDS[j]
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        with pytest.raises(TypeError, match="mul: expected at least one array argument"):
            tops.mul(a, b)
        return
    expected = torch.mul(_torch_operand(a), _torch_operand(b))
    if expected.dtype not in (torch.float32, torch.float64):
        with pytest.raises(TypeError, match=f"mul: unsupported dtype {np.dtype(str(expected.dtype)[6:])}"):
            tops.mul(a, b)
        return
    assert_close(tops.mul(a, b), expected)


@pytest.mark.single_isa
def test_promotion_examples():
    f32 = np.ones(3, np.float32)
    assert tops.add(f32, 1.5).dtype == np.float32
    assert tops.add(f32, np.ones(3)).dtype == np.float64
    assert tops.add(f32, np.array(1.0)).dtype == np.float32  # 0-d arrays rank below arrays
    assert tops.add(np.ones(3, np.int32), np.array(1.0)).dtype == np.float64
    assert tops.add(np.arange(3), 1.5).dtype == np.float32
    assert tops.add(torch.ones(3, dtype=torch.float64), f32).dtype == np.float64
    with pytest.raises(TypeError, match="add: unsupported dtype int64"):
        tops.add(np.arange(3), 1)
    with pytest.raises(TypeError, match="add: unsupported dtype float16"):
        tops.add(np.ones(3, np.float16), 1.0)
    with pytest.raises(TypeError, match="Subtraction, the `-` operator, with two bool tensors is not supported"):
        tops.sub(np.ones(3, np.bool_), np.ones(3, np.bool_))
    with pytest.raises(TypeError, match="Subtraction, the `-` operator, with a bool tensor is not supported"):
        tops.sub(f32, True)


# ---- where, clamp, prelu ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_where(dtype):
    for sc, sa, sb in [((7,), (7,), (7,)), ((5, 1), (1, 7), (7,)), ((3, 4), (), (4,)), ((0, 2), (2,), (1,)),
                       ((2, 3, 5), (3, 1), (2, 1, 5))]:
        cond = np.asarray(randn(sc, np.float32, seed=5) > 0)
        a = np.asarray(randn(sa, dtype, seed=6))
        b = np.asarray(randn(sb, dtype, seed=7))
        expected = torch.where(tt(cond), tt(a), tt(b))
        assert_close(tops.where(cond, a, b), expected)
        if a.ndim:  # reference.layouts() cannot view a 0-d array
            for (_, vc), (_, va) in zip(layouts(cond), layouts(a)):
                assert_close(tops.where(vc, va, b), expected)
    cond = np.array([True, False, True])
    x = np.arange(3, dtype=dtype)
    assert_close(tops.where(cond, x, 1.5), torch.where(T(cond), T(x), 1.5))
    assert_close(tops.where(cond, 1.0, 2.0), torch.where(T(cond), 1.0, 2.0))
    assert_close(tops.where(cond, x, np.ones(3, np.float32)), torch.where(T(cond), T(x), torch.ones(3)))
    s = special_values(dtype)
    c = np.arange(len(s)) % 2 == 0
    assert_close(tops.where(c, s, s[::-1]), torch.where(T(c), T(s), T(s[::-1].copy())))


@pytest.mark.single_isa
def test_where_errors():
    with pytest.raises(TypeError, match="where expected condition to be a boolean tensor, but got a tensor with dtype float32"):
        tops.where(np.ones(2, np.float32), np.ones(2), np.ones(2))
    with pytest.raises(tops.ShapeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1"):
        tops.where(np.ones((2, 3), bool), np.ones((2, 4)), np.ones(3))
    with pytest.raises(TypeError, match="where: unsupported dtype int64"):
        tops.where(np.ones(2, bool), np.arange(2), 1)


@pytest.mark.single_isa
def test_where_with_the_condition_alone_gives_indices_as_torch():
    rng = np.random.default_rng(3)
    cases = [np.array(True), np.array(0.0), np.zeros((0, 3)), np.array([1, 0, 3]), np.array([np.nan, 0.0, -0.0]),
             rng.standard_normal((4, 5, 3)) > 0.3, (rng.standard_normal((6, 7)) > 0)[::-1, ::2]]
    for cond in cases:
        got, want = tops.where(cond), torch.where(torch.from_numpy(np.ascontiguousarray(cond)))
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == np.int64
            np.testing.assert_array_equal(g, w.numpy())
    with pytest.raises(TypeError, match="a condition alone, or a condition, input and other"):
        tops.where(np.ones(2, bool), np.ones(2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp(dtype):
    x = randn((6, 11), dtype, scale=2.0)
    for kw in [dict(min=-0.5), dict(max=0.25), dict(min=-0.5, max=0.5), dict(min=1.0, max=-1.0), dict(min=float("nan"))]:
        assert_close(tops.clamp(x, **kw), torch.clamp(T(x), **kw))
    lo = randn((11,), dtype, seed=3) - 1
    hi = randn((6, 1), dtype, seed=4) + 1
    assert_close(tops.clamp(x, lo, hi), torch.clamp(T(x), T(lo), T(hi)))
    assert_close(tops.clamp(x, min=lo), torch.clamp(T(x), min=T(lo)))
    assert_close(tops.clamp(x, max=hi), torch.clamp(T(x), max=T(hi)))
    assert_close(tops.clamp(x, lo, 0.5), torch.clamp(T(x), T(lo), torch.tensor(0.5, dtype=T(x).dtype)))
    for _, v in layouts(x):
        assert_close(tops.clamp(v, lo, hi), torch.clamp(T(x), T(lo), T(hi)))
        assert_close(tops.clamp(v, min=0.0), torch.clamp(T(x), min=0.0))
    s = special_values(dtype)
    assert_close(tops.clamp(s, -1.0, 1.0), torch.clamp(T(s), -1.0, 1.0))
    bound = s[::-1].copy()
    assert_close(tops.clamp(s, min=bound), torch.clamp(T(s), min=T(bound)))


@pytest.mark.single_isa
def test_clamp_dtypes_and_errors():
    f32 = np.ones(3, np.float32)
    assert tops.clamp(f32, min=np.ones(3)).dtype == np.float64
    assert tops.clamp(f32, min=np.array(1.0)).dtype == np.float32
    assert tops.clamp(np.arange(3), min=0.5).dtype == np.float32
    with pytest.raises(tops.ShapeError, match="torch.clamp: At least one of 'min' or 'max' must not be None"):
        tops.clamp(f32)
    with pytest.raises(TypeError, match="clamp: unsupported dtype int64"):
        tops.clamp(np.arange(3), min=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu(dtype):
    for shape in [(2, 3, 4, 5), (2, 3), (5, 3, 7), (3,), (), (2, 0)]:
        x = np.asarray(randn(shape, dtype, scale=2.0))
        channels = shape[1] if len(shape) >= 2 else 1
        for w in (randn((channels,), dtype, seed=9), np.array([0.25], dtype), np.array(0.1, dtype)):
            assert_close(F.prelu(x, w), TF.prelu(tt(x), tt(w)))
    x = randn((2, 5, 3, 3), dtype)
    w = randn((5,), dtype, seed=2)
    for _, v in layouts(x):
        assert_close(tops.prelu(v, w), TF.prelu(T(x), T(w)))
    s = special_values(dtype)
    assert_close(F.prelu(s, np.array([0.3], dtype)), TF.prelu(T(s), torch.tensor([0.3], dtype=T(s).dtype)))


@pytest.mark.single_isa
def test_prelu_errors():
    with pytest.raises(tops.ShapeError, match=r"Mismatch of parameter numbers and input channel size. Found parameter numbers = 2 and channel size = 3."):
        F.prelu(np.ones((2, 3, 4), np.float32), np.ones(2, np.float32))
    with pytest.raises(tops.ShapeError, match=r"Found parameter numbers = 3 and channel size = 1."):
        F.prelu(np.ones(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(tops.ShapeError, match=r"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"):
        F.prelu(np.ones((3, 4), np.float32), np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="prelu: Type promoting not supported. Got Float and Double"):
        F.prelu(np.ones((2, 3), np.float32), np.ones(3))
    with pytest.raises(TypeError, match="prelu: .*unsupported dtype int64"):
        F.prelu(np.ones((2, 3), np.int64), np.ones(3))


# ---- errors ----------------------------------------------------------------------------------------

@pytest.mark.single_isa
def test_broadcast_errors():
    with pytest.raises(tops.ShapeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1"):
        tops.add(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 2"):
        tops.mul(np.ones((5, 3)), np.ones((4, 1, 4)))
    with pytest.raises(RuntimeError, match=r"tensor a \(2\) must match the size of tensor b \(0\)"):
        tops.sub(np.ones(2), np.ones(0))


@pytest.mark.single_isa
def test_argument_errors():
    x = np.ones(3, np.float32)
    with pytest.raises(tops.ShapeError, match="div expected rounding_mode to be one of None, 'trunc', or 'floor' but found 'round'"):
        tops.div(x, x, rounding_mode="round")
    with pytest.raises(tops.ShapeError, match="approximate argument must be either none or tanh."):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(tops.ShapeError, match="alpha cannot be 0 for CELU"):
        F.celu(x, alpha=0.0)
    with pytest.raises(TypeError, match="add: argument 'other' must be an array-like"):
        tops.add(x, object())
    with pytest.raises(TypeError, match="add: expected at least one array argument"):
        tops.add(1.0, 2.0)
    with pytest.raises(TypeError, match="add: unsupported dtype complex64"):
        tops.add(x, 1j)


# ---- out= -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_out(dtype):
    a = randn((4, 5), dtype)
    b = randn((5,), dtype, seed=1)
    out = np.full((4, 5), 7.0, dtype)
    r = tops.add(a, b, out=out)
    assert r is out
    assert_close(out, torch.add(T(a), T(b)))
    assert tops.exp(a, out=out) is out
    assert_close(out, torch.exp(T(a)))
    assert F.leaky_relu(a, 0.1, out=out) is out
    assert_close(out, TF.leaky_relu(T(a), 0.1))
    assert tops.where(a > 0, a, b, out=out) is out
    assert tops.clamp(a, b, 1.0, out=out) is out
    assert_close(out, torch.clamp(T(a), T(b), torch.tensor(1.0, dtype=T(a).dtype)))
    assert tops.pow(a, 2.0, out=out) is out
    assert_close(out, torch.pow(T(a), 2.0))
    assert tops.round(a, decimals=1, out=out) is out
    assert F.prelu(a, np.array([0.5], dtype), out=out) is out
    assert_close(out, TF.prelu(T(a), torch.tensor([0.5], dtype=T(a).dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_aliasing_an_input(dtype):
    a = randn((7, 7), dtype)
    expected = torch.add(T(a), T(a.T.copy()))
    x = a.copy()
    tops.add(x, x.T, out=x)  # overlapping but not element for element: computed from a copy
    assert_close(x, expected)
    y = a.copy()
    tops.mul(y, 2.0, out=y)  # exactly in place
    assert_close(y, T(a) * 2)
    z = a.copy()
    tops.sigmoid(z, out=z)
    assert_close(z, torch.sigmoid(T(a)))


@pytest.mark.single_isa
def test_out_errors():
    a = np.ones((4, 5), np.float32)
    with pytest.raises(tops.ShapeError, match=r"add: out has shape \[4, 4\], expected \[4, 5\]"):
        tops.add(a, a, out=np.empty((4, 4), np.float32))
    with pytest.raises(TypeError, match="exp: out has dtype float64, expected float32"):
        tops.exp(a, out=np.empty((4, 5)))
    with pytest.raises(tops.ShapeError, match="relu: out must be C-contiguous"):
        F.relu(a, out=np.empty((5, 4), np.float32).T)
    with pytest.raises(TypeError, match="mul: out must be a numpy.ndarray"):
        tops.mul(a, a, out=[0.0] * 20)
    ro = np.empty((4, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="where: out is read-only"):
        tops.where(a > 0, a, a, out=ro)


# ---- threads and ISAs -----------------------------------------------------------------------------

def test_thread_count_independence():
    x = randn((3, 70001), np.float32, scale=4.0)
    b = randn((3, 1), np.float32, seed=2)
    strided = randn((70001, 6), np.float64)[:, ::2]
    previous = tops.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            tops.set_num_threads(threads)
            results.append([F.gelu(x), tops.sigmoid(x), tops.add(x, b), tops.div(x, b, rounding_mode="floor"),
                            tops.sin(strided), F.mish(strided), tops.clamp(x, b, 1.0)])
    finally:
        tops.set_num_threads(previous)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_large_tensor_chunks_match_torch():
    x = randn((1 << 17) + 3, np.float32, scale=5.0)
    assert_close(F.gelu(x), TF.gelu(T(x).double()).float())
    a = randn((8, 33, 37, 41), np.float32)
    b = randn((33, 1, 1), np.float32, seed=1)
    assert_close(tops.add(a, b), torch.add(T(a), T(b)))
    v = a[:, :, ::-1, 1::2]
    assert_close(tops.mul(v, b), torch.mul(tt(v), T(b)))


def test_misaligned_strides_are_copied():
    rec = np.zeros(10, dtype=[("a", np.int8), ("x", np.float32)])
    rec["x"] = np.arange(10)
    x = rec["x"]
    assert_close(tops.exp(x), torch.exp(tt(x)))
    assert_close(tops.add(x, x), torch.add(tt(x), tt(x)))


@pytest.mark.single_isa
def test_top_level_and_functional_names():
    for name in ["relu", "selu", "celu", "prelu", "sigmoid", "tanh"]:
        assert hasattr(tops, name)
    for name in ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
                 "hardtanh", "hardsigmoid", "hardswish", "softplus", "softsign", "logsigmoid", "prelu"]:
        assert callable(getattr(F, name)) and name in F.__all__


@pytest.mark.parametrize("threads", [1, 2])
def test_streaming_stores_into_large_out(threads):
    # Outputs of 8 MB and more given as out= are written with streaming stores on one thread
    # (16 MB on more: here the cached path), whole cache lines only, by every op, the costly
    # ones (gelu, pow) too; outs offset by 4, 12 and 32 bytes (AVX2's vector: half a line)
    # exercise the ordinary-store head. Same bytes as the cached path.
    before = tops.get_num_threads()
    tops.set_num_threads(threads)
    try:
        check_streamed_outs()
    finally:
        tops.set_num_threads(before)


def check_streamed_outs():
    n = (2 << 20) + 5
    x = randn((n,), np.float32, scale=3.0)
    b = randn((n // 5, 1), np.float32, seed=1)
    a = x[: (n // 5) * 5].reshape(n // 5, 5)
    for offset in (0, 1, 3, 8):
        buffer = np.empty(n + offset, np.float32)
        out = buffer[offset:]
        assert F.gelu(x, out=out) is out
        assert out.tobytes() == F.gelu(x[:1000]).tobytes() + F.gelu(x[1000:]).tobytes()
        out2 = np.empty(a.size + offset, np.float32)[offset:].reshape(a.shape)
        tops.add(a, b, out=out2)
        assert out2.tobytes() == tops.add(a, b).tobytes()
        out3 = np.empty(a.size + offset, np.float32)[offset:].reshape(a.shape)
        assert tops.pow(np.abs(a) + 0.5, b, out=out3) is out3
        assert out3.tobytes() == tops.pow(np.abs(a[:1000]) + 0.5, b[:1000]).tobytes() + \
            tops.pow(np.abs(a[1000:]) + 0.5, b[1000:]).tobytes()
    assert_close(tops.sigmoid(x, out=np.empty(n, np.float32)), torch.sigmoid(T(x)))


def test_signed_zero_ties_follow_torch():
    # On a tie between -0 and +0 torch.maximum / minimum / clamp keep their first operand.
    a = np.array([-0.0, 0.0, -0.0, 0.0, 1.0, np.nan], np.float32)
    b = np.array([0.0, -0.0, -0.0, 0.0, -0.0, 0.0], np.float32)
    for ours, theirs in [(tops.maximum, torch.maximum), (tops.minimum, torch.minimum)]:
        assert_close(ours(a, b), theirs(T(a), T(b)), signed_zeros=True)
        assert_close(ours(b, a), theirs(T(b), T(a)), signed_zeros=True)
    assert_close(tops.clamp(a, 0.0, 6.0), torch.clamp(T(a), 0.0, 6.0), signed_zeros=True)
    assert_close(tops.clamp(a, -0.0, 0.0), torch.clamp(T(a), -0.0, 0.0), signed_zeros=True)
    assert_close(F.relu6(a), TF.relu6(T(a)), signed_zeros=True)
    assert_close(F.hardtanh(a, 0.0, 1.0), TF.hardtanh(T(a), 0.0, 1.0), signed_zeros=True)


# ---- edges found by fuzzing against torch ----------------------------------------------------

def test_true_division_of_integers_is_float32():
    """torch divides integer and bool tensors in its default dtype, float32 (a float64
    operand or 0-d array keeps float64); rounded division of integers stays integer, which
    tensorops does not compute."""
    cases = [(np.arange(5), 2), (np.arange(5), np.arange(1, 6)), (np.array([True, False]), 2.5),
             (np.arange(3, dtype=np.int32), np.float64(2.0)), (np.arange(3), np.array(2.0)),
             (7, np.arange(1, 4, dtype=np.int16))]
    for a, b in cases:
        want = torch.div(torch.as_tensor(a), torch.as_tensor(b) if isinstance(b, np.ndarray) else b)
        got = tops.div(a, b)
        assert got.dtype == np.dtype(str(want.dtype).split(".")[1])
        assert_close(got, want.numpy())
    with pytest.raises(TypeError, match="div: unsupported dtype int64"):
        tops.div(np.arange(3), 2, rounding_mode="floor")


def test_broadcast_error_names_the_last_mismatched_dim():
    """torch compares shapes from the last dim and reports the first mismatch it meets."""
    with pytest.raises(tops.ShapeError) as ours:
        tops.add(np.zeros((2, 3, 4)), np.zeros((2, 3)))
    with pytest.raises(RuntimeError) as theirs:
        torch.add(torch.zeros(2, 3, 4), torch.zeros(2, 3))
    assert str(ours.value) == "add: " + str(theirs.value)


def test_number_arguments_refuse_strings_and_none():
    """A string, None or a sequence where a number goes is a TypeError (torch's), not a value
    NumPy would parse; a 0-d tensor is a number."""
    x = randn((3, 4), np.float32, 11)
    calls = [lambda: tops.add(x, "2"), lambda: tops.mul(x, "a"), lambda: tops.maximum(x, "1"),
             lambda: tops.clamp(x, "a"), lambda: tops.where(x > 0, x, "1"), lambda: F.leaky_relu(x, "a"),
             lambda: F.elu(x, None), lambda: F.celu(x, "1"), lambda: F.softplus(x, "2"),
             lambda: F.hardtanh(x, "a", 1.0), lambda: tops.add(x, x, alpha=None), lambda: tops.sub(x, x, alpha="1"),
             lambda: F.gelu(x, approximate=None), lambda: tops.div(x, x, rounding_mode=1)]
    for call in calls:
        with pytest.raises(TypeError):
            call()
    assert_close(F.leaky_relu(x, torch.tensor(0.2)), TF.leaky_relu(T(x), 0.2))
    assert_close(tops.add(x, x, alpha=np.array(2.0)), torch.add(T(x), T(x), alpha=2.0))


@pytest.mark.single_isa
def test_argument_kinds_torch_refuses():
    """A bool alpha, an int64-overflowing or bool decimals and a positional approximate."""
    x = np.ones(3, np.float32)
    t = torch.from_numpy(x)
    for ours, theirs in ((lambda: tops.add(x, x, alpha=True), lambda: torch.add(t, t, alpha=True)),
                         (lambda: tops.sub(x, x, alpha=True), lambda: torch.sub(t, t, alpha=True))):
        with pytest.raises(RuntimeError) as want:
            theirs()
        with pytest.raises(tops.ShapeError) as got:
            ours()
        assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="^Overflow when unpacking long long$"):
        tops.round(x, decimals=2**63)
    with pytest.raises(TypeError, match="decimals must be an int, got bool"):
        tops.round(x, decimals=True)
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        tops.nn.functional.gelu(x, "tanh")
    assert_close(tops.add(x, x, alpha=2), torch.add(t, t, alpha=2))
