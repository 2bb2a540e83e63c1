"""Convolution: conv2d and conv_transpose2d (torch semantics), and filters packed once.

Inputs are NCHW, or unbatched CHW, of any strides (transposed, sliced and reversed views are
read where they lie); weights have torch's layouts, ``[C_out, C_in/groups, KH, KW]`` for
conv2d and ``[C_in, C_out/groups, KH, KW]`` for conv_transpose2d. Every argument is checked
here, in the order torch checks it and in torch's words (prefixed with the op's name), and
the output size is computed here: the C++ kernels (csrc/conv) take the top/left padding and
read the bottom/right padding off the output's shape. That is how ``padding="same"`` with an
even dilated kernel pads one more row and column at the bottom/right, as torch does, and how
conv_transpose2d's ``output_padding`` reaches them.

Three keyword-only extensions, fused into the GEMM epilogue while each output tile is in
cache::

    y = tops.conv2d(x, w, b, padding=1, activation="relu")     # relu(conv2d(x, w) + b)
    y = tops.conv2d(x, w, b, padding=1, residual=h)            # conv2d(x, w) + b + h
    pw = tops.pack_conv_weight(w)                              # reorder the filter once ...
    y = tops.conv2d(x, pw, b, padding=1, out=y)                # ... reuse it on every call

``activation`` is None, ``"relu"``, ``"gelu"`` (exact, erf), ``"gelu_tanh"`` or ``"silu"``,
applied last: ``act(conv + bias + residual)``; ``residual`` broadcasts to the output's shape;
``out=`` takes a C-contiguous array of the output's shape and dtype.
"""
from __future__ import annotations

import math
import operator
import weakref
from typing import NamedTuple

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import (empty, finish, float_array, is_index, result_buffer, torch_dtype_name, torch_type_name,
                        unpack_error)
from .gemm import epilogue_activation

__all__ = ["conv2d", "conv_transpose2d", "pack_conv_weight"]

PackedConvWeight = _core.PackedConvWeight


# ---- argument parsing: torch's Python argument parser ---------------------------------------

_INT64_MAX = 2**63 - 1


def _index(value) -> int:
    """An int argument as torch's parser reads it, into an int64."""
    value = operator.index(value)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValueError("Overflow when unpacking long long")
    return value


def _int_list(value, op: str, name: str) -> list:
    """An int-list argument as torch parses it: an int n is [n, n]; a sequence is kept as it
    is, whatever its length (which torch checks later, against the weight's rank)."""
    if isinstance(value, (list, tuple)):
        for pos, item in enumerate(value):
            if pos > 0 and isinstance(item, bool):
                continue  # torch unpacks the elements after the first as indices: True is 1
            if not is_index(item):
                if pos > 0:
                    raise unpack_error(op, name, pos, item)
                raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, but found element of type "
                                f"{torch_type_name(item)} at pos 0")
        return [_index(item) for item in value]
    if not is_index(value):
        raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__}")
    return [_index(value)] * 2


def _int_arg(value, op: str, name: str) -> int:
    if not is_index(value):
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__}")
    return _index(value)


def _expand(values: list, name: str, dims: int, op: str) -> list:
    """One value per spatial dim of the weight (torch's expand_param_if_needed)."""
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        raise ShapeError(f"{op}: expected {name} to be a single integer value or a list of {dims} values to match the "
                         f"convolution dimensions, but got {name}={values}")
    return values


def _shape_text(shape) -> str:
    return str(list(shape))


# ---- torch's checks, in torch's order --------------------------------------------------------

