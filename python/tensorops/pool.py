"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d.

torch.nn.functional's signatures and semantics, checked in torch's order with its words.
Inputs are (N, C, H, W) or unbatched (C, H, W); any strides are accepted (rows and planes
may sit anywhere; only a non-unit column stride costs a copy).
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import empty, float_array, is_index, torch_type_name, unpack_error

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]

_ndarray = np.ndarray


def _c_div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero), as torch's checks compute it."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _int_list(value, op: str, name: str, position) -> list:
    """torch's IntArrayRef argument parsing: an int or a sequence of ints. As torch's parser
    does, only a sequence's first element must be a true int; later ones are unpacked as
    indices, which lets a Python bool through as 0 or 1."""
    where = f" (position {position})" if position else ""
    if isinstance(value, (list, tuple)):
        if value and not is_index(value[0]):
            if not position:
                raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__}")
            raise TypeError(f"{op}(): argument '{name}'{where} must be tuple of ints, but found element of type "
                            f"{torch_type_name(value[0])} at pos 0")
        out = []
        for pos, item in enumerate(value):
            if not (isinstance(item, bool) or is_index(item)):
                raise unpack_error(op, name, pos, item)
            out.append(operator.index(item))
        return out
    if not is_index(value):
        raise TypeError(f"{op}(): argument '{name}'{where} must be tuple of ints, not {torch_type_name(value)}")
    return [operator.index(value)]


def _window_ints(*lists) -> None:
    """torch narrows pooling windows to C int: a value outside int32 is refused in its words."""
    if any(not -2**31 <= v < 2**31 for values in lists for v in values):
        raise ShapeError("value cannot be converted to type int without overflow")


def _check_bool(value, op: str, name: str, position) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        where = f" (position {position})" if position else ""
        raise TypeError(f"{op}(): argument '{name}'{where} must be bool, not {type(value).__name__}")
    return bool(value)


