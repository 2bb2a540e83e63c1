"""The shape family against torch: values, shapes, dtypes, view-vs-copy, errors."""
import itertools
import re

import numpy as np
import pytest
import torch

import tensorops as tops
from reference import is_torch_message, layouts

SHAPE_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
# Odd shapes: empty dims, size-1 dims, primes, a 0-d array.
SHAPES = [(), (0,), (1,), (7,), (2, 3), (3, 0, 5), (1, 5, 1), (13, 17), (2, 3, 5, 7), (4, 1, 3, 2)]
single_isa = pytest.mark.single_isa


def values(shape, dtype, seed=0):
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 10)
    return np.asarray(x > 0) if dtype == np.bool_ else x.astype(dtype)


def as_torch(v):
    """A torch tensor over v's memory when torch can express v's strides (no negative ones)."""
    if all(s >= 0 for s in v.strides):
        return torch.from_numpy(v), True
    return torch.from_numpy(np.ascontiguousarray(v)), False


def np_root(a):
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def np_is_view(result, source) -> bool:
    return np_root(result) is np_root(source)


def torch_is_view(result, source) -> bool:
    return result is source or result._base is source


def layouts_of(shape, dtype, seed=0):
    x = values(shape, dtype, seed)
    return list(layouts(x)) if x.ndim else [("scalar", x)]


def check(tops_fn, torch_fn, shape, dtype, always_view=False):
    """tops_fn and torch_fn agree on values, shape, dtype and view-vs-copy, on every layout;
    the input is left untouched."""
    for name, v in layouts_of(shape, dtype):
        before = v.copy()
        t, same_memory = as_torch(v)
        expected = torch_fn(t)
        result = tops_fn(v)
        pairs = list(zip(result, expected)) if isinstance(expected, tuple) else [(result, expected)]
        assert isinstance(result, tuple) == isinstance(expected, tuple)
        assert len(pairs) == (len(expected) if isinstance(expected, tuple) else 1)
        for r, e in pairs:
            assert isinstance(r, np.ndarray)
            assert r.shape == tuple(e.shape), (name, r.shape, tuple(e.shape))
            assert r.dtype == e.numpy().dtype
            np.testing.assert_array_equal(r, e.numpy(), err_msg=name)
            if always_view:
                assert np_is_view(r, v), name
            elif same_memory:
                assert np_is_view(r, v) == torch_is_view(e, t), (name, "view" if torch_is_view(e, t) else "copy")
            if r.size and not np_is_view(r, v):
                assert not np.shares_memory(r, v)
        np.testing.assert_array_equal(v, before)


