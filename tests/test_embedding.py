import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tensorops as tops
from tensorops.embedding import embedding
from reference import DTYPES, assert_close, layouts, randn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 5), (2, 3, 4), ()])
def test_matches_torch(dtype, index_dtype, shape):
    w = randn((11, 6), dtype)
    idx = np.random.default_rng(1).integers(0, 11, shape).astype(index_dtype)
    assert_close(embedding(idx, w), TF.embedding(torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(w)))


def test_layouts_of_indices_and_weight():
    w = randn((13, 9), np.float32)
    idx = np.random.default_rng(2).integers(0, 13, (6, 5))
    want = TF.embedding(torch.from_numpy(idx), torch.from_numpy(w))
    for name, v in layouts(idx):
        assert_close(embedding(v, w), want)
    for name, v in layouts(w):
        assert_close(embedding(idx, v), want)


def test_large_table_and_threads():
    w = randn((3001, 257), np.float32)
    idx = np.random.default_rng(3).integers(0, 3001, (8, 1000))
    before = tops.get_num_threads()
    try:
        tops.set_num_threads(1)
        one = embedding(idx, w)
        tops.set_num_threads(2)
        two = embedding(idx, w)
    finally:
        tops.set_num_threads(before)
    assert one.tobytes() == two.tobytes() == w[idx].tobytes()


def test_torch_inputs_and_padding_idx():
    w = torch.randn(10, 4)
    idx = torch.tensor([[0, 9], [3, 3]])
    assert_close(embedding(idx, w, padding_idx=3), TF.embedding(idx, w, padding_idx=3))
    assert_close(embedding(idx, w, padding_idx=-1), TF.embedding(idx, w, padding_idx=-1))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_max_norm_renormalises_referenced_rows_in_place(norm_type):
    w = randn((8, 5), np.float64, scale=3.0)
    idx = np.array([[1, 2], [2, 6]])
    tw = torch.from_numpy(w.copy())
    want = TF.embedding(torch.from_numpy(idx), tw, max_norm=1.5, norm_type=norm_type)
    got = embedding(idx, w, max_norm=1.5, norm_type=norm_type)
    assert_close(got, want)
    assert_close(w, tw)  # the weight itself was rescaled, exactly the referenced rows


@pytest.mark.parametrize("bad", [5, -1, 2 ** 40])
def test_out_of_range_indices_raise_before_writing(bad):
    w = randn((5, 3), np.float32)
    idx = np.array([0, 1, bad])
    with pytest.raises(IndexError, match="index out of range in self"):
        embedding(idx, w)
    with pytest.raises(IndexError):
        TF.embedding(torch.from_numpy(idx), torch.from_numpy(w))


def test_out_of_range_index_with_max_norm_leaves_weight_untouched():
    w = randn((5, 3), np.float32, scale=10)
    keep = w.copy()
    with pytest.raises(IndexError, match="index out of range in self"):
        embedding(np.array([1, 7]), w, max_norm=1.0)
    assert np.array_equal(w, keep)


def test_errors():
    w = randn((5, 3), np.float32)
    with pytest.raises(TypeError, match="embedding: Expected tensor for argument #1 'indices' to have one of the "
                                        "following scalar types: Long, Int; but got FloatTensor instead"):
        embedding(np.array([1.0], np.float32), w)
    with pytest.raises(tops.ShapeError, match="embedding: 'weight' must be 2-D"):
        embedding(np.array([1]), randn((5,), np.float32))
    with pytest.raises(tops.ShapeError, match="embedding: Padding_idx must be within num_embeddings"):
        embedding(np.array([1]), w, padding_idx=5)
    with pytest.raises(TypeError, match='embedding: "weight" has unsupported dtype int64'):
        embedding(np.array([1]), np.zeros((3, 3), np.int64))


def test_inputs_are_not_modified_without_max_norm():
    w = randn((5, 3), np.float32)
    idx = np.array([4, 0])
    keep_w, keep_i = w.copy(), idx.copy()
    embedding(idx, w)
    assert np.array_equal(w, keep_w) and np.array_equal(idx, keep_i)


def test_module_loads_torch_state_dict_and_matches():
    import tensorops.nn as nn

    tm = torch.nn.Embedding(20, 6, padding_idx=3)
    m = nn.Embedding(20, 6, padding_idx=3)
    assert repr(m) == repr(tm)
    assert np.all(m.weight[3] == 0) and m.weight.dtype == np.float32
    m.load_state_dict(tm.state_dict())
    idx = torch.randint(0, 20, (4, 7))
    assert_close(m(idx), tm(idx).detach())
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight"]


def test_module_options_and_reprs():
    import tensorops.nn as nn

    for args, kwargs in [((10, 3), {"padding_idx": -2, "max_norm": 1.0}),
                         ((10, 3), {"sparse": True, "norm_type": 3.0, "scale_grad_by_freq": True})]:
        assert repr(nn.Embedding(*args, **kwargs)) == repr(torch.nn.Embedding(*args, **kwargs))
    assert nn.Embedding(10, 3, padding_idx=-2).padding_idx == 8
    with pytest.raises(tops.ShapeError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(10, 3, padding_idx=10)


def test_module_max_norm_rescales_its_weight():
    import tensorops.nn as nn

    tm = torch.nn.Embedding(12, 4, max_norm=0.5)
    m = nn.Embedding(12, 4, max_norm=0.5)
    m.load_state_dict(tm.state_dict())
    idx = torch.tensor([[1, 5], [5, 9]])
    assert_close(m(idx), tm(idx).detach())
    assert_close(m.weight, tm.weight.detach())


def test_from_pretrained():
    import tensorops.nn as nn

    w = randn((7, 3), np.float64)
    m = nn.Embedding.from_pretrained(w, padding_idx=1)
    tm = torch.nn.Embedding.from_pretrained(torch.from_numpy(w), padding_idx=1)
    assert repr(m) == repr(tm)
    assert not m.weight.requires_grad and m.weight.dtype == np.float64
    assert np.shares_memory(m.weight, w)  # torch's Parameter(embeddings) shares its storage too
    shared = np.full((3, 2), 5.0, np.float32)
    nn.Embedding.from_pretrained(shared, max_norm=1.0)(np.array([1]))
    assert_close(shared[1], np.full(2, 0.5 ** 0.5, np.float32))  # max_norm rescales the caller's row
    frozen = np.zeros((3, 2), np.float32)
    frozen.flags.writeable = False
    assert not np.shares_memory(nn.Embedding.from_pretrained(frozen).weight, frozen)
    idx = np.array([[0, 6, 1]])
    assert_close(m(idx), tm(torch.from_numpy(idx)).detach())
    assert nn.Embedding.from_pretrained(torch.from_numpy(w), freeze=False).weight.requires_grad
    with pytest.raises(tops.ShapeError, match="Embeddings parameter is expected to be 2-dimensional"):
        nn.Embedding.from_pretrained(np.zeros(3, np.float32))
