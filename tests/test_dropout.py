import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tensorops as tops
from reference import DTYPES, ODD_SIZES, assert_close, layouts, randn, special_values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ODD_SIZES)
def test_survivors_are_scaled_and_the_rest_zero(dtype, n):
    x = randn((n,), dtype) + 3  # no zeros in the input
    y = tops.dropout(x, p=0.25)
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / dtype(0.75), rtol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_is_p(p):
    x = np.ones(1 << 20, np.float32)
    dropped = np.mean(tops.dropout(x, p) == 0)
    # 1M Bernoulli draws: the standard error is below 5e-4.
    assert abs(dropped - p) < 3e-3


def test_mask_has_no_visible_structure():
    tops.manual_seed(7)
    x = np.ones((4096, 64), np.float32)
    mask = tops.dropout(x, 0.5) != 0
    # Rows, columns and neighbours are independent: drop rates per column and per row parity
    # stay near 1/2, and consecutive elements agree about half of the time.
    assert np.all(np.abs(mask.mean(axis=0) - 0.5) < 0.04)
    assert abs(mask[::2].mean() - mask[1::2].mean()) < 0.01
    assert abs(np.mean(mask.ravel()[1:] == mask.ravel()[:-1]) - 0.5) < 0.01


def test_same_seed_same_mask_for_any_thread_count(isa):
    x = randn((3, 100003), np.float32)
    before = tops.get_num_threads()
    try:
        masks = []
        for threads in (1, 2):
            tops.set_num_threads(threads)
            tops.manual_seed(1234)
            masks.append(tops.dropout(x, 0.3))
            masks.append(tops.dropout(x, 0.3))
    finally:
        tops.set_num_threads(before)
    assert masks[0].tobytes() == masks[2].tobytes()
    assert masks[1].tobytes() == masks[3].tobytes()
    assert masks[0].tobytes() != masks[1].tobytes()  # successive calls draw fresh masks


def test_mask_is_the_same_on_every_isa():
    from tensorops import _core

    x = randn((1000,), np.float32)
    results = []
    previous = _core.isa_cap()
    try:
        for isa in ("generic", "x86_avx2", "x86_avx512"):
            _core.set_isa_cap(isa)
            tops.manual_seed(99)
            results.append(tops.dropout(x, 0.5))
    finally:
        _core.set_isa_cap(previous)
    assert all(r.tobytes() == results[0].tobytes() for r in results)


def _mix_key(v):
    v = np.uint32(v)
    v ^= v >> np.uint32(16)
    v *= np.uint32(0x7FEB352D)
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x846CA68B)
    v ^= v >> np.uint32(16)
    return v


