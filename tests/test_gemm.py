import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tensorops as tops
from reference import DTYPES, assert_close, is_torch_message, layouts, randn

T = torch.from_numpy

# Tile edges of every ISA (MR x NR: avx512 14x32 / 14x16, avx2 and generic 6x16 / 6x8 / 6x4),
# the KC = 256 and MC = 120/140 block edges, primes and the degenerate sizes.
SHAPES = [(0, 5, 3), (4, 0, 3), (3, 4, 0), (1, 1, 1), (1, 7, 5), (7, 1, 5), (13, 31, 17), (14, 32, 16),
          (15, 33, 9), (29, 65, 31), (6, 16, 8), (5, 15, 7), (13, 17, 3), (33, 40, 257), (141, 97, 300),
          (37, 260, 11), (33, 70, 400), (40, 530, 50), (570, 40, 20)]


def tol(dtype, k):
    """Tolerances that grow with the reduction length K."""
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6 + 4e-7 * k)
    return dict(rtol=1e-12, atol=1e-14 + 1e-15 * k)


@pytest.fixture
def threads():
    before = tops.get_num_threads()
    yield
    tops.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_mm_sizes(dtype, m, n, k):
    a, b = randn((m, k), dtype, 1), randn((k, n), dtype, 2)
    assert_close(tops.mm(a, b), torch.mm(T(a), T(b)), **tol(dtype, k))


@pytest.mark.parametrize("dtype", DTYPES)
def test_right_edge_panels(dtype):
    """Every width of the right-edge panel of the blocked path (N = 1 .. 2 NR + 1 for NR up to
    32): edges of at most NR / 2 columns go through the half-width microkernel, wider ones
    through the full one; B read in place (one K block, its partial last panel packed once)
    and packed (two K blocks, the edge accumulating), with a row bias and with an
    activation."""
    m = 41
    for k in (70, 500):
        a = randn((m, k), dtype, k)
        for n in range(1, 66):
            b, bias = randn((k, n), dtype, n), randn((n,), dtype, n + 100)
            assert_close(tops.mm(a, b), torch.mm(T(a), T(b)), **tol(dtype, k))
            if n % 8 == 1:
                want = TF.gelu(TF.linear(T(a), T(np.ascontiguousarray(b.T)), T(bias)))
                got = tops.nn.functional.linear(a, np.ascontiguousarray(b.T), bias, activation="gelu")
                assert_close(got, want, **tol(dtype, k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 3, 8, 17, 32, 33, 70])
def test_small_and_large_m_every_b_layout(dtype, m):
    # Row-major B (streamed in place), transposed B (dot products) and a strided B.
    k, n = 45, 70
    a = randn((m, k), dtype, 3)
    b = randn((k, n), dtype, 4)
    expected = torch.mm(T(a), T(b))
    for _, bv in layouts(b):
        assert_close(tops.mm(a, bv), expected, **tol(dtype, k))
    assert_close(tops.mm(a, np.ascontiguousarray(b.T).T), expected, **tol(dtype, k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 40), (1, 100, 4100), (5, 33, 97), (14, 65, 33), (15, 31, 200),
                                   (32, 70, 2100), (30, 16, 2050), (3, 37, 1024), (8, 21, 2048),
                                   (9, 40, 1024), (16, 33, 3072)])