def _check_geometry(op: str, wshape, groups: int, stride: list, padding: list, dilation: list,
                    output_padding: list) -> tuple:
    """torch's _convolution up to check_shape_forward's parameter checks: the weight's rank,
    groups, each int list against the weight's spatial dims, then signs. Returns the lists,
    one entry per spatial dim."""
    if len(wshape) < 3:
        raise ShapeError(f"{op}: weight should have at least three dimensions")
    if groups <= 0:
        raise ShapeError(f"{op}: non-positive groups is not supported")
    dims = len(wshape) - 2
    stride = _expand(stride, "stride", dims, op)
    padding = _expand(padding, "padding", dims, op)
    dilation = _expand(dilation, "dilation", dims, op)
    output_padding = _expand(output_padding, "output_padding", dims, op)
    if min(padding) < 0:
        raise ShapeError(f"{op}: negative padding is not supported")
    if min(output_padding) < 0:
        raise ShapeError(f"{op}: negative output_padding is not supported")
    if min(stride) <= 0:
        raise ShapeError(f"{op}: non-positive stride is not supported")
    if min(dilation) < 0:  # zero is refused later, where torch's kernels refuse it
        raise ShapeError(f"{op}: dilation should be greater than zero")
    return stride, padding, dilation, output_padding


def _check_weight_groups(op: str, shown, wshape, groups: int) -> None:
    if len(wshape) != len(shown):
        raise ShapeError(f"{op}: Expected {len(wshape)}-dimensional input for {len(wshape)}-dimensional weight "
                         f"{_shape_text(wshape)}, but got {len(shown)}-dimensional input of size {_shape_text(shown)} "
                         f"instead")
    if wshape[0] < groups:
        raise ShapeError(f"{op}: Given groups={groups}, expected weight to be at least {groups} at dimension 0, but got "
                         f"weight of size {_shape_text(wshape)} instead")
    if wshape[0] % groups:
        raise ShapeError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                         f"got weight of size [{_shape_text(wshape)}] instead")


def _check_kernel_nonzero(op: str, wshape) -> None:
    if wshape[2] <= 0 or wshape[3] <= 0:
        raise ShapeError(f"{op}: kernel size should be greater than zero, but got kernel_height: {wshape[2]} "
                         f"kernel_width: {wshape[3]}")


def _empty_batch_or_channels(op: str, shown) -> bool:
    """Whether the input is empty along the batch or channel dim (torch then skips the
    kernels and returns an empty result); an input empty only along H or W is an error."""
    if shown[0] == 0 or shown[1] == 0:
        return True
    if 0 in shown:
        raise ShapeError(f"{op}: Only zero batch or zero channel inputs are supported, but got input shape: "
                         f"{_shape_text(shown)}")
    return False


def _check_weight_dtype(op: str, x: np.ndarray, wdtype) -> None:
    # torch words a weight mismatch by its backend; this is its reference (non-oneDNN) wording.
    if wdtype != x.dtype:
        raise TypeError(f"{op}: expected scalar type {torch_dtype_name(x.dtype, True)} but found "
                        f"{torch_dtype_name(wdtype, True)}")


def _check_bias_dtype(op: str, x: np.ndarray, b) -> None:
    if b is not None and b.dtype != x.dtype:
        raise TypeError(f"{op}: Input type ({torch_dtype_name(x.dtype)}) and bias type ({torch_dtype_name(b.dtype)}) "
                        f"should be the same")


# ---- shared plumbing ---------------------------------------------------------------------------

def _weight(weight, op: str, transposed: bool):
    """(weight for the kernel, its shape, its dtype): an aligned float array, or a packed
    filter, which must have been packed for this op."""
    if isinstance(weight, PackedConvWeight):
        if weight.transposed != transposed:
            kind = "conv_transpose2d" if weight.transposed else "conv2d"
            raise ShapeError(f"{op}: the weight was packed for {kind} (pack_conv_weight(..., "
                             f"transposed={weight.transposed}))")
        return weight, tuple(weight.weight_shape), np.dtype(weight.dtype)
    w = float_array(weight, op, "weight")
    return w, w.shape, w.dtype


def _check_packed_geometry(op: str, weight, groups: int, stride, padding, dilation) -> None:
    """A packed filter serves calls with its groups; a transposed one also only its stride,
    padding and dilation, which decided how its taps were split into stride phases. Checked
    before torch's checks, which would word a mismatch as a wrong input or weight."""
    if not isinstance(weight, PackedConvWeight):
        return
    packed = {"groups": weight.groups}
    called = {"groups": groups}
    if weight.transposed:
        packed.update(stride=tuple(weight.stride), padding=tuple(weight.padding), dilation=tuple(weight.dilation))
        called.update(stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation))
    if packed != called:
        text = ", ".join(f"{k}={v}" for k, v in packed.items())
        used = ", ".join(f"{k}={v}" for k, v in called.items())
        raise ShapeError(f"{op}: the weight was packed for {text}, but this call has {used}")


