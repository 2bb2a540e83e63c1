"""Convolution: compute-bound, rated in GFLOP/s (2 multiply-adds' worth per filter tap and
output pixel: 2 * N * C_out * OH * OW * C_in/groups * KH * KW, and for the transposed op
2 * N * C_in * H * W * C_out/groups * KH * KW). The shapes: the seed's two examples of
torch's Conv2d docs, ResNet-50's stem and bottleneck layers at batch 1 and 8, depthwise
layers (MobileNetV2's 3x3 at stride 1 and 2, EfficientNet-B0's 5x5 at stride 2, ConvNeXt's
7x7), the seed's ConvTranspose2d example and two DCGAN generator layers (the 1x1 latent
under a 4x4 filter, and 512 -> 256 at 4x4).

tensorops runs the packed filter, packed once outside the timed region as nn.Conv2d packs it
on its first call; torch runs F.conv2d on the plain weight (its oneDNN path reorders the
filter per call, which is how a torch module runs) and onnxruntime a Conv node whose weight
and bias are initializers. The ``_unpacked`` cases give tensorops the plain weight too, so
it packs the filter inside every call, as torch-style functional code calls it (onnxruntime
keeps its initializers there). Each case also reports the workspace its calls needed: over
the kernels' per-thread workspaces, the sum of the largest request each had during the
case's measurement (the workspaces themselves grow to the largest request seen and are
kept, so what they hold also covers the cases before). The packed copy of a plain weight
that an ``_unpacked`` call makes for itself is not workspace and is not in the figure.
"""
from __future__ import annotations

from .case import Case, op, randn
from .onnx_models import constant_weights

FAMILY = "conv"


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _mark_workspace() -> None:
    from tensorops import _core

    _core.mark_workspace_requests()


def _workspace() -> dict:
    from tensorops import _core

    return {"workspace_bytes": _core.workspace_requested_bytes()}


def _packer(groups: int, transposed: bool, geometry: dict):
    """Case.prepare: the filter (the second input) packed once, as a module packs it; a
    transposed filter is packed for the call's stride, padding and dilation."""

    def pack(inputs):
        import tensorops

        x, weight, bias = inputs
        placement = geometry if transposed else {}
        return x, tensorops.pack_conv_weight(weight, groups, transposed, **placement), bias

    return pack


def _case(name: str, function: str, x_shape: tuple, w_shape: tuple, channels: int, geometry: dict, onnx_op: str,
          flops: float, packed: bool = True) -> Case:
    """``function`` (conv2d or conv_transpose2d) on inputs (x, weight, bias), the same call in
    tensorops (with the packed filter, or the plain one unless ``packed``) and
    torch.nn.functional."""
    (kh, kw), (sh, sw), (ph, pw) = w_shape[2:], geometry["stride"], geometry["padding"]
    groups = geometry.get("groups", 1)
    onnx_attributes = dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw], group=groups)
    if "dilation" in geometry:
        onnx_attributes["dilations"] = list(geometry["dilation"])
    return Case(
        name=name,
        family=FAMILY,
        setup=lambda dtype: (randn(x_shape, dtype, seed=1), randn(w_shape, dtype, seed=2), randn((channels,), dtype, seed=3)),
        tensorops=op(function, **geometry),
        torch=op(f"nn.functional.{function}", **geometry),
        onnx=constant_weights(onnx_op, **onnx_attributes),
        flops=lambda inputs: flops,
        prepare=_packer(groups, function == "conv_transpose2d", geometry) if packed else None,
        mark=_mark_workspace,
        extra=_workspace,
    )


def _conv2d(name: str, batch: int, in_channels: int, out_channels: int, size, kernel, stride=1, padding=0,
            dilation=1, groups: int = 1, packed: bool = True) -> Case:
    (h, w), (kh, kw) = _pair(size), _pair(kernel)
    geometry = dict(stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), groups=groups)
    out_h, out_w = ((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, p, d, k, s in
                    zip((h, w), geometry["padding"], geometry["dilation"], (kh, kw), geometry["stride"]))
    flops = 2.0 * batch * out_channels * out_h * out_w * (in_channels // groups) * kh * kw
    return _case(name, "conv2d", (batch, in_channels, h, w), (out_channels, in_channels // groups, kh, kw),
                 out_channels, geometry, "Conv", flops, packed)


def _conv_transpose2d(name: str, batch: int, in_channels: int, out_channels: int, size, kernel, stride=1,
                      padding=0, packed: bool = True) -> Case:
    (h, w), (kh, kw) = _pair(size), _pair(kernel)
    geometry = dict(stride=_pair(stride), padding=_pair(padding))
    flops = 2.0 * batch * in_channels * h * w * out_channels * kh * kw
    return _case(name, "conv_transpose2d", (batch, in_channels, h, w), (in_channels, out_channels, kh, kw),
                 out_channels, geometry, "ConvTranspose", flops, packed)


def _resnet50(batch: int) -> list:
    suffix = f"_b{batch}"
    return [
        _conv2d("r50_stem7x7" + suffix, batch, 3, 64, 224, 7, stride=2, padding=3),
        _conv2d("r50_3x3_64_56" + suffix, batch, 64, 64, 56, 3, padding=1),
        _conv2d("r50_1x1_256to64_56" + suffix, batch, 256, 64, 56, 1),
        _conv2d("r50_3x3_256_14" + suffix, batch, 256, 256, 14, 3, padding=1),
        _conv2d("r50_1x1_1024to256_14" + suffix, batch, 1024, 256, 14, 1),
        _conv2d("r50_3x3_512_7" + suffix, batch, 512, 512, 7, 3, padding=1),
        _conv2d("r50_1x1_2048to512_7" + suffix, batch, 2048, 512, 7, 1),
    ]


CASES = [
    _conv2d("conv_seed_16x33_k3s2", 20, 16, 33, (50, 100), 3, stride=2),
    _conv2d("conv_seed_16x33_k3x5_dil", 20, 16, 33, (50, 100), (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)),
    *_resnet50(1),
    *_resnet50(8),
    _conv2d("mbv2_dw3x3_c144_56", 1, 144, 144, 56, 3, padding=1, groups=144),
    _conv2d("mbv2_dw3x3_c960_7", 1, 960, 960, 7, 3, padding=1, groups=960),
    _conv2d("mbv2_dw3x3s2_c144_56", 1, 144, 144, 56, 3, stride=2, padding=1, groups=144),
    _conv2d("effnet_dw5x5s2_c144_56", 1, 144, 144, 56, 5, stride=2, padding=2, groups=144),
    _conv2d("convnext_dw7x7_c96_56", 1, 96, 96, 56, 7, padding=3, groups=96),
    _conv2d("r50_3x3_512_7_b1_unpacked", 1, 512, 512, 7, 3, padding=1, packed=False),
    _conv2d("mbv2_dw3x3_c144_56_unpacked", 1, 144, 144, 56, 3, padding=1, groups=144, packed=False),
    _conv_transpose2d("convT_seed_16x33_k3s2", 20, 16, 33, (50, 100), 3, stride=2),
    _conv_transpose2d("convT_dcgan_512to256_k4s2p1", 32, 512, 256, 4, 4, stride=2, padding=1),
    _conv_transpose2d("convT_dcgan_512to256_k4s2p1_b1_unpacked", 1, 512, 256, 4, 4, stride=2, padding=1,
                      packed=False),
    _conv_transpose2d("convT_dcgan_latent_100to512_k4_b64", 64, 100, 512, 1, 4),
]
