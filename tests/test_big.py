"""Big and odd tensors: more than 2^31 elements (int64 index math all the way down), cheap
variants on zero-stride broadcast views, and sizes that must be refused before anything is
allocated.

The tests that need real memory check what the machine has available when they start and
skip otherwise; they are marked slow, and run by default wherever the memory is there
(`-m "not slow"` leaves them out).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import tensorops as tops
import tensorops.nn.functional as F

BEYOND_INT32 = 2**31 + 16  # elements: every flat index past 2^31 - 1 must still land right
GiB = 1 << 30
# Under AddressSanitizer each large allocation also dirties shadow memory (an eighth more).
_SANITIZED = bool(os.environ.get("TENSOROPS_SANITIZED"))


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def needs_memory(gib: float):
    have = available_memory()
    need = gib * (1.25 if _SANITIZED else 1.0) * GiB
    if have < need:
        pytest.skip(f"needs {need / GiB:.0f} GiB available, the machine has {have / GiB:.1f} GiB")


def _positions():
    """Flat indices around 2^31 and at both ends."""
    return np.array([0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, BEYOND_INT32 - 2, BEYOND_INT32 - 1])


# ---- more than 2^31 elements, in real memory --------------------------------------------------

@pytest.mark.slow
@pytest.mark.single_isa
def test_relu_of_more_than_2_31_float32_elements():
    needs_memory(20)  # 8.6 GB in, 8.6 GB out
    x = np.full(BEYOND_INT32, -1.0, np.float32)
    marks = _positions()
    x[marks] = np.arange(1, len(marks) + 1, dtype=np.float32)
    out = tops.relu(x)
    np.testing.assert_array_equal(out[marks], np.arange(1, len(marks) + 1, dtype=np.float32))
    # Every other element was negative: count the nonzeros instead of comparing 8 GB.
    assert np.count_nonzero(out) == len(marks)
    del x, out


@pytest.mark.slow
@pytest.mark.single_isa
def test_transposed_copy_of_more_than_2_31_bool_elements():
    needs_memory(6)  # 2.1 GB in, 2.1 GB out
    rows, cols = 2**16 + 1, 2**15 + 1  # 2^31 + 98305 elements: the transpose walks across 2^31
    src = np.zeros((cols, rows), np.bool_)
    src[-1, :] = True
    src[:, -1] = True
    out = tops.contiguous(src.T)
    assert out.shape == (rows, cols) and out.flags.c_contiguous
    assert out[:, -1].all() and out[-1, :].all()
    assert np.count_nonzero(out) == rows + cols - 1
    del src, out


@pytest.mark.slow
@pytest.mark.single_isa
def test_cat_writes_past_2_31_elements():
    needs_memory(5)  # 2.1 GB out, nothing in: the inputs are zero-stride views
    half = BEYOND_INT32 // 2
    a = tops.expand(np.zeros(1, np.bool_), half)
    b = tops.expand(np.ones(1, np.bool_), half)
    out = tops.cat([a, b])
    assert out.shape == (BEYOND_INT32,)
    assert not out[:half].any()
    assert out[half:].all()
    del out


# ---- zero-stride views with more than 2^31 elements: cheap ------------------------------------

@pytest.mark.single_isa
def test_embedding_rows_past_2_31_of_a_broadcast_weight():
    # 2^31 + 8 rows, every one the same memory: indices past 2^31 must pass the range check
    # as int64 and read a row, indices past the end must not.
    row = np.arange(5, dtype=np.float32)
    weight = tops.expand(row[None, :], 2**31 + 8, 5)
    assert weight.shape == (2**31 + 8, 5) and weight.strides == (0, 4)
    for dtype in (np.int64,):
        indices = np.array([[2**31 + 7, 0], [2**31, 2**31 - 1]], dtype)
        out = F.embedding(indices, weight)
        np.testing.assert_array_equal(out, np.broadcast_to(row, (2, 2, 5)))
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(np.array([2**31 + 8]), weight)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(np.array([-(2**31) - 1]), weight)


def test_views_of_a_broadcast_with_more_than_2_31_elements():
    x = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    big = tops.expand(x, 2, 3, 2**31 + 5)  # no memory: a zero stride along the last dim
    assert big.shape == (2, 3, 2**31 + 5)
    piece = tops.narrow(big, 2, 2**31 - 2, 7)
    np.testing.assert_array_equal(tops.contiguous(piece), np.broadcast_to(x, (2, 3, 7)))
    flat = tops.flatten(tops.permute(big, (2, 0, 1)), 1, 2)  # shape (2^31 + 5, 6), still a view
    assert flat.shape == (2**31 + 5, 6) and flat.strides == (0, 4)
    np.testing.assert_array_equal(tops.contiguous(tops.narrow(flat, 0, 2**31 + 2, 3)), np.tile(np.arange(6), (3, 1)))
    parts = tops.split(big, 2**30, dim=2)
    assert [p.shape[2] for p in parts] == [2**30, 2**30, 5]
    np.testing.assert_array_equal(tops.contiguous(parts[-1]), np.broadcast_to(x, (2, 3, 5)))
    np.testing.assert_array_equal(tops.relu(tops.narrow(big, 2, 2**31, 5) - 2), np.broadcast_to(
        np.maximum(x - 2, 0), (2, 3, 5)))


# ---- sizes refused before any allocation ------------------------------------------------------

@pytest.mark.single_isa
@pytest.mark.parametrize("shape,message", [
    ((-2, 3), r"invalid shape dimension -2 at index 0 of shape \[-2, 3\]"),
    ((-1, -1), "only one dimension can be inferred"),
    ((2**62, 2**62), r"shape '\[4611686018427387904, 4611686018427387904\]' is invalid for input of size 6"),
    ((2**64,), r"shape '\[18446744073709551616\]' is invalid for input of size 6"),
])
def test_reshape_and_view_to_impossible_sizes(shape, message):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(tops.ShapeError, match=message):
        tops.reshape(x, shape)
    with pytest.raises(tops.ShapeError, match=message):
        tops.view(x, shape)


@pytest.mark.single_isa
def test_expand_to_sizes_no_array_can_hold():
    one = np.zeros(1, np.float32)
    with pytest.raises(tops.ShapeError, match="numel: integer multiplication overflow"):
        tops.expand(one, -5)
    with pytest.raises(tops.ShapeError, match=r"expand: size \[4611686018427387904, 4611686018427387904\] has more "
                                              "elements of float32 than an array can address"):
        tops.expand(one, 2**62, 2**62)
    with pytest.raises(tops.ShapeError, match="than an array can address"):
        tops.expand(one, 2**63)
    with pytest.raises(tops.ShapeError, match="than an array can address"):
        tops.expand(one, 0, 2**63)  # no elements, but a size past int64 (found by the fuzzer)
    with pytest.raises(tops.ShapeError, match="than an array can address"):
        tops.expand(one, 2**62)  # 2^62 float32 elements are 2^64 bytes
    view = tops.expand(np.zeros(1, np.bool_), 2**62)  # 2^62 bytes: NumPy can describe it, as a view
    assert view.shape == (2**62,) and view.strides == (0,)


@pytest.mark.single_isa
def test_copying_an_enormous_view_fails_cleanly_without_allocating():
    view = tops.expand(np.zeros(1, np.bool_), 2**61)
    before = available_memory()
    with pytest.raises(MemoryError):
        tops.contiguous(view)  # 2 EiB: refused by the allocator, not attempted
    with pytest.raises(MemoryError):
        tops.cat([view, view[:1]])
    with pytest.raises(MemoryError):
        F.embedding(tops.expand(np.zeros(1, np.int64), 2**58), np.zeros((3, 4), np.float32))
    assert available_memory() > before - GiB


@pytest.mark.single_isa
@pytest.mark.parametrize("index", [2**31, 2**40, 2**62, 2**63 - 1, -1, -(2**63)])
def test_embedding_of_enormous_indices(index):
    weight = np.zeros((3, 2), np.float32)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(np.array([0, index], np.int64), weight)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(np.array([index]), weight, max_norm=1.0)


@pytest.mark.single_isa
def test_narrow_split_chunk_with_enormous_arguments():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(tops.ShapeError, match=r"start \(0\) \+ length \(9223372036854775807\) exceeds dimension size"):
        tops.narrow(x, 0, 0, 2**63 - 1)
    with pytest.raises(tops.ShapeError, match=r"narrow\(\): argument 'start' \(position 2\): Overflow when unpacking long long"):
        tops.narrow(x, 0, 2**63, 1)
    assert [p.shape for p in tops.split(x, 2**62)] == [(4, 3)]
    assert [p.shape for p in tops.chunk(x, 2**62)] == [(1, 3)] * 4
    with pytest.raises(tops.ShapeError, match="Overflow when unpacking long long"):
        tops.chunk(np.zeros(0, np.float32), 2**63)  # was an OverflowError from [0] * chunks (fuzzer finding)
    with pytest.raises(tops.ShapeError, match="Overflow when unpacking long long"):
        tops.split(x, -(2**63) - 1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        tops.unsqueeze(x, 2**63)


@pytest.mark.single_isa
def test_embedding_with_an_enormous_broadcast_index_costs_what_its_memory_holds():
    # 2^59 indices behind 2 int64 elements: the range check and the max_norm scan must visit
    # the 2 elements, not 2^59 (found by the fuzzer as a hang), and an empty width copies nothing.
    indices = tops.expand(np.array([1, 2]), 2**58, 2)
    empty_rows = np.zeros((3, 0), np.float32)
    assert F.embedding(indices, empty_rows).shape == (2**58, 2, 0)
    assert F.embedding(indices, empty_rows, max_norm=1.0).shape == (2**58, 2, 0)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(tops.expand(np.array([1, 5]), 2**58, 2), empty_rows)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(tops.expand(np.array([1, -1]), 2**58, 2), np.ones((3, 2), np.float32), max_norm=1.0)
    weight = np.full((3, 2), 4.0, np.float32)
    with pytest.raises(MemoryError):  # the result cannot exist; the renorm of rows 1 and 2 has happened, as in torch
        F.embedding(indices, weight, max_norm=1.0)
    np.testing.assert_allclose(np.linalg.norm(weight[1:], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(weight[0], [4.0, 4.0])


# ---- data off its item size -------------------------------------------------------------------

def _unaligned(values: np.ndarray) -> np.ndarray:
    raw = np.zeros(values.nbytes + 1, np.uint8)[1:].view(values.dtype).reshape(values.shape)
    raw[...] = values
    assert not raw.flags.aligned
    return raw


def test_unaligned_data_is_read_correctly():
    # Found by the fuzzer under UBSan: kernels read through float*, and a pointer one byte off
    # is undefined behaviour (a misaligned load in the generic kernels' tail).
    x = _unaligned(np.random.default_rng(0).standard_normal((2, 7, 33)).astype(np.float32))
    np.testing.assert_array_equal(tops.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(tops.contiguous(x.transpose(2, 0, 1)), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(tops.cat([x, x], 1), np.concatenate([x, x], 1))
    weight = _unaligned(np.arange(12, dtype=np.float64).reshape(4, 3))
    indices = _unaligned(np.array([3, 0, 2], np.int64))
    np.testing.assert_array_equal(F.embedding(indices, weight), np.asarray(weight)[[3, 0, 2]])
    tops.manual_seed(3)
    dropped = F.dropout(x, 0.5)
    assert set(np.unique(dropped[dropped != 0] / x[dropped != 0]).round(5)) <= {2.0}


def test_unaligned_out_and_direct_core_calls_are_refused():
    x = np.ones(9, np.float32)
    out = _unaligned(np.zeros(9, np.float32))
    with pytest.raises(tops.ShapeError, match="relu: out must be aligned to its item size"):
        tops.relu(x, out=out)
    with pytest.raises(tops.ShapeError, match="relu: data of 'input' is not aligned to its item size"):
        tops._core.unary(tops._core.UNARY_OPS["relu"], _unaligned(x), np.zeros(9, np.float32), 0.0, 0.0, 0.0)
    with pytest.raises(tops.ShapeError, match="copy: data of 'out' is not aligned to its item size"):
        tops._core.copy(x, out)


def test_max_norm_renormalises_an_unaligned_weight_in_place():
    weight = _unaligned(np.full((3, 2), 4.0, np.float32))
    out = F.embedding(np.array([1]), weight, max_norm=1.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(weight[1]), 1.0, rtol=1e-6)  # the caller's row, as torch
    np.testing.assert_array_equal(weight[0], [4.0, 4.0])
