"""Pooling over NCHW planes: memory-bound (the input read once, the smaller output
written), with BASELINE.md's shapes: the seed's small pools, ResNet's 3x3/2 stem pool at
batch 8, and ResNet-50's global average pool."""
from __future__ import annotations

from .case import Case, nbytes, op, randn
from .onnx_models import single_node

FAMILY = "pool"


def _pool_bytes(kernel: int, stride: int):
    def bytes_moved(inputs) -> int:
        (x,) = inputs
        n, c, h, w = x.shape
        out_h, out_w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        return nbytes(x) + n * c * out_h * out_w * x.itemsize

    return bytes_moved


def _windowed(kind: str, shape: tuple, kernel: int = 3, stride: int = 2) -> Case:
    onnx_op = "MaxPool" if kind == "max" else "AveragePool"
    return Case(
        name=f"{kind}pool{kernel}s{stride}_{'x'.join(map(str, shape))}",
        family=FAMILY,
        setup=lambda dtype: (randn(shape, dtype),),
        tensorops=op(f"nn.functional.{kind}_pool2d", kernel_size=kernel, stride=stride),
        torch=op(f"nn.functional.{kind}_pool2d", kernel_size=kernel, stride=stride),
        onnx=single_node(onnx_op, kernel_shape=[kernel, kernel], strides=[stride, stride]),
        bytes_moved=_pool_bytes(kernel, stride),
    )


_GLOBAL = (8, 2048, 7, 7)

CASES = [
    _windowed("max", (20, 16, 50, 32)),
    _windowed("avg", (20, 16, 50, 32)),
    _windowed("max", (8, 64, 112, 112)),
    _windowed("avg", (8, 64, 112, 112)),
    Case(
        name="adaptiveavgpool1_8x2048x7x7",
        family=FAMILY,
        setup=lambda dtype: (randn(_GLOBAL, dtype),),
        tensorops=op("nn.functional.adaptive_avg_pool2d", output_size=1),
        torch=op("nn.functional.adaptive_avg_pool2d", output_size=1),
        numpy=lambda x: x.mean(axis=(2, 3), keepdims=True),
        onnx=single_node("GlobalAveragePool"),
        bytes_moved=lambda inputs: nbytes(inputs[0]) + _GLOBAL[0] * _GLOBAL[1] * inputs[0].itemsize,
    ),
]