def reshape_targets(shape):
    n = int(np.prod(shape))
    out = [(-1,), (n,), tuple(reversed(shape)), (1,) + tuple(shape) + (1,)]
    if len(shape) >= 2:
        out += [(shape[0] * shape[1],) + tuple(shape[2:]), (shape[0], -1), (-1, shape[-1]),
                tuple(shape[:-2]) + (shape[-1] * shape[-2],)]
    if n and n % 2 == 0:
        out.append((2, n // 2))
    return [s for s in out if s.count(-1) <= 1]


# ---- reshape / view / flatten / contiguous ------------------------------------------------------
@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_reshape(shape, dtype, isa):
    for target in reshape_targets(shape):
        check(lambda x: tops.reshape(x, target), lambda t: torch.reshape(t, target), shape, dtype)


@single_isa
@pytest.mark.parametrize("shape", SHAPES)
def test_view(shape, isa):
    for target in reshape_targets(shape):
        for name, v in layouts_of(shape, np.float32):
            t, same_memory = as_torch(v)
            try:
                expected = t.view(target)
            except RuntimeError as exc:
                if same_memory:
                    with pytest.raises(tops.ShapeError, match=re.escape(str(exc))):
                        tops.view(v, target)
                continue
            result = tops.view(v, target)
            assert np_is_view(result, v)
            np.testing.assert_array_equal(result, expected.numpy())
            np.testing.assert_array_equal(tops.view(v, *target), expected.numpy())


@single_isa
def test_view_and_reshape_follow_torchs_stride_rule(isa):
    # Slices and permutations of a 4-D array, reshaped to every factorisation torch might view.
    base = values((4, 6, 2, 3), np.float32)
    views = [base, base[:, ::2], base[:, :, :1], base.transpose(1, 0, 2, 3), base.transpose(0, 1, 3, 2),
             base[::2, :, :, ::3], base.transpose(2, 3, 0, 1), base[:, 1:4], base[1:2]]
    for v in views:
        n = v.size
        targets = {(n,), (v.shape[0], -1), (-1, v.shape[-1]), tuple(reversed(v.shape)), (1,) + v.shape}
        targets |= {(a, n // a) for a in range(1, n + 1) if n % a == 0}
        targets |= {(v.shape[0], v.shape[1] * v.shape[2], v.shape[3]), (v.shape[0] * v.shape[1], v.shape[2], v.shape[3])}
        for target in targets:
            t = torch.from_numpy(v)
            expected = torch.reshape(t, target)
            result = tops.reshape(v, target)
            np.testing.assert_array_equal(result, expected.numpy())
            assert np_is_view(result, v) == torch_is_view(expected, t), (v.shape, v.strides, target)
            if torch_is_view(expected, t):
                np.testing.assert_array_equal(tops.view(v, target), expected.numpy())
            else:
                with pytest.raises(tops.ShapeError, match=r"view size is not compatible"):
                    tops.view(v, target)


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_flatten(shape, dtype, isa):
    rank = max(len(shape), 1)
    for s, e in itertools.product(range(-rank, rank), repeat=2):
        if (s % rank) <= (e % rank):
            check(lambda x: tops.flatten(x, s, e), lambda t: torch.flatten(t, s, e), shape, dtype)
    check(tops.flatten, torch.flatten, shape, dtype)


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_contiguous(shape, dtype, isa):
    check(tops.contiguous, lambda t: t.contiguous(), shape, dtype)
    for perm in itertools.permutations(range(len(shape))):
        check(lambda x: tops.contiguous(x.transpose(perm)), lambda t: t.permute(perm).contiguous(), shape, dtype)


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", [(64, 64), (33, 47), (3, 130, 17), (16, 5, 32), (2, 70, 3, 40), (1000, 3), (3, 1000)])
def test_copy_kernel_transposes(shape, dtype, isa):
    """Sizes around and across the cache-line tiles of the transpose path, with tails both ways."""
    x = values(shape, dtype)
    for perm in itertools.permutations(range(len(shape))):
        for v in (x.transpose(perm), x[..., ::-1].transpose(perm), x[::2].transpose(perm)):
            expected = torch.from_numpy(np.ascontiguousarray(v)).numpy()
            result = tops.contiguous(v)
            assert result.flags.c_contiguous
            np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_large_transposes(dtype, isa):
    """Copies past the size where the transpose streams its stores, from aligned and unaligned
    bases, with leading dimensions that are and are not multiples of a cache line."""
    x = values((1104, 2064), dtype)
    for v in (x.T, x[16:, 3:].T, x[:, :2049].T, x[:1103].T):
        np.testing.assert_array_equal(tops.contiguous(v), np.ascontiguousarray(v))
        np.testing.assert_array_equal(tops.reshape(v, (-1,)), np.ascontiguousarray(v).reshape(-1))
    # Destinations starting at every alignment within a cache line (the streaming head).
    v = x.T
    buffer = np.empty(v.size + 64, dtype)
    for offset in range(0, 64 // buffer.itemsize, 3):
        out = buffer[offset:offset + v.size].reshape(v.shape)
        tops._core.copy(v, out)
        np.testing.assert_array_equal(out, v)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_copy_is_the_same_for_any_thread_count(threads, isa):
    x = values((301, 517), np.float32)  # several parallel pieces on both paths
    previous = tops.get_num_threads()
    tops.set_num_threads(threads)
    try:
        np.testing.assert_array_equal(tops.contiguous(x.T), x.T)
        np.testing.assert_array_equal(tops.contiguous(x[:, ::-3]), x[:, ::-3])
        np.testing.assert_array_equal(tops.cat([x, x[::-1], x.T.T], 1), np.concatenate([x, x[::-1], x], 1))
    finally:
        tops.set_num_threads(previous)


# ---- pure views -------------------------------------------------------------------------------
@single_isa
@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_transpose_permute(shape, dtype, isa):
    rank = max(len(shape), 1)
    for d0, d1 in itertools.product(range(-rank, rank), repeat=2):
        check(lambda x: tops.transpose(x, d0, d1), lambda t: torch.transpose(t, d0, d1), shape, dtype, True)
    for perm in itertools.permutations(range(len(shape))):
        neg = tuple(p - len(shape) if i % 2 else p for i, p in enumerate(perm))
        check(lambda x: tops.permute(x, neg), lambda t: torch.permute(t, neg), shape, dtype, True)
        if perm:
            check(lambda x: tops.permute(x, *perm), lambda t: t.permute(*perm), shape, dtype, True)


@single_isa
@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_squeeze_unsqueeze(shape, dtype, isa):
    rank = max(len(shape), 1)
    check(tops.squeeze, torch.squeeze, shape, dtype, True)
    for d in range(-rank, rank):
        check(lambda x: tops.squeeze(x, d), lambda t: torch.squeeze(t, d), shape, dtype, True)
    if shape:
        dims = tuple(range(-len(shape), 0))
        check(lambda x: tops.squeeze(x, dims), lambda t: torch.squeeze(t, dims), shape, dtype, True)
        check(lambda x: tops.squeeze(x, [0]), lambda t: torch.squeeze(t, [0]), shape, dtype, True)
    for d in range(-len(shape) - 1, len(shape) + 1):
        check(lambda x: tops.unsqueeze(x, d), lambda t: torch.unsqueeze(t, d), shape, dtype, True)


@single_isa
@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape, target", [
    ((), ()), ((), (3,)), ((), (2, 1)), ((1,), (5,)), ((3,), (2, 3)), ((3,), (2, -1)), ((3, 1), (3, 4)),
    ((3, 1), (-1, 0)), ((1, 4, 1), (2, 3, 4, 5)), ((1, 4, 1), (-1, -1, 1)), ((0, 1), (2, 0, 7)), ((2, 3), (2, 3)),
    ((5,), (1, 1, 5))])
def test_expand(shape, target, dtype, isa):
    check(lambda x: tops.expand(x, target), lambda t: t.expand(target), shape, dtype, True)
    if target:
        check(lambda x: tops.expand(x, *target), lambda t: t.expand(*target), shape, dtype, True)


@single_isa
@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if s])
def test_split_chunk_narrow(shape, dtype, isa):
    for d in range(-len(shape), len(shape)):
        n = shape[d]
        for size in {1, 2, 3, n, n + 1} - {0}:
            check(lambda x: tops.split(x, size, d), lambda t: torch.split(t, size, d), shape, dtype, True)
        if n == 0:
            check(lambda x: tops.split(x, 0, d), lambda t: torch.split(t, 0, d), shape, dtype, True)
        for sections in ([n], [0, n, 0], [n // 2, n - n // 2], [1] * n):
            check(lambda x: tops.split(x, sections, d), lambda t: torch.split(t, sections, d), shape, dtype, True)
        for chunks in (1, 2, 3, 4, 7):
            check(lambda x: tops.chunk(x, chunks, d), lambda t: torch.chunk(t, chunks, d), shape, dtype, True)
        for start in range(-n, n + 1):
            for length in range(0, n - (start % n if n and start < n else n) + 1):
                check(lambda x: tops.narrow(x, d, start, length), lambda t: torch.narrow(t, d, start, length), shape,
                      dtype, True)


@single_isa
def test_views_write_through_and_accept_torch_and_lists(isa):
    t = torch.arange(12.0).reshape(3, 4)
    v = tops.transpose(t, 0, 1)  # a view of the torch tensor's memory
    v[0, 1] = -1.0
    assert t[1, 0] == -1.0
    np.testing.assert_array_equal(tops.reshape([[1, 2], [3, 4]], (4,)), [1, 2, 3, 4])
    np.testing.assert_array_equal(tops.cat([torch.ones(2), [2.0, 3.0]]), np.array([1, 1, 2, 3], np.float32))
    # A float16 view needs no kernel; a float16 copy is refused rather than mangled.
    h = np.ones((2, 3), np.float16)
    assert tops.transpose(h, 0, 1).dtype == np.float16
    with pytest.raises(TypeError, match="contiguous: unsupported dtype float16"):
        tops.contiguous(h.T)


# ---- joins --------------------------------------------------------------------------------------
CAT_CASES = [  # (shapes, dim)
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 5), (2, 1)], 1), ([(2, 3), (2, 5)], -1), ([(7,), (0,), (3,)], 0),
    ([(0, 3), (2, 3)], 0), ([(2, 0), (2, 3), (2, 0)], 1), ([(3, 1, 4), (3, 5, 4), (3, 2, 4)], 1),
    ([(3, 4), (0,)], 1), ([(0,), (3, 4), (0,)], 1), ([(0,), (0,)], 0), ([(2, 3, 5, 7)] * 3, 2), ([(1,)] * 5, 0),
    ([(13, 17), (13, 2)], -1), ([(5, 1), (5, 1)], 1)]


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
def test_rows_of_a_cache_line_or_less(dtype, isa):
    """Contiguous rows of up to 64 bytes are copied many a call: every width around that size,
    row counts that cross the parallel pieces mid-row, reversed and sliced rows, cat and copy."""
    item = np.dtype(dtype).itemsize
    for width in list(range(1, 64 // item + 3)) + ([70] if item == 1 else []):
        for rows in (1, 5, 33, 40001):
            a, b = values((rows, width), dtype, seed=width), values((rows, width + 1), dtype, seed=rows)
            np.testing.assert_array_equal(tops.cat([a, b, a[::-1]], 1), np.concatenate([a, b, a[::-1]], 1))
            np.testing.assert_array_equal(tops.contiguous(b[:, 1:]), b[:, 1:])
        c = values((3, 17, width), dtype, seed=3)
        np.testing.assert_array_equal(tops.cat([c, c[:, ::-1]], 2), np.concatenate([c, c[:, ::-1]], 2))
        np.testing.assert_array_equal(tops.stack([c, c], 2), np.stack([c, c], 2))


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shapes, dim", CAT_CASES)
def test_cat(shapes, dim, dtype, isa):
    pieces = [values(s, dtype, seed=i) for i, s in enumerate(shapes)]
    # Every input in a different layout, cycling through them.
    mixed = [list(layouts(p))[i % len(list(layouts(p)))][1] for i, p in enumerate(pieces)]
    before = [m.copy() for m in mixed]
    expected = torch.cat([torch.from_numpy(p) for p in pieces], dim).numpy()
    for fn in (tops.cat, tops.concat):
        result = fn(mixed, dim)
        assert result.dtype == expected.dtype and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)
        assert not any(np.shares_memory(result, m) for m in mixed)
    np.testing.assert_array_equal(tops.cat(tuple(pieces), dim=dim), expected)
    for m, b in zip(mixed, before):
        np.testing.assert_array_equal(m, b)


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_stack(shape, dtype, isa):
    pieces = [values(shape, dtype, seed=i) for i in range(3)]
    mixed = [list(layouts_of(shape, dtype, seed=i))[i % len(layouts_of(shape, dtype))][1] for i in range(3)]
    for d in range(-len(shape) - 1, len(shape) + 1):
        expected = torch.stack([torch.from_numpy(p) for p in pieces], d).numpy()
        result = tops.stack(mixed, d)
        assert result.dtype == expected.dtype and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(tops.stack(pieces[:1]), torch.stack([torch.from_numpy(pieces[0])]).numpy())


@pytest.mark.parametrize("dtype", SHAPE_DTYPES)
def test_join_into_out_and_by_axis(dtype, isa):
    x, y = values((3, 4), dtype, 1), values((3, 5), dtype, 2)
    want = torch.cat([torch.from_numpy(x), torch.from_numpy(y)], 1).numpy()
    np.testing.assert_array_equal(tops.cat([x, y], axis=1), want)
    np.testing.assert_array_equal(tops.concat([x, y], axis=-1), want)
    out = np.empty((3, 9), dtype)
    assert tops.cat([x, y[::-1]], 1, out=out) is out
    np.testing.assert_array_equal(out, np.concatenate([x, y[::-1]], 1))
    stacked = np.empty((3, 2, 4), dtype)
    assert tops.stack([x, x[::-1]], axis=1, out=stacked) is stacked
    np.testing.assert_array_equal(stacked, torch.stack([torch.from_numpy(x), torch.from_numpy(x[::-1].copy())], 1))
    # out= may be one of the inputs: it is read before it is written.
    whole = values((4, 3), dtype, 3)
    swapped = np.concatenate([whole[2:], whole[:2]])
    np.testing.assert_array_equal(tops.cat([whole[2:], whole[:2]], out=whole), swapped)
    assert tops.cat([np.zeros(0, dtype)], out=np.empty(0, dtype)).shape == (0,)
    with pytest.raises(tops.ShapeError, match=r"cat: out has shape \[3, 8\], expected \[3, 9\]"):
        tops.cat([x, y], 1, out=np.empty((3, 8), dtype))
    with pytest.raises(TypeError, match="stack: out has dtype"):
        tops.stack([x, x], out=np.empty((2, 3, 4), np.complex64))
    for dim in (0, 1):
        with pytest.raises(TypeError, match="received both dim and axis"):
            tops.cat([x, y], dim, axis=1)
        with pytest.raises(TypeError, match="received both dim and axis"):
            tops.stack([x, x], dim=dim, axis=1)


@pytest.mark.parametrize("a, b", list(itertools.product(SHAPE_DTYPES, repeat=2)))
def test_join_promotes_dtypes_as_torch(a, b, isa):
    x, y = values((3, 4), a, 1), values((2, 4), b, 2)
    expected = torch.cat([torch.from_numpy(x), torch.from_numpy(y)]).numpy()
    result = tops.cat([x, y.T.copy().T])
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)
    expected = torch.stack([torch.from_numpy(x[:2]), torch.from_numpy(y)], 1).numpy()
    result = tops.stack([x[:2], y], 1)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)
    assert tops.cat([np.zeros(0, a), np.zeros((2, 2), b)]).dtype == torch.cat(
        [torch.zeros(0, dtype=torch.from_numpy(np.zeros(0, a)).dtype), torch.from_numpy(np.zeros((2, 2), b))]).numpy().dtype


