"""Small ONNX graphs built in memory for the cases where one ONNX operator (or a short
chain) computes what the case computes.

A builder takes the case's NumPy inputs and returns ``(ModelProto, feeds)``; it decides
the feeds because the ONNX form of a case can start from a different layout (the
contiguous-copy case feeds the untransposed array and lets ``Transpose`` do the copy).
Opset 20 has ``Gelu`` and takes reduction axes as an input tensor.
"""
from __future__ import annotations

import numpy as np

OPSET = 20
# IR version 9 is the one that opset 20 requires; newer IR versions can be ahead of the
# installed onnxruntime.
IR_VERSION = 9


def _flat_inputs(inputs) -> list:
    flat = []
    for value in inputs:
        if isinstance(value, (list, tuple)):
            flat.extend(value)
        else:
            flat.append(value)
    return flat


def _model(nodes, feeds: dict, outputs: int, initializers=()):
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(next(iter(feeds.values())).dtype)
    graph = helper.make_graph(
        nodes,
        "tensorops_bench",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for name, a in feeds.items()],
        [helper.make_tensor_value_info(f"y{i}", elem, None) for i in range(outputs)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, feeds


def single_node(op_type: str, **attributes):
    """One ``op_type`` node taking every input in order (unary and binary maps, Softmax,
    Concat of a list)."""

    def build(inputs):
        from onnx import helper

        feeds = {f"x{i}": np.ascontiguousarray(a) for i, a in enumerate(_flat_inputs(inputs))}
        node = helper.make_node(op_type, list(feeds), ["y0"], **attributes)
        return _model([node], feeds, 1)

    return build


def reduction(op_type: str, axes=None):
    """``op_type`` over ``axes`` (all axes when None), dims not kept."""

    def build(inputs):
        from onnx import helper, numpy_helper

        (x,) = inputs
        feeds = {"x0": np.ascontiguousarray(x)}
        if axes is None:
            node = helper.make_node(op_type, ["x0"], ["y0"], keepdims=0)
            return _model([node], feeds, 1)
        axes_tensor = numpy_helper.from_array(np.asarray(axes, dtype=np.int64), "axes")
        node = helper.make_node(op_type, ["x0", "axes"], ["y0"], keepdims=0)
        return _model([node], feeds, 1, [axes_tensor])

    return build


def transpose_copy():
    """A contiguous copy of a transposed 2-D view: feed the array the view was taken
    from and let ``Transpose`` write the transposed layout."""

    def build(inputs):
        from onnx import helper

        (view,) = inputs
        base = view.T
        if not base.flags.c_contiguous:
            raise ValueError("transpose_copy: expects the transpose of a C-contiguous 2-D array")
        node = helper.make_node("Transpose", ["x0"], ["y0"], perm=[1, 0])
        return _model([node], {"x0": base}, 1)

    return build


def constant_weights(op_type: str, **attributes):
    """One ``op_type`` node on the first input, with the other inputs as initializers in
    order: the constant weights of a deployed model, which onnxruntime may pre-pack."""

    def build(inputs):
        from onnx import numpy_helper, helper

        x, *params = inputs
        names = [f"w{i}" for i in range(len(params))]
        node = helper.make_node(op_type, ["x0", *names], ["y0"], **attributes)
        initializers = [numpy_helper.from_array(np.ascontiguousarray(p), name) for p, name in zip(params, names)]
        return _model([node], {"x0": np.ascontiguousarray(x)}, 1, initializers)

    return build