def test_small_m_row_major_b_in_k_blocks(dtype, m, k, n, assumed_l2):
    # A row-major B is swept a block of K rows at a time (8, 16 or 32) across column chunks of
    # 65536 / M elements: K on both sides of a block, N past a chunk and off the panel width,
    # rows a multiple of 4 KiB apart (fewer rows per block on AVX2; from M = 9, where a core's
    # L2 is small, such a B is packed by the blocked path instead).
    a, b = randn((m, k), dtype, 50), randn((k, n), dtype, 51)
    bias = randn((n,), dtype, 52)
    assert_close(tops.mm(a, b), torch.mm(T(a), T(b)), **tol(dtype, k))
    assert_close(tops.addmm(bias, a, b, beta=0.5, alpha=2.0), torch.addmm(T(bias), T(a), T(b), beta=0.5, alpha=2.0),
                 **tol(dtype, k))


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocked_column_blocks_any_l2(dtype, threads):
    # The blocked path cuts N into blocks of NC columns (twice as wide where L2 is under
    # 2 MiB): N past 512 and 1024 and off the panel width, K past one KC block, a
    # transposed A, the addmm epilogue. Block widths never change what an element computes,
    # so every L2 size and thread count gives the same bits.
    from reference import L2_SIZES, assumed_l2_cache_bytes
    m, k, n = 45, 400, 1093
    a, b = randn((k, m), dtype, 90).T, randn((k, n), dtype, 91)
    bias = randn((n,), dtype, 92)
    want = torch.addmm(T(bias), T(np.ascontiguousarray(a)), T(b), beta=0.5, alpha=2.0)
    results = []
    for l2 in L2_SIZES.values():
        with assumed_l2_cache_bytes(l2):
            for count in (1, 2):
                tops.set_num_threads(count)
                results.append(tops.addmm(bias, a, b, beta=0.5, alpha=2.0))
    assert_close(results[0], want, **tol(dtype, k))
    assert all(r.tobytes() == results[0].tobytes() for r in results[1:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_sweeps_row_major_b(dtype, threads):
    """One row of A against a row-major B read in place: each block of up to 8 rows of B is
    swept across the columns in one call (sweep_row). K on both sides of 8 (every block
    height), N off every vector width (partial loads at the end of a row) and past the
    65536-column chunk, a strided A row and B rows, the addmm epilogue, NaN and infinities,
    and the same bits for any thread count."""
    for i, (k, n) in enumerate([(1, 1), (3, 5), (8, 16), (9, 33), (17, 100), (23, 4103), (768, 3072), (4, 65543)]):
        a, b = randn((1, k), dtype, 60 + i), randn((k, n), dtype, 80 + i)
        if i % 3 == 1:
            a[0, k // 2], b[k - 1, n // 2] = np.nan, -np.inf
        want = torch.mm(T(a), T(b))
        got = tops.mm(a, b)
        assert_close(got, want, **tol(dtype, k))
        assert_close(tops.mm(a[:, ::-1], b[::-1]), want, **tol(dtype, k))
        wide = np.zeros((2 * k, n + 3), dtype)
        wide[::2, 1:n + 1] = b
        assert_close(tops.mm(a, wide[::2, 1:n + 1]), want, **tol(dtype, k))
        bias = randn((n,), dtype, 99)
        assert_close(tops.addmm(bias, a, b, beta=0.5, alpha=2.0),
                     torch.addmm(T(bias), T(a), T(b), beta=0.5, alpha=2.0), **tol(dtype, k))
        for t in (1, 2, 3):
            tops.set_num_threads(t)
            np.testing.assert_array_equal(tops.mm(a, b), got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mm_layouts(dtype):
    a, b = randn((19, 23), dtype, 5), randn((23, 37), dtype, 6)
    expected = torch.mm(T(a), T(b))
    for name_a, av in layouts(a):
        for name_b, bv in layouts(b):
            assert_close(tops.mm(av, bv), expected, **tol(dtype, 23)), (name_a, name_b)


def test_mm_special_values():
    a = randn((5, 4), np.float32, 7)
    b = randn((4, 6), np.float32, 8)
    a[1, 2] = np.nan
    b[3, 4] = np.inf
    assert_close(tops.mm(a, b), torch.mm(T(a), T(b)), rtol=1e-5, atol=1e-5)


def test_mm_torch_tensors_and_lists():
    a, b = torch.randn(4, 5), torch.randn(5, 3)
    assert_close(tops.mm(a, b), torch.mm(a, b), rtol=1e-5, atol=1e-5)
    assert_close(tops.mm([[1.0, 2.0]], [[3.0], [4.0]]), torch.tensor([[11.0]], dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bmm(dtype):
    a, b = randn((5, 17, 9), dtype, 9), randn((5, 9, 33), dtype, 10)
    assert_close(tops.bmm(a, b), torch.bmm(T(a), T(b)), **tol(dtype, 9))
    # Transposed and sliced batches, read through their strides.
    at = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)
    assert_close(tops.bmm(at, b[:, :, ::-1]), torch.bmm(T(a), T(np.ascontiguousarray(b[:, :, ::-1]))), **tol(dtype, 9))
    assert_close(tops.bmm(a[:0], b[:0]), torch.bmm(T(a[:0]), T(b[:0])))


MATMUL_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)), ((2, 3, 4), (4,)),
                 ((4,), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (5, 4, 6)), ((1, 3, 4), (7, 4, 2)), ((2, 1, 1, 3, 4), (3, 1, 4, 2)),
                 ((0, 3, 4), (4, 5)), ((2, 3, 0), (2, 0, 5)), ((40, 33), (33,)), ((3, 2, 5, 4), (4,))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_ranks(dtype, sa, sb):
    a, b = randn(sa, dtype, 11), randn(sb, dtype, 12)
    assert_close(tops.matmul(a, b), torch.matmul(T(a), T(b)), **tol(dtype, sa[-1]))


def test_matmul_unfoldable_batch():
    # The batch dims of a cannot merge with M without a copy: the batched path with a
    # broadcast B takes it.
    a = randn((6, 3, 4), np.float32, 13).transpose(1, 0, 2)
    b = randn((4, 5), np.float32, 14)
    assert_close(tops.matmul(a, b), torch.matmul(T(np.ascontiguousarray(a)), T(b)), **tol(np.float32, 4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias_shape", [(), (1,), (23,), (1, 23), (17, 1), (17, 23)])
def test_addmm_bias_shapes(dtype, bias_shape):
    a, b, bias = randn((17, 9), dtype, 15), randn((9, 23), dtype, 16), np.asarray(randn(bias_shape, dtype, 17))
    for beta, alpha in [(1, 1), (0.5, 2.0), (-1, 0.25)]:
        assert_close(tops.addmm(bias, a, b, beta=beta, alpha=alpha),
                     torch.addmm(T(bias), T(a), T(b), beta=beta, alpha=alpha), **tol(dtype, 9))


def test_addmm_zero_beta_and_alpha_ignore_nan():
    a, b = randn((4, 3), np.float32, 18), randn((3, 5), np.float32, 19)
    bias = np.full((4, 5), np.nan, np.float32)
    assert_close(tops.addmm(bias, a, b, beta=0), torch.addmm(T(bias), T(a), T(b), beta=0), **tol(np.float32, 3))
    a_nan = a.copy()
    a_nan[0, 0] = np.nan
    bias = randn((5,), np.float32, 20)
    assert_close(tops.addmm(bias, a_nan, b, alpha=0), torch.addmm(T(bias), T(a_nan), T(b), alpha=0))
    assert_close(tops.addmm(bias, a[:, :0], b[:0]), torch.addmm(T(bias), T(a[:, :0]), T(b[:0])))


ACTIVATIONS = {None: lambda t: t, "relu": torch.relu, "gelu": TF.gelu,
               "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"), "silu": TF.silu}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("lead", [(), (1,), (8,), (2, 3), (70,)])
def test_linear_epilogue(dtype, activation, lead):
    k, n = 37, 45
    x, w, bias = randn(lead + (k,), dtype, 21, 2.0), randn((n, k), dtype, 22), randn((n,), dtype, 23)
    residual = randn(lead + (n,), dtype, 24)
    act = ACTIVATIONS[activation]
    ref = TF.linear(T(x), T(w), T(bias))
    t = tol(dtype, k)
    assert_close(tops.linear(x, w, bias, activation=activation), act(ref), **t)
    assert_close(tops.linear(x, w, bias, activation=activation, residual=residual), act(ref + T(residual)), **t)
    packed = tops.pack_linear_weight(w)
    assert_close(tops.linear(x, packed, bias, activation=activation), act(ref), **t)
    assert_close(tops.linear(x, w, activation=activation), act(TF.linear(T(x), T(w))), **t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_range_and_specials(dtype):
    # Pre-activations spanning the range where gelu/silu change regime, plus NaN and +-inf.
    x = np.linspace(-12, 12, 97).astype(dtype)[:, None]
    w = np.ones((1, 1), dtype)
    for activation, act in ACTIVATIONS.items():
        assert_close(tops.linear(x, w, activation=activation), act(T(x)), **tol(dtype, 1))
    s = np.array([[np.nan], [1.0], [-1.0]], dtype)
    assert np.isnan(tops.linear(s, w, activation="relu")[0, 0])
    assert np.isnan(tops.linear(s, w, activation="gelu")[0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_layouts_and_bias_broadcast(dtype):
    x, w = randn((5, 2, 12), dtype, 25), randn((7, 12), dtype, 26)
    ref = TF.linear(T(x), T(w))
    for _, xv in layouts(x):
        for _, wv in layouts(w):
            assert_close(tops.linear(xv, wv), ref, **tol(dtype, 12))
    bias2 = randn((2, 7), dtype, 27)
    assert_close(tops.linear(x, w, bias2), TF.linear(T(x), T(w), T(bias2)), **tol(dtype, 12))
    assert_close(tops.linear(x, w, np.asarray(randn((), dtype, 28))), TF.linear(T(x), T(w), torch.tensor(randn((), dtype, 28))), **tol(dtype, 12))
    # 1-D weight (a dot product over the last dim), 1-D input.
    assert_close(tops.linear(x, w[0]), TF.linear(T(x), T(w[0])), **tol(dtype, 12))
    assert_close(tops.linear(x[0, 0], w), TF.linear(T(x[0, 0]), T(w)), **tol(dtype, 12))


def test_out_argument():
    a, b = randn((6, 5), np.float32, 29), randn((5, 4), np.float32, 30)
    out = np.full((6, 4), 7.0, np.float32)
    r = tops.mm(a, b, out=out)
    assert r is out
    assert_close(out, torch.mm(T(a), T(b)), **tol(np.float32, 5))
    out3 = np.empty((2, 6, 4), np.float32)
    assert tops.matmul(np.stack([a, a]), b, out=out3) is out3
    assert_close(out3, torch.matmul(T(np.stack([a, a])), T(b)), **tol(np.float32, 5))
    outl = np.empty((6, 4), np.float32)
    assert tops.linear(a, b.T, out=outl) is outl
    assert_close(outl, torch.mm(T(a), T(b)), **tol(np.float32, 5))
    # out overlapping an input still gets the right answer.
    sq = randn((5, 5), np.float32, 31)
    expected = torch.mm(T(sq), T(sq))
    assert tops.mm(sq, sq, out=sq) is sq
    assert_close(sq, expected, **tol(np.float32, 5))


def test_out_errors():
    a, b = randn((6, 5), np.float32, 32), randn((5, 4), np.float32, 33)
    with pytest.raises(TypeError, match="Expected out tensor to have dtype float, but got double instead"):
        tops.mm(a, b, out=np.empty((6, 4), np.float64))
    with pytest.raises(tops.ShapeError, match=r"out has shape \[4, 6\], expected \[6, 4\]"):
        tops.matmul(a, b, out=np.empty((4, 6), np.float32))
    with pytest.raises(tops.ShapeError, match="out must be C-contiguous"):
        tops.linear(a, b.T, out=np.empty((4, 6), np.float32).T)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray, got list"):
        tops.mm(a, b, out=[])


def _raises(exc, msg, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert is_torch_message(info.value, msg), (str(info.value), msg)


def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


@pytest.mark.single_isa
def test_errors_match_torch():
    S = tops.ShapeError
    d = np.float64
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (3x2 and 3x2)", tops.mm, z(3, 2), z(3, 2))
    _raises(S, "self must be a matrix", tops.mm, z(3), z(3, 2))
    _raises(S, "mat2 must be a matrix", tops.mm, z(3, 2), z(2))
    _raises(TypeError, "expected m1 and m2 to have the same dtype, but got: float != double", tops.mm, z(3, 2), z(2, 2, dtype=d))
    _raises(S, "batch1 must be a 3D tensor", tops.bmm, z(3, 2), z(3, 2, 2))
    _raises(S, "batch2 must be a 3D tensor", tops.bmm, z(2, 3, 2), z(2, 2))
    _raises(S, "Expected size for first two dimensions of batch2 tensor to be: [2, 2] but got: [3, 2].",
            tops.bmm, z(2, 3, 2), z(3, 2, 2))
    _raises(TypeError, "expected scalar type Float but found Double", tops.bmm, z(2, 3, 2), z(2, 2, 2, dtype=d))
    _raises(S, "both arguments to matmul need to be at least 1D, but they are 0D and 1D", tops.matmul, z(), z(3))
    _raises(S, "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, "
            "but got 3 and 4 elements respectively", tops.matmul, z(3), z(4))
    _raises(TypeError, "dot : expected both vectors to have same dtype, but found Float and Double",
            tops.matmul, z(3), z(3, dtype=d))
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)", tops.matmul, z(3), z(4, 2))
    _raises(S, "size mismatch, got input (2), mat (2x3), vec (4)", tops.matmul, z(2, 3), z(4))
    _raises(S, "size mismatch, got input (20), mat (20x2), vec (3)", tops.matmul, z(5, 4, 2), z(3))
    _raises(TypeError, "addmv input tensors must have the same dtype, but got Double, Float, and Double",
            tops.matmul, z(2, 3), z(3, dtype=d))
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (10x3 and 4x2)", tops.matmul, z(5, 2, 3), z(4, 2))
    _raises(S, "The size of tensor a (5) must match the size of tensor b (4) at non-singleton dimension 0",
            tops.matmul, z(5, 2, 3), z(4, 3, 2))
    _raises(S, "Expected size for first two dimensions of batch2 tensor to be: [10, 3] but got: [10, 4].",
            tops.matmul, z(2, 1, 2, 3), z(5, 4, 2))
    _raises(S, "Expected size for first two dimensions of batch2 tensor to be: [5, 3] but got: [5, 4].",
            tops.matmul, z(3), z(5, 4, 2))
    _raises(TypeError, "expected scalar type Float but found Double", tops.matmul, z(2, 2, 3), z(2, 3, 2, dtype=d))
    _raises(S, "The expanded size of the tensor (2) must match the existing size (3) at non-singleton dimension 1.  "
            "Target sizes: [2, 2].  Tensor sizes: [3]", tops.addmm, z(3), z(2, 2), z(2, 2))
    _raises(S, "expand(torch.FloatTensor{[2, 2, 2]}, size=[2, 2]): the number of sizes provided (2) must be "
            "greater or equal to the number of dimensions in the tensor (3)", tops.addmm, z(2, 2, 2), z(2, 2), z(2, 2))
    _raises(TypeError, "self and mat2 must have the same dtype, but got Double and Float",
            tops.addmm, z(2, dtype=d), z(2, 2), z(2, 2))
    _raises(TypeError, "mat1 and mat2 must have the same dtype, but got Double and Float",
            tops.addmm, z(2), z(2, 2, dtype=d), z(2, 2))
    _raises(S, "mat1 must be a matrix, got 1-D tensor", tops.addmm, z(2), z(2), z(2, 2))
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x2)", tops.addmm, z(2), z(2, 3), z(2, 2))
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x4)", tops.linear, z(2, 3), z(4, 2))
    _raises(S, "mat1 and mat2 shapes cannot be multiplied (70x3 and 2x4)", tops.linear, z(7, 5, 2, 3), z(4, 2))
    _raises(S, "The expanded size of the tensor (4) must match the existing size (5) at non-singleton dimension 1.  "
            "Target sizes: [2, 4].  Tensor sizes: [5]", tops.linear, z(2, 3), z(4, 3), z(5))
    _raises(S, "The expanded size of the tensor (4) must match the existing size (5) at non-singleton dimension 1.  "
            "Target sizes: [70, 4].  Tensor sizes: [5]", tops.linear, z(7, 5, 2, 3), z(4, 3), z(5))
    _raises(S, "both arguments to linear need to be at least 1D, but they are 0D and 2D", tops.linear, z(), z(4, 3))
    _raises(S, "t() expects a tensor with <= 2 dimensions, but self is 3D", tops.linear, z(2, 3), z(2, 4, 3))
    _raises(S, "mat2 must be a matrix, got 1-D tensor", tops.linear, z(2, 3), z(3), z(2))
    _raises(TypeError, "expected m1 and m2 to have the same dtype, but got: float != double",
            tops.linear, z(2, 3), z(4, 3, dtype=d))
    _raises(TypeError, "self and mat2 must have the same dtype, but got Double and Float",
            tops.linear, z(2, 3), z(4, 3), z(4, dtype=d))
    _raises(S, "linear: unknown activation 'tanh'; expected None, 'relu', 'gelu', 'gelu_tanh' or 'silu'",
            tops.linear, z(2, 3), z(4, 3), activation="tanh")
    _raises(S, "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0",
            tops.linear, z(2, 3), z(4, 3), residual=z(3, 4))
    _raises(S, "linear: residual of shape [5, 2, 4] does not broadcast to the output shape [2, 4]",
            tops.linear, z(2, 3), z(4, 3), residual=z(5, 2, 4))
    _raises(TypeError, 'mm: "input" has unsupported dtype int64; supported dtypes are float32 and float64',
            tops.mm, np.zeros((2, 2), np.int64), z(2, 2))
    _raises(TypeError, 'matmul: "other" has unsupported dtype float16; supported dtypes are float32 and float64',
            tops.matmul, z(2, 2), np.zeros((2, 2), np.float16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_identical_for_any_thread_count(dtype, threads):
    cases = [
        lambda: tops.mm(randn((300, 270), dtype, 34), randn((270, 290), dtype, 35)),
        # B read in place (one K block, at most 256 columns): the threads split M instead.
        lambda: tops.mm(randn((251, 200), dtype, 45), randn((200, 230), dtype, 46)),
        lambda: tops.linear(randn((5, 300), dtype, 36), randn((290, 300), dtype, 37), activation="gelu"),
        lambda: tops.matmul(randn((4, 33, 40), dtype, 38), randn((40, 70), dtype, 39)),
        lambda: tops.bmm(randn((3, 40, 50), dtype, 40), randn((3, 50, 200), dtype, 41)),
        lambda: tops.linear(randn((9, 300), dtype, 36), tops.pack_linear_weight(randn((290, 300), dtype, 37))),
        # Small M with a row-major B: the threads split N inside a column chunk.
        lambda: tops.mm(randn((7, 100), dtype, 47), randn((100, 2100), dtype, 48)),
    ]
    for case in cases:
        tops.set_num_threads(1)
        one = case()
        tops.set_num_threads(2)
        two = case()
        assert one.tobytes() == two.tobytes()


def test_inputs_not_modified():
    a, b, bias = randn((40, 30), np.float32, 42), randn((30, 20), np.float32, 43), randn((20,), np.float32, 44)
    copies = [a.copy(), b.copy(), bias.copy()]
    tops.linear(a, b.T, bias, activation="relu", residual=np.ones((40, 20), np.float32))
    tops.addmm(bias, a, b, beta=2)
    for before, after in zip(copies, [a, b, bias]):
        assert before.tobytes() == after.tobytes()


# ---- nn.Linear ---------------------------------------------------------------------------------

def test_linear_module_matches_torch_and_repacks_on_new_weights():
    import tensorops.nn as tnn

    theirs = torch.nn.Linear(37, 19)
    ours = tnn.Linear(37, 19)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    bound = 1 / np.sqrt(37)
    assert np.abs(ours.weight).max() <= bound and np.abs(ours.bias).max() <= bound
    ours.load_state_dict(theirs.state_dict())
    for rows in (1, 5, 33):
        x = torch.randn(rows, 37)
        np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    x = torch.randn(2, 3, 37)
    np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    # New weights through load_state_dict, assignment and in-place arithmetic drop the packing.
    other = torch.nn.Linear(37, 19)
    ours.load_state_dict(other.state_dict())
    np.testing.assert_allclose(ours(x), other(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    ours.weight = np.zeros((19, 37), np.float32)
    np.testing.assert_allclose(ours(x), np.broadcast_to(ours.bias, (2, 3, 19)), rtol=1e-6)
    ours.weight += 1
    np.testing.assert_allclose(ours(x), x.numpy().sum(-1, keepdims=True) + ours.bias, rtol=1e-5, atol=1e-5)
    # A write through an index is not seen until reset_packed_weight().
    ours.weight[...] = 2
    ours.reset_packed_weight()
    np.testing.assert_allclose(ours(x), 2 * x.numpy().sum(-1, keepdims=True) + ours.bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_dot_products_match_the_batched_rows(dtype):
    """linear over W^T takes dot products for a few rows; a single row (or the last rows of a
    batch) streams W with half-width loads on AVX-512. Every K around the vector widths, every
    row of a batch equal to the same row alone, bit for bit."""
    for k in (1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 771):
        for n in (1, 7, 8, 9, 17, 40):
            x, w, b = randn((5, k), dtype, k), randn((n, k), dtype, n), randn((n,), dtype, 3)
            batch = tops.linear(x, w, b)
            assert_close(batch, TF.linear(T(x), T(w), T(b)), **tol(dtype, k))
            for i in range(5):
                np.testing.assert_array_equal(tops.linear(x[i:i + 1], w, b), batch[i:i + 1])


def test_linear_module_reads_the_weight_in_place_for_one_row():
    """A single row (batch-1 inference) takes dot products over the weight's own rows, without
    packing it: always on a core whose L2 is under 2 MiB, else once the weight is 2 MiB a
    thread or more; more rows, or (with a 2 MiB L2) more threads sharing the weight, pack it."""
    import tensorops.nn as tnn
    from reference import L2_SIZES, assumed_l2_cache_bytes
    from tensorops.nn.linear import reads_weight_in_place

    theirs = torch.nn.Linear(1031, 517)
    ours = tnn.Linear(1031, 517)
    ours.load_state_dict(theirs.state_dict())
    small = tnn.Linear(40, 24)
    small.load_state_dict(torch.nn.Linear(40, 24).state_dict())
    before = tops.get_num_threads()
    try:
        with assumed_l2_cache_bytes(L2_SIZES["large_l2"]):
            tops.set_num_threads(1)
            assert reads_weight_in_place(1, ours.weight) and not reads_weight_in_place(2, ours.weight)
            assert not reads_weight_in_place(1, small.weight)
            for shape in ((1031,), (1, 1031), (1, 1, 1031)):
                x = torch.randn(shape)
                np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(ours(x.numpy()[..., ::-1].copy()[..., ::-1]), theirs(x).detach().numpy(),
                                           rtol=1e-4, atol=1e-5)
            assert ours.__dict__.get("_packed") is None
            x = torch.randn(3, 1031)
            np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-4, atol=1e-5)
            assert ours.__dict__.get("_packed") is not None
            tops.set_num_threads(2)
            assert not reads_weight_in_place(1, ours.weight)
            x = torch.randn(1031)
            np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-4, atol=1e-5)
        for l2 in (L2_SIZES["small_l2"], L2_SIZES["mid_l2"]):
            with assumed_l2_cache_bytes(l2):
                for threads in (1, 2):
                    tops.set_num_threads(threads)
                    assert reads_weight_in_place(1, ours.weight) and reads_weight_in_place(1, small.weight)
                    assert not reads_weight_in_place(2, small.weight)
                    x = torch.randn(1, 40)
                    expected = (x.numpy() @ small.weight.T + small.bias)
                    np.testing.assert_allclose(small(x), expected, rtol=1e-5, atol=1e-6)
                    assert small.__dict__.get("_packed") is None
    finally:
        tops.set_num_threads(before)


def test_linear_module_without_bias_and_float64():
    import tensorops.nn as tnn

    theirs = torch.nn.Linear(8, 3, bias=False, dtype=torch.float64)
    ours = tnn.Linear(8, 3, bias=False, dtype=np.float64)
    assert repr(ours) == repr(theirs) and ours.bias is None
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 8, dtype=torch.float64)
    np.testing.assert_allclose(ours(x), theirs(x).detach().numpy(), rtol=1e-12)
    with pytest.raises(tops.ShapeError, match=r"mat1 and mat2 shapes cannot be multiplied \(4x7 and 8x3\)"):
        ours(np.zeros((4, 7)))


# ---- edges found by fuzzing against torch ----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_inner_and_outer_sizes_with_leading_dims(dtype):
    """K = 0 (a sum of nothing: zeros, plus the bias) and N = 0 under leading dims, where the
    folded leading dims cannot be inferred from a zero-sized array."""
    import tensorops.nn.functional as F
    cases = [(lambda m: m.matmul, ((2, 3, 0), (0,)), ()),
             (lambda m: m.matmul, ((2, 3, 0), (0, 4)), ()),
             (lambda m: m.nn.functional.linear, ((2, 3, 0), (4, 0)), ()),
             (lambda m: m.nn.functional.linear, ((2, 3, 0), (4, 0), (4,)), ()),
             (lambda m: m.nn.functional.linear, ((2, 3, 4), (0, 4), (3, 0)), ())]
    for fn, shapes, _ in cases:
        arrays = [randn(s, dtype, i) for i, s in enumerate(shapes)]
        want = fn(torch)(*[T(a) for a in arrays])
        assert_close(fn(tops)(*arrays), want.numpy())
    got = F.linear(randn((2, 3, 0), dtype, 1), randn((4, 0), dtype, 2), residual=randn((2, 3, 4), dtype, 3))
    assert_close(got, randn((2, 3, 4), dtype, 3))
    layer = tops.nn.Linear(0, 3, dtype=dtype)
    assert_close(layer(randn((2, 3, 0), dtype, 4)), np.broadcast_to(layer.bias, (2, 3, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_with_a_vector_weight_and_a_bias(dtype):
    """torch's linear with a 1-D weight: addmm (which refuses the vector) for a 2-D input and
    for a contiguous one with a bias of one non-1 dim, else matmul and the bias added into its
    result in place, so a bias may not widen it."""
    import tensorops.nn.functional as F
    contiguous = randn((3, 4, 2), dtype, 1)
    strided = randn((4, 3, 2), dtype, 2).transpose(1, 0, 2)
    ok = [(randn(2, dtype, 3), np.array(1.5, dtype)), (contiguous, randn((3, 4), dtype, 4)),
          (strided, randn(4, dtype, 5)), (strided, randn((3, 1), dtype, 6))]
    for x, b in ok:
        w = randn(2, dtype, 7)
        want = TF.linear(T(x), T(w), T(b))
        assert_close(F.linear(x, w, b), want.numpy())
    refused = [(randn((5, 2), dtype, 8), randn(5, dtype, 9)), (randn(2, dtype, 10), randn(1, dtype, 11)),
               (contiguous, randn(4, dtype, 12)), (contiguous, randn((2, 3, 4), dtype, 13)),
               (contiguous, randn((4, 1), dtype, 15)), (contiguous, randn((1, 1, 4, 1), dtype, 16))]
    for x, b in refused:
        assert_linear_refused_as_torch(x, randn(2, dtype, 14), b)


def assert_linear_refused_as_torch(x, w, b):
    """linear(x, w, b) raises ShapeError with the message torch's RuntimeError has."""
    import tensorops.nn.functional as F
    with pytest.raises(RuntimeError) as theirs:
        TF.linear(T(x), T(w), T(b))
    with pytest.raises(tops.ShapeError) as ours:
        F.linear(x, w, b)
    assert is_torch_message(ours.value, theirs.value), (str(ours.value), str(theirs.value))


def test_bias_with_more_dims_than_the_output():
    x, w, b = randn((5, 4, 3), np.float32, 1), randn((2, 3), np.float32, 2), randn((1, 5, 4, 2), np.float32, 3)
    assert_linear_refused_as_torch(x, w, b)


@pytest.mark.parametrize("contiguous", [True, False])
def test_bias_of_a_folded_input_expands_to_its_rows(contiguous):
    """torch folds a contiguous input of 3 or more dims into rows (addmm) when the bias has
    exactly one dim that is not 1, so that bias must expand to the rows; other biases are
    added to the product's output shape."""
    import tensorops.nn.functional as F
    w = randn((7, 3), np.float32, 2)
    for shape in [(5, 2, 3), (2, 5, 2, 3)]:
        x = randn(shape, np.float32, 1)
        if not contiguous:
            x = np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)
        for bias_shape in [(1, 7), (2, 7), (2, 1), (1, 1), (5, 1, 1), (5, 1, 7), (1, 2, 1), (1, 1, 7), (1, 1, 1),
                           (5, 2, 1), (10, 7), (10, 1), (20, 1)]:
            b = randn(bias_shape, np.float32, 3)
            try:
                want = TF.linear(T(x), T(w), T(b))
            except RuntimeError:
                assert_linear_refused_as_torch(x, w, b)
            else:
                assert_close(F.linear(x, w, b), want)


def test_tied_weights_follow_a_load_into_the_other_module():
    """b.weight is a.weight: loading a state_dict into a writes into the shared array, and b's
    packed copy must not outlive it (nor a Conv2d's)."""
    import tensorops.nn.functional as F
    a, b = tops.nn.Linear(4, 4), tops.nn.Linear(4, 4)
    b.weight = a.weight
    x = randn((3, 4), np.float32, 1)
    b(x)
    a.load_state_dict(torch.nn.Linear(4, 4).state_dict())
    assert_close(b(x), x @ b.weight.T + b.bias)
    c1, c2 = tops.nn.Conv2d(3, 4, 3), tops.nn.Conv2d(3, 4, 3)
    c2.weight = c1.weight
    image = randn((1, 3, 6, 6), np.float32, 2)
    c2(image)
    c1.load_state_dict(torch.nn.Conv2d(3, 4, 3).state_dict())
    assert_close(c2(image), F.conv2d(image, c2.weight, c2.bias), rtol=1e-5, atol=1e-5)


def test_argument_types():
    """A non-number alpha/beta and a non-string activation are TypeErrors, as in torch."""
    import tensorops.nn.functional as F
    a = randn((2, 2), np.float32, 1)
    for kwargs in (dict(alpha="x"), dict(beta=[1])):
        with pytest.raises(TypeError, match="must be Number"):
            tops.addmm(a, a, a, **kwargs)
    for activation in (1, ["relu"]):
        with pytest.raises(TypeError, match="activation must be None or a string"):
            F.linear(a, a, activation=activation)
    with pytest.raises(tops.ShapeError, match="unknown activation"):
        F.linear(a, a, activation="tanh")
