import numpy as np
import pytest
import torch

import tensorops as tops
from reference import DTYPES, ODD_SIZES, assert_close, layouts, randn, special_values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ODD_SIZES)
def test_relu_sizes(dtype, n):
    x = randn((n,), dtype)
    assert_close(tops.relu(x), torch.relu(torch.from_numpy(x)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_layouts_and_special_values(dtype):
    x = randn((5, 7, 3), dtype)
    for name, v in layouts(x):
        assert_close(tops.relu(v), torch.relu(torch.from_numpy(x)))
    s = special_values(dtype)
    assert_close(tops.relu(s), torch.relu(torch.from_numpy(s)))