def _pair(values: list) -> tuple:
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _pooled_size(size: int, kernel: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, with its checks."""
    if stride == 0:
        raise ShapeError("stride should not be zero")
    if pad < 0:
        raise ShapeError(f"pad must be non-negative, but got pad: {pad}")
    if pad > _c_div((kernel - 1) * dilation + 1, 2):
        raise ShapeError(f"pad should be at most half of effective kernel size, but got pad={pad}, "
                         f"kernel_size={kernel} and dilation={dilation}")
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _shape_check(shape: tuple, kernel, stride, padding, dilation, out_h: int, out_w: int) -> None:
    """torch's pool2d_shape_check."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if kh <= 0 or kw <= 0:
        raise ShapeError(f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}")
    if sh <= 0 or sw <= 0:
        raise ShapeError(f"stride should be greater than zero, but got dH: {sh} dW: {sw}")
    if dh <= 0 or dw <= 0:
        raise ShapeError(f"dilation should be greater than zero, but got dilationH: {dh} dilationW: {dw}")
    ndim = len(shape)
    valid_dims = ndim >= 3 and shape[1] != 0 and shape[2] != 0
    if not ((ndim == 3 and shape[0] != 0 and valid_dims) or (ndim == 4 and valid_dims and shape[3] != 0)):
        raise ShapeError("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:"
                         + _shape_text(shape))
    if kw // 2 < pw or kh // 2 < ph:
        raise ShapeError(f"pad should be smaller than or equal to half of kernel size, but got "
                         f"padW = {pw}, padH = {ph}, kW = {kw}, kH = {kh}")
    if out_h < 1 or out_w < 1:
        planes, h, w = shape[-3:]
        raise ShapeError(f"Given input size: ({planes}x{h}x{w}). Calculated output size: "
                         f"({planes}x{out_h}x{out_w}). Output size is too small")


def _as_batched(x: np.ndarray) -> np.ndarray:
    """A 4-D view with unit column stride (the kernels' one layout requirement)."""
    if x.shape[-1] > 1 and x.strides[-1] != x.itemsize:
        x = np.ascontiguousarray(x)
    return x if x.ndim == 4 else x[None]


def _plain(value) -> bool:
    """An int or a tuple of ints, bools excluded: a window argument whose checked form can be
    remembered, since equal plain values (unlike True and 1) always parse alike."""
    if type(value) is int:
        return True
    if type(value) is not tuple:
        return False
    for item in value:
        if type(item) is not int:
            return False
    return True


class _Geometries(dict):
    """Checked pooling geometries keyed by the raw arguments and the input shape. A call's
    argument checks cost several times a small plane's kernel; a model calls each layer with
    the same arguments every time. Only calls that passed every check are remembered."""

    LIMIT = 512

    def remember(self, key, geometry):
        if len(self) >= self.LIMIT:
            self.clear()
        self[key] = geometry
        return geometry


_max_geometries = _Geometries()
_avg_geometries = _Geometries()


def _max_geometry(shape: tuple, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """max_pool2d's argument checks, in torch's order: (kernel, strides, pads, dilations, out_h, out_w)."""
    op = "max_pool2d"
    kernel = _int_list(kernel_size, op, "kernel_size", 2)
    strides = [] if stride is None else _int_list(stride, op, "stride", 3)
    pads = _int_list(padding, op, "padding", 4)
    dilations = _int_list(dilation, op, "dilation", 5)
    ceil_mode = _check_bool(ceil_mode, op, "ceil_mode", 6)
    _window_ints(kernel, strides, pads, dilations)
    if len(kernel) not in (1, 2):
        raise ShapeError("max_pool2d: kernel_size must either be a single int, or a tuple of two ints")
    if len(strides) not in (0, 1, 2):
        raise ShapeError("max_pool2d: stride must either be omitted, a single int, or a tuple of two ints")
    if len(pads) not in (1, 2):
        raise ShapeError("max_pool2d: padding must either be a single int, or a tuple of two ints")
    if len(dilations) not in (1, 2):
        raise ShapeError("max_pool2d: dilation must be either a single int, or a tuple of two ints")
    kernel = _pair(kernel)
    strides = kernel if not strides else _pair(strides)
    pads, dilations = _pair(pads), _pair(dilations)
    if len(shape) not in (3, 4):
        raise ShapeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    h, w = shape[-2:]
    out_h = _pooled_size(h, kernel[0], pads[0], strides[0], dilations[0], ceil_mode)
    out_w = _pooled_size(w, kernel[1], pads[1], strides[1], dilations[1], ceil_mode)
    _shape_check(shape, kernel, strides, pads, dilations, out_h, out_w)
    return kernel, strides, pads, dilations, out_h, out_w


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling, as torch.nn.functional.max_pool2d (indices are int64, h * W + w per plane)."""
    x = float_array(input, "max_pool2d")
    args = (x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    if ((ceil_mode is False or ceil_mode is True) and _plain(kernel_size) and (stride is None or _plain(stride))
            and _plain(padding) and _plain(dilation)):
        geometry = _max_geometries.get(args) or _max_geometries.remember(args, _max_geometry(*args))
    else:
        geometry = _max_geometry(*args)
    kernel, strides, pads, dilations, out_h, out_w = geometry

    x4 = _as_batched(x)
    shape4 = (x4.shape[0], x4.shape[1], out_h, out_w)
    out = empty(shape4, x.dtype)
    indices = empty(shape4, np.int64) if return_indices else None
    _core.max_pool2d(x4, out, indices, kernel[0], kernel[1], strides[0], strides[1], pads[0], pads[1],
                     dilations[0], dilations[1], ceil_mode)
    if x.ndim == 3:
        out = out[0]
        indices = indices[0] if return_indices else None
    return (out, indices) if return_indices else out


def _size_minus_3(shape: tuple) -> int:
    """input.size(-3), with torch's IndexError on fewer dimensions."""
    ndim = len(shape)
    if ndim == 0:
        raise IndexError("avg_pool2d: Dimension specified as -3 but tensor has no dimensions")
    if ndim < 3:
        raise IndexError(f"avg_pool2d: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got -3)")
    return shape[-3]


def _avg_geometry(shape: tuple, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override) -> tuple:
    """avg_pool2d's argument checks, in torch's order: (kernel, strides, pads, divisor, out_h, out_w)."""
    op = "avg_pool2d"
    kernel = _int_list(kernel_size, op, "kernel_size", 2)
    strides = [] if stride is None else _int_list(stride, op, "stride", None)
    pads = _int_list(padding, op, "padding", None)
    ceil_mode = _check_bool(ceil_mode, op, "ceil_mode", None)
    _check_bool(count_include_pad, op, "count_include_pad", None)
    _window_ints(kernel, strides, pads)
    if divisor_override is not None and (isinstance(divisor_override, bool)
                                         or not hasattr(divisor_override, "__index__")):
        raise TypeError(f"avg_pool2d(): argument 'divisor_override' must be int, not {type(divisor_override).__name__}")
    if len(kernel) not in (1, 2):
        raise ShapeError("avg_pool2d: kernel_size must either be a single int, or a tuple of two ints")
    if len(strides) not in (0, 1, 2):
        raise ShapeError("avg_pool2d: stride must either be omitted, a single int, or a tuple of two ints")
    if len(pads) not in (1, 2):
        raise ShapeError("avg_pool2d: padding must either be a single int, or a tuple of two ints")
    divisor = 0 if divisor_override is None else operator.index(divisor_override)
    if not -2**63 <= divisor < 2**63:
        raise ValueError("Overflow when unpacking long long")  # torch's words for an int64 argument
    if divisor_override is not None and divisor == 0:
        raise ShapeError("avg_pool2d: divisor must be not zero")
    kernel = _pair(kernel)
    strides = kernel if not strides else _pair(strides)
    pads = _pair(pads)
    _size_minus_3(shape)
    h, w = shape[-2:]
    out_h = _pooled_size(h, kernel[0], pads[0], strides[0], 1, ceil_mode)
    out_w = _pooled_size(w, kernel[1], pads[1], strides[1], 1, ceil_mode)
    _shape_check(shape, kernel, strides, pads, (1, 1), out_h, out_w)
    return kernel, strides, pads, divisor, out_h, out_w


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling, as torch.nn.functional.avg_pool2d."""
    x = float_array(input, "avg_pool2d")
    args = (x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if ((ceil_mode is False or ceil_mode is True) and (count_include_pad is True or count_include_pad is False)
            and _plain(kernel_size) and (stride is None or _plain(stride)) and _plain(padding)
            and (divisor_override is None or type(divisor_override) is int)):
        geometry = _avg_geometries.get(args) or _avg_geometries.remember(args, _avg_geometry(*args))
    else:
        geometry = _avg_geometry(*args)
    kernel, strides, pads, divisor, out_h, out_w = geometry

    x4 = _as_batched(x)
    out = empty((x4.shape[0], x4.shape[1], out_h, out_w), x.dtype)
    _core.avg_pool2d(x4, out, kernel[0], kernel[1], strides[0], strides[1], pads[0], pads[1], bool(ceil_mode),
                     bool(count_include_pad), divisor)
    return out[0] if x.ndim == 3 else out


def _output_size(output_size, x: np.ndarray, op: str) -> list:
    """torch.nn.functional's _list_with_default, then the int-list parsing of output_size: a
    Python int, or anything with a length (list, tuple, 1-D array) whose entries are ints or
    None (torch's parser refuses a bool first entry and takes a later one as an int)."""
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        return [output_size, output_size]
    if not hasattr(output_size, "__len__") or getattr(output_size, "ndim", 1) != 1:
        raise TypeError(f"object of type '{type(output_size).__name__}' has no len()")
    if x.ndim <= len(output_size):
        raise ValueError(f"Input dimension should be at least {len(output_size) + 1}")
    defaults = x.shape[x.ndim - len(output_size):]
    sizes = [d if v is None else v for v, d in zip(output_size, defaults)]
    for pos, v in enumerate(sizes):
        if not hasattr(v, "__index__") or (pos == 0 and isinstance(v, bool)):
            raise TypeError(f"{op}(): argument 'output_size' (position 2) must be tuple of ints, but found "
                            f"element of type {type(v).__name__} at pos {pos}")
    return [operator.index(v) for v in sizes]


def _check_nonempty_planes(x: np.ndarray, op: str, dims) -> None:
    for d in dims:
        if x.shape[d] == 0:
            raise ShapeError(f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input has "
                             f"sizes {_shape_text(x.shape)} with dimension {d} being empty")


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling, as torch.nn.functional.adaptive_avg_pool2d."""
    op = "adaptive_avg_pool2d"
    x = float_array(input, op)
    sizes = _output_size(output_size, x, op)
    if len(sizes) != 2:
        raise ShapeError("adaptive_avg_pool2d: output_size must be 2")
    if sizes[0] < 0 or sizes[1] < 0:
        raise ShapeError(f"adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 but "
                         f"received {{{sizes[0]}, {sizes[1]}}}")
    if sizes == [1, 1]:
        # torch computes this case as input.mean((-1, -2), keepdim=True), for any rank >= 2.
        if x.ndim < 2:
            raise IndexError(f"adaptive_avg_pool2d: Dimension out of range (expected to be in range of [{-max(x.ndim, 1)}, "
                             f"{max(x.ndim, 1) - 1}], but got -2)")
        lead = x.shape[:-2]
        # (-1 cannot be inferred when a plane is empty: spell the plane count out.)
        count = math.prod(lead)
        planes = x.reshape((1, count) + x.shape[-2:]) if x.ndim != 4 else x
        planes = _as_batched(planes)
        out = empty(planes.shape[:2] + (1, 1), x.dtype)
        _core.adaptive_avg_pool2d(planes, out)
        return out.reshape(lead + (1, 1))
    if x.ndim not in (3, 4):
        raise ShapeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {_shape_text(x.shape)}")
    _check_nonempty_planes(x, op, (x.ndim - 2, x.ndim - 1))
    x4 = _as_batched(x)
    out = empty((x4.shape[0], x4.shape[1], sizes[0], sizes[1]), x.dtype)
    _core.adaptive_avg_pool2d(x4, out)
    return out[0] if x.ndim == 3 else out


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-D adaptive max pooling, as torch.nn.functional.adaptive_max_pool2d (int64 indices, h * W + w)."""
    op = "adaptive_max_pool2d"
    x = float_array(input, op)
    sizes = _output_size(output_size, x, op)
    if x.ndim not in (3, 4):
        raise ShapeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got: {_shape_text(x.shape)}")
    _check_nonempty_planes(x, op, range(1, x.ndim))
    if len(sizes) != 2:
        raise ShapeError("adaptive_max_pool2d(): internal error: output_size.size() must be 2")
    shape = x.shape[:-2] + tuple(sizes)
    for s in shape:
        if s < 0:
            raise ShapeError(f"Trying to create tensor with negative dimension {s}: {_shape_text(shape)}")
    x4 = _as_batched(x)
    shape4 = (x4.shape[0], x4.shape[1], sizes[0], sizes[1])
    out = empty(shape4, x.dtype)
    indices = empty(shape4, np.int64) if return_indices else None
    _core.adaptive_max_pool2d(x4, out, indices)
    if x.ndim == 3:
        out = out[0]
        indices = indices[0] if return_indices else None
    return (out, indices) if return_indices else out
