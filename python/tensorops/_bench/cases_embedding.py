"""Embedding lookups: a gather of whole rows, memory-bound. BERT-base's word table
(30522 x 768) looked up by a batch of 8 sequences of 128 tokens."""
from __future__ import annotations

import numpy as np

from .case import Case, op, randn

FAMILY = "embedding"
_VOCAB, _DIM, _BATCH, _SEQ = 30522, 768, 8, 128


def _setup(dtype):
    indices = np.random.default_rng(1).integers(0, _VOCAB, (_BATCH, _SEQ)).astype(np.int64)
    return (indices, randn((_VOCAB, _DIM), dtype))


def _rows_read_and_written(inputs) -> int:
    indices, weight = inputs
    return 2 * indices.size * weight.shape[1] * weight.itemsize + indices.nbytes


def _onnx_gather(inputs):
    from onnx import helper

    from .onnx_models import IR_VERSION, OPSET

    indices, weight = inputs
    feeds = {"weight": np.ascontiguousarray(weight), "indices": np.ascontiguousarray(indices)}
    graph = helper.make_graph(
        [helper.make_node("Gather", ["weight", "indices"], ["y0"], axis=0)],
        "tensorops_bench",
        [helper.make_tensor_value_info("weight", helper.np_dtype_to_tensor_dtype(weight.dtype), list(weight.shape)),
         helper.make_tensor_value_info("indices", helper.np_dtype_to_tensor_dtype(indices.dtype), list(indices.shape))],
        [helper.make_tensor_value_info("y0", helper.np_dtype_to_tensor_dtype(weight.dtype), None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, feeds


CASES = [
    Case(
        name=f"embedding_{_VOCAB}x{_DIM}_idx{_BATCH}x{_SEQ}",
        family=FAMILY,
        setup=_setup,
        tensorops=op("nn.functional.embedding"),
        torch=op("nn.functional.embedding"),
        numpy=lambda indices, weight: weight[indices],
        onnx=_onnx_gather,
        bytes_moved=_rows_read_and_written,
    ),
]
