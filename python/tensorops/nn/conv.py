"""Convolution layers: torch.nn.Conv2d and torch.nn.ConvTranspose2d over tensorops' conv ops.

Constructor arguments and their checks (with torch's messages), parameter shapes and
state_dict keys, initialisation, ``extra_repr``, ``padding_mode`` and ConvTranspose2d's
``output_size`` all follow torch. A ``padding_mode`` other than "zeros" pads the input the
way torch's F.pad does (reflect, replicate or circular, with its checks) and then convolves
without padding.

Each layer packs its filter (``tensorops.pack_conv_weight``) on its first forward and keeps
it, as ``nn.Linear`` does; the packed copy is dropped whenever the weight is replaced - by
``load_state_dict`` (of any module: the weight may be shared), by assigning
``self.weight``, by ``to(dtype)`` or by in-place arithmetic on the parameter
(``m.weight *= 2``) - and remade when what it was packed for changes (groups, the kernel set
in use, and a transposed filter's stride, padding and dilation). Writes into the array
itself (through an index, ``np.copyto``, or another name for it) are invisible to the
module: call ``m.reset_packed_weight()`` after those. A transposed layer's packed filter also
holds the weight dense, for calls on images small next to the filter (a generator's latent
layer), which multiply every input pixel by the whole filter instead of per stride phase.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
import operator

import numpy as np

from .. import _core
from .._core import ShapeError
from .._validate import as_array, float_array, module_device, module_dtype
from ..conv import conv2d_repeated, pack_conv_weight
from . import functional as F
from ._packed import PackedLayer

__all__ = ["Conv2d", "ConvTranspose2d"]


def _pair(value) -> tuple:
    """torch's _pair: an iterable (list, tuple, array, range) as a tuple, anything else
    repeated twice."""
    return tuple(value) if isinstance(value, Iterable) else (value, value)


_PADDING_STRINGS = ("same", "valid")
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _set_text(names) -> str:
    return "{" + ", ".join(repr(name) for name in names) + "}"


class _ConvNd(PackedLayer):
    """What Conv2d and ConvTranspose2d share: torch's _ConvNd constructor, parameters,
    initialisation, repr and the packed filter."""

    def __init__(self, in_channels, out_channels, kernel_size: tuple, stride: tuple, padding, dilation: tuple,
                 transposed: bool, output_padding: tuple, groups, bias: bool, padding_mode: str, device, dtype):
        super().__init__()
        # Integers first (TypeError for anything else, an array included), then torch's checks.
        in_channels, out_channels, groups = (operator.index(v) for v in (in_channels, out_channels, groups))
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        # torch prints Python sets of these, in an order that varies from process to process;
        # these messages list them in a fixed order.
        if isinstance(padding, str):
            if padding not in _PADDING_STRINGS:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {_set_text(_PADDING_STRINGS)}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if not isinstance(padding_mode, str) or padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_set_text(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        module_device(device, type(self).__name__)
        dtype = module_dtype(dtype, type(self).__name__)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = self._padding_for_pad()
        if transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *kernel_size)
        self._create_parameters(shape, self.out_channels if bias else None, dtype)

    def _padding_for_pad(self) -> list:
        """torch's _reversed_padding_repeated_twice: [left, right, top, bottom], what F.pad
        takes; "same" splits each total dilation * (kernel - 1) with the odd one at the end."""
        if not isinstance(self.padding, str):
            return [p for p in reversed(self.padding) for _ in range(2)]
        pads = [0, 0] * len(self.kernel_size)
        if self.padding == "same":
            for i, (d, k) in enumerate(zip(reversed(self.dilation), reversed(self.kernel_size))):
                total = d * (k - 1)
                pads[2 * i], pads[2 * i + 1] = total // 2, total - total // 2
        return pads

    def reset_parameters(self) -> None:
        """torch's initialisation: weight and bias uniform in +-1/sqrt(fan_in), with fan_in
        the weight's size(1) times its kernel area (for ConvTranspose2d too, as torch
        computes it)."""
        self._init_uniform(math.prod(self.weight.shape[1:]))

    def _packed_weight(self):
        """The filter packed for the current groups and kernel set (and, transposed, the
        current stride, padding and dilation), packed now if it is not yet. A filter that
        cannot be packed goes to the functional op as it is, which refuses it in torch's
        words."""
        geometry = (self.stride, self.padding, self.dilation) if self.transposed else ()
        key = (self.groups, _core.active_isa(), *geometry)
        packed = self._kept_packing(key)
        if packed is not None:
            return packed
        try:
            packed = pack_conv_weight(self.weight, self.groups, self.transposed, *geometry)
        except ShapeError:
            return self.weight
        self._keep_packing(packed, key)
        return packed

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, padding_mode='zeros', device=None, dtype=None)``:
    ``forward(x)`` is ``F.conv2d`` with the layer's filter, packed once; ``padding`` may be
    ``"same"`` or ``"valid"``; ``padding_mode`` is "zeros", "reflect", "replicate" or
    "circular"."""

    # The plan of the last call (conv2d_repeated's memo) is derived from the weights too.
    _derived_state = _ConvNd._derived_state + ("_plan_memo",)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, _pair(kernel_size), _pair(stride),
                         padding if isinstance(padding, str) else _pair(padding), _pair(dilation), False, (0, 0),
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        weight = self._packed_weight()
        if self.padding_mode == "zeros":
            memo = self.__dict__.get("_plan_memo")
            if memo is None:
                memo = self.__dict__["_plan_memo"] = [None]
            return conv2d_repeated(memo, input, weight, self._parameters["bias"], self.stride, self.padding,
                                   self.dilation, self.groups)
        padded = _pad(input, self._reversed_padding_repeated_twice, self.padding_mode)
        return F.conv2d(padded, weight, self.bias, self.stride, (0, 0), self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """``torch.nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', device=None,
    dtype=None)``: ``forward(x, output_size=None)`` is ``F.conv_transpose2d`` with the layer's
    filter, packed once; ``output_size`` (the output's (H, W), optionally with its leading
    dims) picks the output_padding that reaches it, as torch does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        # (compared only as a string: an array would be compared element by element)
        if not isinstance(padding_mode, str) or padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, _pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation),
                         True, _pair(output_padding), groups, bias, padding_mode, device, dtype)

    def forward(self, input, output_size=None):
        if self.padding_mode != "zeros":
            raise ValueError("Only `zeros` padding mode is supported for ConvTranspose2d")
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self._packed_weight(), self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        """torch's _ConvTransposeNd._output_padding: the layer's output_padding, or the one
        that makes the output ``output_size``, which must lie within one stride of the
        smallest output."""
        if output_size is None:
            return self.output_padding
        x = as_array(input, "ConvTranspose2d")
        leading = 2 if x.ndim == 4 else 1
        if len(output_size) == leading + 2:
            output_size = output_size[leading:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2D: for {x.ndim}D input, output_size must have 2 or {leading + 2} elements "
                             f"(got {len(output_size)})")
        smallest = [(_size(x, d + leading) - 1) * self.stride[d] - 2 * self.padding[d]
                    + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(2)]
        largest = [smallest[d] + self.stride[d] - 1 for d in range(2)]
        for d in range(2):
            if not smallest[d] <= output_size[d] <= largest[d]:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes range from {smallest} to "
                                 f"{largest} (for an input of torch.Size({list(x.shape[2:])}))")
        return [output_size[d] - smallest[d] for d in range(2)]


def _size(x: np.ndarray, dim: int) -> int:
    """x.shape[dim] with torch's IndexError for a dim past the rank."""
    if dim >= x.ndim:
        raise IndexError(f"ConvTranspose2d: Dimension out of range (expected to be in range of [{-x.ndim}, "
                         f"{x.ndim - 1}], but got {dim})")
    return x.shape[dim]


# ---- padding modes: what torch's F.pad does for them ----------------------------------------

_NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad(input, pads: list, mode: str) -> np.ndarray:
    """input (C, H, W) or (N, C, H, W) padded by pads = [left, right, top, bottom] in ``mode``,
    with F.pad's checks and messages; negative pads crop, as in torch."""
    x = float_array(input, "Conv2d")
    if len(pads) != 4:  # a padding of one or of three values
        raise ShapeError("Conv2d: expected padding to be a single integer value or a list of 2 values to match the "
                         f"convolution dimensions, but got padding={[pads[i] for i in range(len(pads) - 2, -1, -2)]}")
    if x.ndim not in (3, 4):
        raise ShapeError(f"Padding size 4 is not supported for {x.ndim}D input tensor.\n"
                         "Supported combinations for non-constant padding:\n"
                         "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
                         "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
                         "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    left, right, top, bottom = pads
    if mode == "circular":
        for size, before, after in ((x.shape[-2], top, bottom), (x.shape[-1], left, right)):
            if before > size or after > size:
                raise ShapeError("Padding value causes wrapping around more than once.")
    else:
        planes = x.shape[1:] if x.ndim == 4 else x.shape
        if 0 in planes:
            raise ShapeError("Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
                             f"dimensions for input, but got: {list(x.shape)}")
        if mode == "reflect":
            for argument, dim, before, after in ((4, x.ndim - 1, left, right), (6, x.ndim - 2, top, bottom)):
                if before >= x.shape[dim] or after >= x.shape[dim]:
                    raise ShapeError(f"Argument #{argument}: Padding size should be less than the corresponding input "
                                     f"dimension, but got: padding ({before}, {after}) at dimension {dim} of input "
                                     f"{list(x.shape)}")
    h, w = x.shape[-2:]
    crop_top, crop_bottom, crop_left, crop_right = (max(-p, 0) for p in (top, bottom, left, right))
    if h - crop_top - crop_bottom < 0 or w - crop_left - crop_right < 0:
        raise ShapeError("Negative padding value is resulting in an empty dimension")
    cropped = x[..., crop_top:h - crop_bottom, crop_left:w - crop_right]
    widths = [(0, 0)] * (x.ndim - 2) + [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
    return np.pad(cropped, widths, mode=_NUMPY_PAD_MODES[mode])