def reference_keep(seed, first, count):
    """The documented mask (csrc/dropout/dropout.h) in NumPy: element i of the stream is kept
    when the top 24 bits of scramble((i mod 2^32) ^ key(seed, i >> 32)) reach round(p * 2^24)."""
    index = np.arange(first, first + count, dtype=np.uint64)
    high = (index >> np.uint64(32)).astype(np.uint32)
    low = index.astype(np.uint32)
    with np.errstate(over="ignore"):
        key = _mix_key(_mix_key(np.uint32(seed & 0xFFFFFFFF) ^ np.uint32(0x9E3779B9))
                       ^ _mix_key(np.uint32(seed >> 32) + np.uint32(0x7F4A7C15) * (high + np.uint32(1))))
        h = low ^ key
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x21F0AAAD)
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x735A2D97)
        h ^= h >> np.uint32(15)
    return h >> np.uint32(8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_is_the_documented_hash(dtype, isa):
    # 3 Mi elements: outputs of 8 MB and more are written with streaming stores on one thread
    # (16 MB on more), here into a misaligned out= (the kernel peels to the vector alignment);
    # then across an index 2^32 boundary.
    n = 3 << 20
    seed = 0x0123456789ABCDEF
    tops.manual_seed(seed)
    tops.dropout(np.ones(3, dtype), 0.5)  # the stream's position moves on by 3
    first = 3
    x = randn((n,), dtype) + 3
    out = np.empty(n + 1, dtype)[1:]
    threads = tops.get_num_threads()
    tops.set_num_threads(1)
    try:
        tops.dropout(x, 0.3, out=out)
    finally:
        tops.set_num_threads(threads)
    keep = reference_keep(seed, first, n) >= round(0.3 * 2 ** 24)
    assert np.array_equal(out != 0, keep)
    np.testing.assert_allclose(out[keep], x[keep] / dtype(0.7), rtol=1e-6)

    dropout_module = importlib.import_module("tensorops.dropout")  # the function shadows the module
    start = (1 << 32) - 1000
    dropout_module._generator.offset = start
    y = tops.dropout(x[:5000], 0.6)
    assert np.array_equal(y != 0, reference_keep(seed, start, 5000) >= round(0.6 * 2 ** 24))


def test_float64_mask_matches_float32_mask():
    x = randn((5000,), np.float64) + 5
    tops.manual_seed(3)
    a = tops.dropout(x, 0.4)
    tops.manual_seed(3)
    b = tops.dropout(x.astype(np.float32), 0.4)
    assert np.array_equal(a == 0, b == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_p_zero_and_one_and_eval_are_exact(dtype):
    x = special_values(dtype)
    t = torch.from_numpy(x)
    assert_close(tops.dropout(x, 0.0), TF.dropout(t, 0.0))
    assert_close(tops.dropout(x, 1.0), TF.dropout(t, 1.0))  # x * 0: NaN and inf become NaN
    assert tops.dropout(x, 0.5, training=False) is x
    assert_close(tops.dropout(x, 0.5, training=False), TF.dropout(t, 0.5, training=False))


def test_dropped_nan_stays_nan_as_torch():
    x = np.full(64, np.nan, np.float32)
    assert np.isnan(tops.dropout(x, 0.5)).all()
    assert torch.isnan(TF.dropout(torch.from_numpy(x), 0.5)).all()


def test_layouts_and_out():
    x = randn((33, 21), np.float32) + 4
    for name, v in layouts(x):
        tops.manual_seed(5)
        got = tops.dropout(v, 0.5)
        tops.manual_seed(5)
        assert np.array_equal(got, tops.dropout(x, 0.5)), name
    out = np.empty_like(x)
    assert tops.dropout(x, 0.5, out=out) is out


def test_inplace_writes_into_the_input_as_torch():
    """inplace=True writes the result into the input and returns it (torch's, and the
    activations'); without it the input is left alone. The same seed drops the same elements
    either way; a read-only input and out= with inplace=True are refused."""
    x = randn((100,), np.float32)
    keep = x.copy()
    tops.manual_seed(3)
    want = tops.dropout(x, 0.5)
    np.testing.assert_array_equal(x, keep)
    tops.manual_seed(3)
    got = tops.dropout(x, 0.5, inplace=True)
    assert got is x
    np.testing.assert_array_equal(x, want)
    y = randn((10,), np.float32)
    assert tops.dropout(y, 0.5, False, True) is y  # not training: the input, untouched
    t = torch.ones(64)
    tops.dropout(t, 0.5, True, True)
    assert set(t.numpy().tolist()) <= {0.0, 2.0} and (t == 0).any()
    readonly = randn((4,), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="inplace=True needs a writeable input"):
        tops.dropout(readonly, 0.5, inplace=True)
    with pytest.raises(TypeError, match="inplace=True and out= cannot be combined"):
        tops.dropout(y, 0.5, inplace=True, out=np.empty_like(y))


def test_empty():
    assert tops.dropout(np.zeros((0, 3), np.float32), 0.5).shape == (0, 3)


def test_errors():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        tops.dropout(np.zeros(3, np.float32), 1.5)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got -0.1"):
        tops.dropout(np.zeros(3, np.float32), -0.1)
    with pytest.raises(TypeError, match='dropout: "input" has unsupported dtype int64'):
        tops.dropout(np.zeros(3, np.int64), 0.5)
    with pytest.raises(TypeError, match="dropout: p must be a number, got str"):
        tops.dropout(np.zeros(3, np.float32), "0.5")
    with pytest.raises(TypeError, match="manual_seed: expected an int, got float"):
        tops.manual_seed(1.5)


def test_manual_seed_accepts_torch_style_seeds():
    """torch takes seeds from -2^63 to 2^64 - 1 (negatives wrap) and refuses the rest."""
    tops.manual_seed(-1)
    assert tops.initial_seed() == (1 << 64) - 1
    tops.manual_seed((1 << 64) - 1)
    assert tops.initial_seed() == (1 << 64) - 1
    for seed in (1 << 64, 2 ** 70 + 5, -(1 << 63) - 1):
        with pytest.raises(ValueError, match="^Overflow when unpacking long long$"):
            torch.manual_seed(seed)
        with pytest.raises(ValueError, match="^Overflow when unpacking long long$"):
            tops.manual_seed(seed)


def test_module_train_and_eval():
    import tensorops.nn as nn

    m = nn.Dropout(0.25)
    assert repr(m) == repr(torch.nn.Dropout(0.25)) == "Dropout(p=0.25, inplace=False)"
    x = randn((64, 64), np.float32) + 3
    tops.manual_seed(11)
    y = m(x)
    tops.manual_seed(11)
    assert np.array_equal(y, tops.dropout(x, 0.25))
    assert 0.15 < np.mean(y == 0) < 0.35
    assert m.eval()(x) is x
    assert list(m.state_dict()) == []
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_p_as_a_0d_tensor_or_bool():
    """torch takes p as any number: a 0-d tensor or array, or a bool (True drops everything)."""
    x = randn((50,), np.float32)
    np.testing.assert_array_equal(tops.dropout(x, torch.tensor(0.0)), x)
    np.testing.assert_array_equal(tops.dropout(x, np.array(1.0)), np.zeros_like(x))
    np.testing.assert_array_equal(tops.dropout(x, True), np.zeros_like(x))


def test_inplace_reaches_an_unaligned_input():
    """An array not aligned to its item size is written in place too (not a copy of it)."""
    a = np.frombuffer(bytearray(33), np.float32, offset=1, count=8)
    a[:] = 1
    assert tops.dropout(a, 0.5, True, inplace=True) is a
    assert set(a.tolist()) <= {0.0, 2.0} and 0.0 in a.tolist()


def test_training_flag_must_be_a_bool_as_in_torch():
    x = np.ones((4, 5), np.float32)
    for bad in (None, 1, np.True_):
        with pytest.raises(TypeError, match="argument 'train'"):
            TF.dropout(torch.from_numpy(x), 0.5, bad)
        with pytest.raises(TypeError, match=r"dropout\(\): argument 'train' must be bool"):
            tops.nn.functional.dropout(x, 0.5, bad)
