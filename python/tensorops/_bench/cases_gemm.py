"""Matrix products: compute-bound, rated in GFLOP/s (2*M*N*K per product). Square mm from
256 to 2048, BERT-base linear layers (K, N in {768, 3072}) at batch rows M = 1, 8 and 32
with the weight as torch stores it ([N, K]; tensorops does what nn.Linear does, packing it
once, and reading it as it lies for a single row where that is faster; onnxruntime pre-packs it as a
constant), x @ W with a [K, N] weight passed per call at M = 1 and 16, and the
attention-sized bmm."""
from __future__ import annotations

import numpy as np

from ..nn.functional import linear
from ..nn.linear import reads_weight_in_place
from .case import Case, op, randn

FAMILY = "gemm"


def _onnx_matmul(inputs):
    from onnx import helper

    from .onnx_models import IR_VERSION, OPSET

    feeds = {f"x{i}": np.ascontiguousarray(a) for i, a in enumerate(inputs)}
    elem = helper.np_dtype_to_tensor_dtype(inputs[0].dtype)
    graph = helper.make_graph(
        [helper.make_node("MatMul", list(feeds), ["y0"])], "tensorops_bench",
        [helper.make_tensor_value_info(k, elem, list(v.shape)) for k, v in feeds.items()],
        [helper.make_tensor_value_info("y0", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, feeds


def _onnx_linear(inputs):
    """Gemm with transB=1 and the weight and bias as initializers: onnxruntime pre-packs
    constant weights, as an inference deployment would."""
    from onnx import helper, numpy_helper

    from .onnx_models import IR_VERSION, OPSET

    x, weight, bias = inputs
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x0", "w", "b"], ["y0"], transB=1)], "tensorops_bench",
        [helper.make_tensor_value_info("x0", elem, list(x.shape))],
        [helper.make_tensor_value_info("y0", elem, None)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(weight), "w"),
                     numpy_helper.from_array(np.ascontiguousarray(bias), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, {"x0": np.ascontiguousarray(x)}


def _mm(name: str, m: int, k: int, n: int) -> Case:
    """[M, K] @ [K, N] with both operands handed over on every call: the square products, and
    x @ W with W stored [K, N] as NumPy-style code keeps its weights (nothing is packed
    ahead; W streams from wherever it lies)."""
    return Case(
        name=name,
        family=FAMILY,
        setup=lambda dtype: (randn((m, k), dtype, seed=1), randn((k, n), dtype, seed=2)),
        tensorops=op("mm"),
        torch=op("mm"),
        numpy=np.matmul,
        onnx=_onnx_matmul,
        flops=lambda inputs: 2.0 * m * k * n,
    )


def _pack_weight(inputs):
    """Case.prepare: the weight and its copy packed once, as nn.Linear packs it on its first
    forward of more than one row (and as onnxruntime pre-packs the constant weight of its
    Gemm)."""
    import tensorops

    x, weight, bias = inputs
    return x, weight, tensorops.pack_linear_weight(weight), bias


def _linear_as_the_module_does(x, weight, packed, bias):
    """F.linear with the weight nn.Linear would use: as it lies for a single row where
    nn.Linear reads it so (on the thread count of the run), else the packed copy."""
    return linear(x, weight if reads_weight_in_place(x.shape[0], weight) else packed, bias)


def _linear(m: int, k: int, n: int) -> Case:
    return Case(
        name=f"linear_M{m}_K{k}_N{n}",
        family=FAMILY,
        setup=lambda dtype: (randn((m, k), dtype, seed=1), randn((n, k), dtype, seed=2), randn((n,), dtype, seed=3)),
        tensorops=_linear_as_the_module_does,
        prepare=_pack_weight,
        torch=op("nn.functional.linear"),
        numpy=lambda x, w, b: x @ w.T + b,
        onnx=_onnx_linear,
        flops=lambda inputs: 2.0 * m * k * n,
    )


CASES = [
    *[_mm(f"mm_{n}", n, n, n) for n in (256, 512, 1024, 2048)],
    *[_mm(f"mm_M{m}_K768_N3072", m, 768, 3072) for m in (1, 16)],
    *[_linear(m, k, n) for m in (1, 8, 32) for k, n in ((768, 768), (768, 3072), (3072, 768))],
    Case(
        name="bmm_12x128x64x128",
        family=FAMILY,
        setup=lambda dtype: (randn((12, 128, 64), dtype, seed=1), randn((12, 64, 128), dtype, seed=2)),
        tensorops=op("bmm"),
        torch=op("bmm"),
        numpy=np.matmul,
        onnx=_onnx_matmul,
        flops=lambda inputs: 2.0 * 12 * 128 * 64 * 128,
    ),
]
