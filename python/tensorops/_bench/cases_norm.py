"""Normalization layers: memory-bound (statistics and normalisation in one read and one
write of the input), with BASELINE.md's shapes."""
from __future__ import annotations

import numpy as np

from .case import Case, op, randn

FAMILY = "norm"


def _read_write(inputs) -> int:
    return 2 * inputs[0].nbytes


def _channels(shape, dtype, seed=3):
    c = shape[1]
    rng = np.random.default_rng(seed)
    return (randn(shape, dtype), rng.standard_normal(c).astype(dtype), np.abs(rng.standard_normal(c)).astype(dtype) + 0.5,
            rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype))


def _onnx_norm(op_type: str, params, **attributes):
    """One normalisation node on the input with its parameters as initializers (constant
    weights, as in a deployed model). ``params(inputs)`` lists the parameter arrays in the
    node's input order."""

    def build(inputs):
        from onnx import helper, numpy_helper

        from .onnx_models import IR_VERSION, OPSET

        x = np.ascontiguousarray(inputs[0])
        elem = helper.np_dtype_to_tensor_dtype(x.dtype)
        arrays = params(inputs)
        names = [f"p{i}" for i in range(len(arrays))]
        graph = helper.make_graph(
            [helper.make_node(op_type, ["x0", *names], ["y0"], **attributes)], "tensorops_bench",
            [helper.make_tensor_value_info("x0", elem, list(x.shape))],
            [helper.make_tensor_value_info("y0", elem, None)],
            initializer=[numpy_helper.from_array(np.ascontiguousarray(a), n) for a, n in zip(arrays, names)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model, {"x0": x}

    return build


def _batchnorm(shape, training: bool) -> Case:
    name = "train" if training else "eval"

    def torch_call(x, mean, var, weight, bias):
        import torch

        # Training updates the running statistics in place: give torch copies, as tensorops
        # writes into its own (NumPy) copies through the same call below.
        return torch.nn.functional.batch_norm(x, mean.clone(), var.clone(), weight, bias, training)

    def tops_call(x, mean, var, weight, bias):
        import tensorops.nn.functional as F

        return F.batch_norm(x, mean.copy(), var.copy(), weight, bias, training)

    return Case(
        name=f"batchnorm_{name}_{'x'.join(map(str, shape))}",
        family=FAMILY,
        setup=lambda dtype: _channels(shape, dtype),
        tensorops=tops_call,
        torch=torch_call,
        # ONNX Runtime's BatchNormalization is inference only.
        onnx=None if training else _onnx_norm("BatchNormalization", lambda i: (i[3], i[4], i[1], i[2])),
        bytes_moved=_read_write,
    )


_LN = (8, 128, 768)
_IN = (20, 100, 35, 45)
_GN = (8, 256, 56, 56)

CASES = [
    _batchnorm(_IN, False),
    _batchnorm(_IN, True),
    _batchnorm(_GN, False),
    _batchnorm(_GN, True),
    Case(
        name="layernorm_8x128x768",
        family=FAMILY,
        setup=lambda dtype: (randn(_LN, dtype), np.ones(768, dtype), np.zeros(768, dtype)),
        tensorops=lambda x, w, b: __import__("tensorops").nn.functional.layer_norm(x, (768,), w, b),
        torch=lambda x, w, b: __import__("torch").nn.functional.layer_norm(x, (768,), w, b),
        onnx=_onnx_norm("LayerNormalization", lambda i: (i[1], i[2]), axis=-1),
        bytes_moved=_read_write,
    ),
    Case(
        name="instancenorm_20x100x35x45",
        family=FAMILY,
        setup=lambda dtype: (randn(_IN, dtype),),
        tensorops=op("nn.functional.instance_norm"),
        torch=op("nn.functional.instance_norm"),
        onnx=_onnx_norm("InstanceNormalization", lambda i: (np.ones(_IN[1], i[0].dtype), np.zeros(_IN[1], i[0].dtype))),
        bytes_moved=_read_write,
    ),
    Case(
        name="groupnorm_g32_8x256x56x56",
        family=FAMILY,
        setup=lambda dtype: (randn(_GN, dtype),),
        tensorops=op("nn.functional.group_norm", num_groups=32),
        torch=op("nn.functional.group_norm", num_groups=32),
        bytes_moved=_read_write,
    ),
]