# ---- errors -------------------------------------------------------------------------------------
X = np.zeros((3, 4), np.float32)
V = np.zeros(5, np.float32)
S = np.float32(1.0) * np.ones((), np.float32)

# (tops call, torch call): torch's error is the specification of type and message.
ERROR_CASES = {
    "reshape size": (lambda m, c: m.reshape(c(X), (3, 5))),
    "reshape two -1": (lambda m, c: m.reshape(c(X), (-1, -1))),
    "reshape negative": (lambda m, c: m.reshape(c(X), (-2, 6))),
    "reshape ambiguous": (lambda m, c: m.reshape(c(np.zeros((0, 3))), (0, -1))),
    "reshape zero with -1": (lambda m, c: m.reshape(c(V[:0]), (2, -1, 0))),
    "reshape 0-d": (lambda m, c: m.reshape(c(np.zeros(2)), ())),
    "view strides": (lambda m, c: m.view(c(X).T, 12) if m is tops else c(X).T.view(12)),
    "view slice": (lambda m, c: m.view(c(X)[:, :2], 6) if m is tops else c(X)[:, :2].view(6)),
    "view size": (lambda m, c: m.view(c(X), -1, 5) if m is tops else c(X).view(-1, 5)),
    "transpose dim": (lambda m, c: m.transpose(c(X), 0, 2)),
    "transpose neg dim": (lambda m, c: m.transpose(c(X), -3, 0)),
    "permute count": (lambda m, c: m.permute(c(X), (0,))),
    "permute 0-d count": (lambda m, c: m.permute(c(S), (0,))),
    "permute duplicate": (lambda m, c: m.permute(c(X), (0, 0))),
    "permute duplicate neg": (lambda m, c: m.permute(c(X), (-1, 1))),
    "permute range": (lambda m, c: m.permute(c(X), (0, 2))),
    "squeeze dim": (lambda m, c: m.squeeze(c(X), 2)),
    "squeeze tuple dim": (lambda m, c: m.squeeze(c(X), (0, 5))),
    "squeeze duplicate": (lambda m, c: m.squeeze(c(X), (0, 0))),
    "squeeze 0-d": (lambda m, c: m.squeeze(c(S), 1)),
    "unsqueeze dim": (lambda m, c: m.unsqueeze(c(X), 3)),
    "unsqueeze 0-d": (lambda m, c: m.unsqueeze(c(S), -2)),
    "flatten order": (lambda m, c: m.flatten(c(X), 1, 0)),
    "flatten neg order": (lambda m, c: m.flatten(c(X), -1, 0)),
    "flatten dim": (lambda m, c: m.flatten(c(X), 2)),
    "flatten 0-d dim": (lambda m, c: m.flatten(c(S), 1)),
    "cat empty": (lambda m, c: m.cat([])),
    "cat rank": (lambda m, c: m.cat([c(X), c(np.zeros((3, 5, 2), np.float32))])),
    "cat size": (lambda m, c: m.cat([c(X), c(np.zeros((4, 4), np.float32))], 1)),
    "cat size dim 0": (lambda m, c: m.cat([c(X), c(np.zeros((3, 5), np.float32))], 0)),
    "cat size vs legacy": (lambda m, c: m.cat([c(X), c(np.zeros((0, 4), np.float32))], 1)),
    "cat 0-d first": (lambda m, c: m.cat([c(S)])),
    "cat 0-d later": (lambda m, c: m.cat([c(X), c(X), c(S)])),
    "cat dim": (lambda m, c: m.cat([c(X), c(X)], 2)),
    "cat dim past legacy": (lambda m, c: m.cat([c(V[:0]), c(X)], 3)),
    "cat neg dim": (lambda m, c: m.cat([c(X), c(X)], -3)),
    "concat size": (lambda m, c: m.concat([c(X), c(np.zeros((4, 4), np.float32))], 1)),
    "stack empty": (lambda m, c: m.stack([])),
    "stack size": (lambda m, c: m.stack([c(np.zeros((2, 3))), c(np.zeros((2, 4)))])),
    "stack size last": (lambda m, c: m.stack([c(np.zeros((2, 3))), c(np.zeros((2, 4)))], 2)),
    "stack rank": (lambda m, c: m.stack([c(np.zeros((2, 3))), c(np.zeros(3))], -1)),
    "stack 0-d vs 1-d": (lambda m, c: m.stack([c(S), c(V[:1])])),
    "stack dim": (lambda m, c: m.stack([c(X)], 3)),
    "expand size": (lambda m, c: m.expand(c(np.zeros(3)), 2, 4) if m is tops else c(np.zeros(3)).expand(2, 4)),
    "expand size int": (lambda m, c: m.expand(c(np.zeros(3, np.int32)), (3, 1)) if m is tops
                        else c(np.zeros(3, np.int32)).expand((3, 1))),
    "expand zero": (lambda m, c: m.expand(c(np.zeros((2, 1))), 4, 0, 3) if m is tops
                    else c(np.zeros((2, 1))).expand(4, 0, 3)),
    "expand -1 inner": (lambda m, c: m.expand(c(X), 3, 4, -1) if m is tops else c(X).expand(3, 4, -1)),
    "expand count f32": (lambda m, c: m.expand(c(X), 3) if m is tops else c(X).expand(3)),
    "expand count f64": (lambda m, c: m.expand(c(X.astype(np.float64)), 3) if m is tops
                         else c(X.astype(np.float64)).expand(3)),
    "expand count i32": (lambda m, c: m.expand(c(X.astype(np.int32)), 3) if m is tops
                         else c(X.astype(np.int32)).expand(3)),
    "expand count i64": (lambda m, c: m.expand(c(X.astype(np.int64)), 3) if m is tops
                         else c(X.astype(np.int64)).expand(3)),
    "expand count bool": (lambda m, c: m.expand(c(X.astype(bool)), 3) if m is tops else c(X.astype(bool)).expand(3)),
    "expand leading -1": (lambda m, c: m.expand(c(np.zeros(3)), -1, 3) if m is tops else c(np.zeros(3)).expand(-1, 3)),
    "expand leading -2": (lambda m, c: m.expand(c(np.zeros(3)), -2, 3) if m is tops else c(np.zeros(3)).expand(-2, 3)),
    "expand 0-d leading -1": (lambda m, c: m.expand(c(S), 2, -1) if m is tops else c(S).expand(2, -1)),
    "expand -2": (lambda m, c: m.expand(c(np.zeros(3)), 2, -2) if m is tops else c(np.zeros(3)).expand(2, -2)),
    "split 0-d": (lambda m, c: m.split(c(S), 1)),
    "split sections 0-d": (lambda m, c: m.split(c(S), [1])),
    "split zero": (lambda m, c: m.split(c(V), 0)),
    "split negative": (lambda m, c: m.split(c(V), -1)),
    "split negative bad dim": (lambda m, c: m.split(c(V), -1, 3)),
    "split dim": (lambda m, c: m.split(c(V), 2, 1)),
    "split sum": (lambda m, c: m.split(c(V), [2, 2])),
    "split sum neg dim": (lambda m, c: m.split(c(V), [2, 2], -1)),
    "split empty sections": (lambda m, c: m.split(c(V), [])),
    "split negative section": (lambda m, c: m.split(c(V), [-1, 6])),
    "chunk zero": (lambda m, c: m.chunk(c(V), 0)),
    "chunk negative": (lambda m, c: m.chunk(c(V), -1)),
    "chunk 0-d": (lambda m, c: m.chunk(c(S), 1)),
    "chunk dim": (lambda m, c: m.chunk(c(V), 2, 3)),
    "narrow start high": (lambda m, c: m.narrow(c(V), 0, 6, 0)),
    "narrow start low": (lambda m, c: m.narrow(c(V), 0, -6, 0)),
    "narrow empty start": (lambda m, c: m.narrow(c(V[:0]), 0, 1, 0)),
    "narrow length": (lambda m, c: m.narrow(c(V), 0, 2, 4)),
    "narrow neg start length": (lambda m, c: m.narrow(c(V), 0, -2, 3)),
    "narrow negative length": (lambda m, c: m.narrow(c(V), 0, 2, -1)),
    "narrow 0-d": (lambda m, c: m.narrow(c(S), 0, 0, 1)),
    "narrow dim": (lambda m, c: m.narrow(c(V), 1, 0, 1)),
}
TORCH_TO_TOPS = {RuntimeError: tops.ShapeError, ValueError: tops.ShapeError, IndexError: IndexError}


