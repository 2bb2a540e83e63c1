"""Layout changes: pure data movement, so their rate is read plus write bandwidth."""
from __future__ import annotations

from .case import Case, nbytes, op, randn
from .onnx_models import single_node, transpose_copy

FAMILY = "shape"


def _transposed_square(dtype):
    return (randn((4096, 4096), dtype).T,)


def _four_blocks(dtype):
    return ([randn((4096, 1024), dtype, seed=i) for i in range(4)],)


CASES = [
    Case(
        name="contiguous_transposed_4096x4096",
        family=FAMILY,
        setup=_transposed_square,
        tensorops=op("contiguous"),
        torch=lambda x: x.contiguous(),
        numpy=op("ascontiguousarray"),
        onnx=transpose_copy(),
        bytes_moved=lambda inputs: 2 * nbytes(*inputs),
    ),
    Case(
        name="cat_4x4096x1024_dim1",
        family=FAMILY,
        setup=_four_blocks,
        tensorops=op("cat", dim=1),
        torch=op("cat", dim=1),
        numpy=op("concatenate", axis=1),
        onnx=single_node("Concat", axis=1),
        bytes_moved=lambda inputs: 2 * nbytes(*inputs),
    ),
]