def _batched(x: np.ndarray, op: str) -> np.ndarray:
    """x as 4-D NCHW (an unbatched CHW input gains a batch of one), with torch's rank check."""
    if x.ndim not in (3, 4):
        raise ShapeError(f"{op}: Expected 3D (unbatched) or 4D (batched) input to {op}, but got input of size: "
                         f"{_shape_text(x.shape)}")
    return x if x.ndim == 4 else x[None]


def _residual(residual, shape: tuple, x: np.ndarray, op: str):
    """residual broadcast (zero strides, no copy) to the output's shape, or None."""
    if residual is None:
        return None
    r = float_array(residual, op, "residual")
    if r.dtype != x.dtype:
        raise TypeError(f"{op}: residual has dtype {r.dtype}, expected {x.dtype}")
    try:
        return np.broadcast_to(r, shape)
    except ValueError:
        raise ShapeError(f"{op}: residual of shape {_shape_text(r.shape)} does not broadcast to the output shape "
                         f"{_shape_text(shape)}") from None


def _run(kernel, x: np.ndarray, x4: np.ndarray, w, b, shape4: tuple, geometry: tuple, groups: int, act: int,
         residual, out, empty_input: bool, op: str):
    """Allocates (or checks) the output, then runs the kernel unless the result is empty."""
    shape = shape4 if x.ndim == 4 else shape4[1:]
    if max(shape) > _INT64_MAX or math.prod(shape) * x.itemsize > _INT64_MAX:
        raise ShapeError(f"{op}: an output of shape {_shape_text(shape)} is too large to allocate")
    r = _residual(residual, shape, x, op)
    result, final = result_buffer(out, shape, x.dtype, (x, None if isinstance(w, PackedConvWeight) else w, b, r), op)
    if not empty_input:
        result4 = result if x.ndim == 4 else result[None]
        r4 = r if r is None or x.ndim == 4 else r[None]
        stride, padding, dilation = geometry
        kernel(x4, w, b, result4, tuple(stride), tuple(padding), tuple(dilation), groups, act, r4)
    return finish(result, final)


# ---- conv2d ------------------------------------------------------------------------------------