@single_isa
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_match_torch(case, isa):
    call = ERROR_CASES[case]
    with pytest.raises(Exception) as torch_error:
        call(torch, lambda a: torch.from_numpy(np.asarray(a)))
    expected_type = TORCH_TO_TOPS[type(torch_error.value)]
    message = str(torch_error.value)
    with pytest.raises(expected_type) as ours:
        call(tops, lambda a: a)
    assert is_torch_message(ours.value, message), (str(ours.value), message)
    if expected_type is tops.ShapeError:  # catchable as torch code and as NumPy code would
        with pytest.raises(RuntimeError):
            call(tops, lambda a: a)
        with pytest.raises(ValueError):
            call(tops, lambda a: a)


@single_isa
def test_type_errors(isa):
    with pytest.raises(TypeError, match=r"reshape\(\): argument 'shape' \(position 2\) must be tuple of ints, not int"):
        tops.reshape(X, 12)
    with pytest.raises(TypeError, match="but found element of type float at pos 0"):
        tops.reshape(X, (2.0, 6))
    with pytest.raises(TypeError, match="but found element of type bool at pos 0"):
        tops.reshape(X, (True, 12))
    with pytest.raises(TypeError, match="must be tuple of ints"):
        tops.view(X, 12.0)
    with pytest.raises(TypeError, match="must be tuple of ints"):
        tops.expand(X, 3, 4.0)
    with pytest.raises(TypeError, match=r"cat\(\): argument 'tensors' \(position 1\) must be tuple of Tensors, not ndarray"):
        tops.cat(X)
    with pytest.raises(TypeError, match=r"stack\(\): argument 'tensors' \(position 1\) must be tuple of Tensors, not Tensor"):
        tops.stack(torch.zeros(2))
    with pytest.raises(TypeError, match=r"chunk\(\): argument 'chunks' \(position 1\) must be int, not bool"):
        tops.chunk(V, True)
    with pytest.raises(TypeError, match=r"split\(\): argument 'split_size' \(position 2\) must be int, not bool"):
        tops.split(V, True)
    with pytest.raises(TypeError, match=r"narrow\(\): argument 'start' \(position 2\) must be int, not float"):
        tops.narrow(V, 0, 1.0, 2)
    with pytest.raises(TypeError, match="dim must be an int"):
        tops.transpose(X, 0, 1.5)
    with pytest.raises(TypeError, match="cat: unsupported dtype float16"):
        tops.cat([X, X.astype(np.float16)])
    with pytest.raises(TypeError, match="stack: unsupported dtype complex64"):
        tops.stack([X.astype(np.complex64)])
    with pytest.raises(TypeError, match="reshape: unsupported dtype uint8"):
        tops.reshape(X.astype(np.uint8).T, (12,))


def test_sizes_by_keyword():
    """permute(dims=...), view(size=... or shape=...) and expand(size=...), as torch takes them."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(tops.permute(x, dims=(1, 0)), x.T)
    assert tops.view(x, size=(2, 6)).shape == (2, 6) and tops.view(x, shape=(12,)).shape == (12,)
    assert tops.expand(x[:1], size=(3, 4)).shape == (3, 4)
    with pytest.raises(TypeError, match="multiple values for argument 'size'"):
        tops.view(x, 12, size=(12,))
    with pytest.raises(TypeError, match="unexpected keyword argument 'axes'"):
        tops.permute(x, axes=(1, 0))


@single_isa
def test_sizes_past_an_index_raise_shape_error(isa):
    for op in (tops.reshape, tops.view):
        with pytest.raises(tops.ShapeError, match="is too large"):
            op(np.zeros(0, np.float32), (2**62, 4, 0))
