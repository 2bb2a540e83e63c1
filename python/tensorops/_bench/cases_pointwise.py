"""Pointwise maps and activations: memory-bound at these sizes (one read, one write per
element), except ``add_1elem``, which measures the cost of one call."""
from __future__ import annotations

import numpy as np

from .case import Case, nbytes, op, randn
from .onnx_models import single_node

FAMILY = "pointwise"


def _one_in_one_out(inputs) -> int:
    (x,) = inputs
    return 2 * x.nbytes


def _numpy_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_softmax_lastdim(x):
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _bcast_add_bytes(inputs) -> int:
    x, bias = inputs
    return 2 * x.nbytes + bias.nbytes


def _square_16m(dtype):
    return (randn((4096, 4096), dtype),)


CASES = [
    Case(
        name="relu_16M",
        family=FAMILY,
        setup=_square_16m,
        tensorops=op("relu"),
        torch=op("relu"),
        numpy=lambda x: np.maximum(x, 0),
        onnx=single_node("Relu"),
        bytes_moved=_one_in_one_out,
    ),
    Case(
        name="sigmoid_16M",
        family=FAMILY,
        setup=_square_16m,
        tensorops=op("sigmoid"),
        torch=op("sigmoid"),
        numpy=_numpy_sigmoid,
        onnx=single_node("Sigmoid"),
        bytes_moved=_one_in_one_out,
    ),
    Case(
        name="gelu_16M",
        family=FAMILY,
        setup=_square_16m,
        tensorops=op("nn.functional.gelu"),
        torch=op("nn.functional.gelu"),
        onnx=single_node("Gelu", approximate="none"),
        bytes_moved=_one_in_one_out,
    ),
    Case(
        name="add_bcast_8x256x56x56+256x1x1",
        family=FAMILY,
        setup=lambda dtype: (randn((8, 256, 56, 56), dtype), randn((256, 1, 1), dtype, seed=1)),
        tensorops=op("add"),
        torch=op("add"),
        numpy=op("add"),
        onnx=single_node("Add"),
        bytes_moved=_bcast_add_bytes,
    ),
    Case(
        name="add_1elem",
        family=FAMILY,
        setup=lambda dtype: (randn((1,), dtype), randn((1,), dtype, seed=1)),
        tensorops=op("add"),
        torch=op("add"),
        numpy=op("add"),
    ),
    Case(
        name="softmax_lastdim_8x12x128x128",
        family=FAMILY,
        setup=lambda dtype: (randn((8, 12, 128, 128), dtype),),
        tensorops=op("nn.functional.softmax", dim=-1),
        torch=op("softmax", dim=-1),
        numpy=_numpy_softmax_lastdim,
        onnx=single_node("Softmax", axis=-1),
        bytes_moved=lambda inputs: 2 * nbytes(*inputs),
    ),
]