def _same_padding(op: str, x4: np.ndarray, wshape, stride: list, dilation: list) -> tuple:
    """torch's convolution_same: (padding, the input shape torch's checks then see). The
    total padding per dim is dilation * (kernel - 1); an odd total puts the extra row or
    column at the bottom/right, which torch pads onto the input before convolving."""
    if len(wshape) < 3:
        raise ShapeError(f"{op}: weight should have at least three dimensions")
    if len(wshape) != x4.ndim:
        raise ShapeError(f"{op}: Expected {len(wshape)}-dimensional input for {len(wshape)}-dimensional weight"
                         f"{_shape_text(wshape)}, but got {x4.ndim}-dimensional input of size {_shape_text(x4.shape)} "
                         f"instead")
    dims = len(wshape) - 2
    if len(stride) not in (1, dims):
        raise ShapeError(f"{op}: stride cannot broadcast to {dims} dimensions")
    if len(dilation) not in (1, dims):
        raise ShapeError(f"{op}: dilation cannot broadcast to {dims} dimensions")
    if any(s != 1 for s in stride):
        raise ShapeError(f"{op}: padding='same' is not supported for strided convolutions")
    dilation = _expand(dilation, "dilation", dims, op)
    padding, shown = [], list(x4.shape)
    for i in range(dims):
        total = dilation[i] * (wshape[i + 2] - 1)
        left = total // 2
        padding.append(left)
        shown[i + 2] += total - 2 * left
    return padding, shown


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None, residual=None,
           out=None):
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d: input (N, C_in, H, W)
    or (C_in, H, W), weight [C_out, C_in/groups, KH, KW] or ``pack_conv_weight``'s result,
    ``padding`` an int, a pair, ``"valid"`` or ``"same"`` (stride 1 only). Extensions:
    ``activation``, ``residual`` and ``out`` (see the module docstring)."""
    if activation is None and residual is None and out is None and type(weight) is PackedConvWeight:
        memo = _KEPT_CALLS.get(weight)
        if memo is None:
            memo = _KEPT_CALLS.setdefault(weight, [None])
        return conv2d_repeated(memo, input, weight, bias, stride, padding, dilation, groups)
    op = "conv2d"
    act = epilogue_activation(activation, op)
    x, w, b, plan = _cached_conv2d_plan(input, weight, bias, stride, padding, dilation, groups)
    return run_conv2d(plan, x, w, b, act, residual, out)


# ---- plans of repeated calls -------------------------------------------------------------------

class _KeptCall(NamedTuple):
    """What conv2d_repeated keeps of the last call: the objects its plan was made for (the
    packed filter by a weak reference), the input's shape and dtype, and the bias as the
    kernel takes it (a plain view of the caller's array, so its values stay current)."""
    weight: weakref.ref
    bias: object
    stride: object
    padding: object
    dilation: object
    groups: object
    shape: tuple
    dtype: np.dtype
    kernel_bias: object
    plan: "Conv2dPlan"


def conv2d_repeated(memo: list, input, weight, bias, stride, padding, dilation, groups):
    """conv2d for a caller that passes the same arguments again and again (nn.Conv2d, or a
    loop over F.conv2d with a packed filter): ``memo``, a one-element list, holds the
    _KeptCall of the last call, and a call with the very same packed filter, bias and
    argument objects and an input of the same shape and dtype goes straight to the kernel: on
    a small layer the checks and the plan's key cost as much as the kernel. Any other call
    takes conv2d's path and refreshes the memo. Only objects that cannot change unseen are
    kept: a packed filter, a bias that the kernel reads in place (or None), and int, str or
    tuple arguments (a list could be edited between calls)."""
    last = memo[0]
    if (last is not None and type(input) is np.ndarray and last.weight() is weight and last.bias is bias
            and last.stride is stride and last.padding is padding and last.dilation is dilation
            and last.groups is groups and input.shape == last.shape and input.dtype == last.dtype
            and input.flags.aligned):
        return run_conv2d(last.plan, input, weight, last.kernel_bias)
    x, w, b, plan = _cached_conv2d_plan(input, weight, bias, stride, padding, dilation, groups)
    if (x is input and isinstance(w, PackedConvWeight) and w is weight
            and (bias is None or _views_all_of(b, bias))
            and type(stride) in _KEPT_ARGUMENTS and type(padding) in _KEPT_ARGUMENTS
            and type(dilation) in _KEPT_ARGUMENTS and type(groups) is int):
        memo[0] = _KeptCall(weakref.ref(weight), bias, stride, padding, dilation, groups, input.shape, input.dtype, b,
                            plan)
    return run_conv2d(plan, x, w, b)


_KEPT_ARGUMENTS = (int, str, tuple)


def _views_all_of(view: np.ndarray, array) -> bool:
    """view is array, or a plain view of exactly array's elements (as float_array makes of
    a Parameter, whose own base is the array it marks): the kernel then reads every later
    in-place change of array."""
    if view is array:
        return True
    if not isinstance(array, np.ndarray) or view.base is None:
        return False
    owner = array if array.base is None else array.base
    return (view.base is owner and view.shape == array.shape and view.strides == array.strides
            and view.__array_interface__["data"][0] == array.__array_interface__["data"][0])


# conv2d's kept call per packed filter (conv2d_repeated): a loop that passes the same packed
# filter, bias and argument objects skips the checks as nn.Conv2d does (5.4 -> 3.1 us per
# call on a 16-channel depthwise layer). Weakly keyed, so a memo (and the bias it holds) goes
# with its filter.
_KEPT_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_PLANS: dict = {}
_PLANS_MAX = 256


def _exact_ints(value):
    """value as a hashable key when it is an int, a padding string or a tuple or list of ints
    (what a repeated call passes), else None. Only exact ints: a float or bool that equals
    an int must still reach the parser, which refuses it."""
    kind = type(value)
    if kind is int or kind is str:
        return value
    if kind is tuple or kind is list:
        for item in value:
            if type(item) is not int:
                return None
        return tuple(value)
    return None


def _cached_conv2d_plan(input, weight, bias, stride, padding, dilation, groups) -> tuple:
    """conv2d_plan, remembered for calls whose input, weight and bias have the same shapes
    and dtypes and whose int arguments are the same: they pass the same checks (which cost
    more than the kernel on small layers), so only the arrays themselves are read again."""
    args = (_exact_ints(stride), _exact_ints(padding), _exact_ints(dilation), groups if type(groups) is int else None)
    if None in args:
        return conv2d_plan(input, weight, bias, stride, padding, dilation, groups)
    x = float_array(input, "conv2d")
    if isinstance(weight, PackedConvWeight):
        w, wkey = weight, (weight.key,)
    else:
        w = float_array(weight, "conv2d", "weight")
        wkey = (w.shape, w.dtype)
    b = None if bias is None else float_array(bias, "conv2d", "bias")
    key = (x.shape, x.dtype, wkey, None if b is None else (b.shape, b.dtype), args)
    plan = _PLANS.get(key)
    if plan is None:
        x, w, b, plan = conv2d_plan(x, w, b, stride, padding, dilation, groups)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = plan
    return x, w, b, plan


class Conv2dPlan(NamedTuple):
    """What conv2d's checks establish about one call beyond its arrays: the output shape of
    the 4-D call, the (stride, padding, dilation) pairs, groups and whether the input is
    empty. It holds for any later call whose input, weight and bias have the same shapes and
    dtypes and whose int arguments are the same, which is what lets nn.Conv2d skip the
    checks on a repeated call (the checks cost more than the kernel on small layers)."""
    shape4: tuple
    geometry: tuple
    groups: int
    empty_input: bool
    allocatable: bool  # the output's size fits an int64 (else _run raises)


def conv2d_plan(input, weight, bias, stride, padding, dilation, groups) -> tuple:
    """conv2d's argument parsing and torch's checks, in torch's order: (x, weight for the
    kernel, bias, Conv2dPlan)."""
    op = "conv2d"
    stride = _int_list(stride, op, "stride")
    pad_mode = padding if isinstance(padding, str) else None
    padding = None if pad_mode is not None else _int_list(padding, op, "padding")
    dilation = _int_list(dilation, op, "dilation")
    groups = _int_arg(groups, op, "groups")
    x = float_array(input, op)
    w, wshape, wdtype = _weight(weight, op, transposed=False)
    b = None if bias is None else float_array(bias, op, "bias")
    _check_bias_dtype(op, x, b)
    x4 = _batched(x, op)
    shown = list(x4.shape)
    if pad_mode == "same":
        padding, shown = _same_padding(op, x4, wshape, stride, dilation)
    elif pad_mode == "valid":
        padding = [0]
    elif pad_mode is not None:
        raise ShapeError(f"{op}: Invalid padding string: {pad_mode!r}")
    stride, padding, dilation, _ = _check_geometry(op, wshape, groups, stride, padding, dilation, [0, 0])
    _check_packed_geometry(op, w, groups, stride, padding, dilation)
    _check_weight_groups(op, shown, wshape, groups)
    if shown[1] != wshape[1] * groups:
        raise ShapeError(f"{op}: Given groups={groups}, weight of size {_shape_text(wshape)}, expected "
                         f"input{_shape_text(shown)} to have {wshape[1] * groups} channels, but got {shown[1]} channels "
                         f"instead")
    if b is not None and (b.ndim != 1 or b.shape[0] != wshape[0]):
        raise ShapeError(f"{op}: Given weight of size {_shape_text(wshape)}, expected bias to be 1-dimensional with "
                         f"{wshape[0]} elements, but got bias of size {_shape_text(b.shape)} instead")
    padded = [shown[i + 2] + 2 * padding[i] for i in range(2)]
    extent = [dilation[i] * (wshape[i + 2] - 1) + 1 for i in range(2)]
    if padded[0] < extent[0] or padded[1] < extent[1]:
        raise ShapeError(f"{op}: Calculated padded input size per channel: ({padded[0]} x {padded[1]}). Kernel size: "
                         f"({extent[0]} x {extent[1]}). Kernel size can't be greater than actual input size")
    _check_kernel_nonzero(op, wshape)
    _check_weight_dtype(op, x, wdtype)
    empty_input = _empty_batch_or_channels(op, shown)
    if not empty_input and (dilation[0] == 0 or dilation[1] == 0):
        raise ShapeError(f"{op}: non-positive dilation is not supported")
    out_hw = [(padded[i] - extent[i]) // stride[i] + 1 for i in range(2)]
    # torch reports zero output channels for an input with zero channels, whatever the weight.
    channels = 0 if shown[1] == 0 else wshape[0]
    shape4 = (shown[0], channels, out_hw[0], out_hw[1])
    geometry = tuple(tuple(v) for v in (stride, padding, dilation))
    allocatable = max(shape4) <= _INT64_MAX and math.prod(shape4) * x.itemsize <= _INT64_MAX
    return x, w, b, Conv2dPlan(shape4, geometry, groups, empty_input, allocatable)


def run_conv2d(plan: Conv2dPlan, x: np.ndarray, w, b, act: int = 0, residual=None, out=None):
    """Runs a conv2d call that conv2d_plan has checked (x, w and b as it returned them)."""
    if residual is None and out is None and plan.allocatable and not plan.empty_input:
        result = empty(plan.shape4, x.dtype)
        if x.ndim == 4:
            _core.conv2d(x, w, b, result, *plan.geometry, plan.groups, act, None)
            return result
        _core.conv2d(x[None], w, b, result, *plan.geometry, plan.groups, act, None)
        return result[0]
    return _run(_core.conv2d, x, _batched(x, "conv2d"), w, b, plan.shape4, plan.geometry, plan.groups, act, residual,
                out, plan.empty_input, "conv2d")


# ---- conv_transpose2d --------------------------------------------------------------------------

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     activation=None, residual=None, out=None):
    """Transposed 2-D convolution, as torch.nn.functional.conv_transpose2d: input (N, C_in, H, W)
    or (C_in, H, W), weight [C_in, C_out/groups, KH, KW] or ``pack_conv_weight(...,
    transposed=True)``'s result; the output is ((H - 1) * stride - 2 * padding + dilation *
    (KH - 1) + output_padding + 1) high, and as wide by the same rule. Extensions:
    ``activation``, ``residual`` and ``out`` (see the module docstring)."""
    op = "conv_transpose2d"
    act = epilogue_activation(activation, op)
    stride = _int_list(stride, op, "stride")
    padding = _int_list(padding, op, "padding")
    output_padding = _int_list(output_padding, op, "output_padding")
    groups = _int_arg(groups, op, "groups")
    dilation = _int_list(dilation, op, "dilation")
    x = float_array(input, op)
    w, wshape, wdtype = _weight(weight, op, transposed=True)
    b = None if bias is None else float_array(bias, op, "bias")
    x4 = _batched(x, op)
    shown = x4.shape
    stride, padding, dilation, output_padding = _check_geometry(op, wshape, groups, stride, padding, dilation,
                                                                output_padding)
    _check_packed_geometry(op, w, groups, stride, padding, dilation)
    _check_weight_groups(op, shown, wshape, groups)
    if shown[1] != wshape[0]:
        raise ShapeError(f"{op}: Given transposed=1, weight of size {_shape_text(wshape)}, expected "
                         f"input{_shape_text(shown)} to have {wshape[0]} channels, but got {shown[1]} channels instead")
    channels = wshape[1] * groups
    if b is not None and (b.ndim != 1 or b.shape[0] != channels):
        raise ShapeError(f"{op}: Given transposed=1, weight of size {_shape_text(wshape)}, expected bias to be "
                         f"1-dimensional with {channels} elements, but got bias of size {_shape_text(b.shape)} instead")
    _check_kernel_nonzero(op, wshape)
    _check_weight_dtype(op, x, wdtype)
    _check_bias_dtype(op, x, b)
    empty_input = _empty_batch_or_channels(op, shown)
    out_hw = [(shown[i + 2] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (wshape[i + 2] - 1)
              + output_padding[i] + 1 for i in range(2)]
    shape4 = (shown[0], channels, out_hw[0], out_hw[1])
    if empty_input:
        for index, size in enumerate(shape4):
            if size < 0:
                raise ShapeError(f"{op}: invalid shape dimension {size} at index {index} of shape {_shape_text(shape4)}")
    else:
        _check_transposed_kernel_args(op, shown, wshape, stride, dilation, output_padding, out_hw)
    return _run(_core.conv_transpose2d, x, x4, w, b, shape4, (stride, padding, dilation), groups, act, residual, out,
                empty_input, op)


def _check_transposed_kernel_args(op: str, shown, wshape, stride, dilation, output_padding, out_hw) -> None:
    """What torch's transposed-convolution kernel checks before it runs, in its order."""
    if dilation[0] <= 0 or dilation[1] <= 0:
        raise ShapeError(f"{op}: dilation should be greater than zero, but got dilation_height: {dilation[0]}, "
                         f"dilation_width: {dilation[1]}")
    if wshape[1] == 0:
        raise ShapeError(f"{op}: non-empty 2D or 4D weight tensor expected, but got: {_shape_text(wshape)}")
    if any(p >= s and p >= d for p, s, d in zip(output_padding, stride, dilation)):
        raise ShapeError(f"{op}: output padding must be smaller than either stride or dilation, but got "
                         f"output_padding_height: {output_padding[0]} output_padding_width: {output_padding[1]} "
                         f"stride_height: {stride[0]} stride_width: {stride[1]} dilation_height: {dilation[0]} "
                         f"dilation_width: {dilation[1]}")
    if out_hw[0] < 1 or out_hw[1] < 1:
        raise ShapeError(f"{op}: Given input size per channel: ({shown[2]} x {shown[3]}). Calculated output size per "
                         f"channel: ({out_hw[0]} x {out_hw[1]}). Output size is too small")


# ---- packing -----------------------------------------------------------------------------------

def pack_conv_weight(weight, groups=1, transposed=False, stride=1, padding=0, dilation=1):
    """Packs a conv2d filter [C_out, C_in/groups, KH, KW] (or, with ``transposed=True``, a
    conv_transpose2d filter [C_in, C_out/groups, KH, KW]) once into the layout the
    convolution kernels read; pass the result in place of the weight, with the same
    ``groups``. A conv2d filter serves any stride, padding and dilation; a transposed one
    only the ``stride``, ``padding`` and ``dilation`` it was packed with, which decide how its
    taps split into stride phases. Like ``pack_linear_weight``, the packed copy does not
    follow later changes to ``weight``."""
    op = "pack_conv_weight"
    groups = _int_arg(groups, op, "groups")
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"{op}(): argument 'transposed' must be bool, not {type(transposed).__name__}")
    stride = _int_list(stride, op, "stride")
    padding = _int_list(padding, op, "padding")
    dilation = _int_list(dilation, op, "dilation")
    w = float_array(weight, op, "weight")
    if w.ndim != 4:
        layout = "[C_in, C_out/groups, KH, KW]" if transposed else "[C_out, C_in/groups, KH, KW]"
        raise ShapeError(f"{op}: weight must be 4-D {layout}, got {w.ndim}-D")
    stride, padding, dilation, _ = _check_geometry(op, w.shape, groups, stride, padding, dilation, [0, 0])
    if w.shape[0] < groups or w.shape[0] % groups:
        raise ShapeError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                         f"but got weight of size [{_shape_text(w.shape)}] instead")
    _check_kernel_nonzero(op, w.shape)
    if dilation[0] == 0 or dilation[1] == 0:
        raise ShapeError(f"{op}: non-positive dilation is not supported")
    return PackedConvWeight(w, groups, bool(transposed), tuple(stride), tuple(padding), tuple(dilation))
