"""Normalisation: batch_norm, instance_norm, group_norm and layer_norm.

The signatures are torch.nn.functional's, and so are the values, the in-place updates of
running statistics and the error messages. Two keyword-only tensorops extensions:

- ``activation=None | "relu" | "silu"`` applies that activation to the normalised output in
  the same pass (what a Conv-BN-ReLU block needs), instead of a second sweep over memory.
- ``out=`` writes the result into a preallocated C-contiguous array of the input's shape and
  dtype.

Running statistics (``running_mean``, ``running_var``) are updated in place in training mode,
through the arrays passed in (NumPy arrays or torch tensors, any stride), with PyTorch's
momentum convention ``running = (1 - momentum) * running + momentum * batch_statistic`` and
the unbiased batch variance. ``momentum=None`` (cumulative averaging) belongs to the modules,
which count batches and pass the matching float.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import FLOAT_DTYPES, aligned, as_array, check_float, check_out, empty, python_scalar, readable_beside

__all__ = ["batch_norm", "instance_norm", "group_norm", "layer_norm"]

_ACTIVATIONS = {None: 0, "relu": 1, "silu": 2}
_ndarray = np.ndarray
_FLOAT32 = np.dtype(np.float32)


def _activation(activation, op: str) -> int:
    code = _ACTIVATIONS.get(activation) if isinstance(activation, (str, type(None))) else None
    if code is None:
        raise ShapeError(f"{op}: activation must be None, 'relu' or 'silu', got {activation!r}")
    return code


def _input(input, op: str) -> np.ndarray:
    x = as_array(input, op)
    check_float(x, op)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return aligned(x)


def _float(value, op: str, arg: str, position: int) -> float:
    value = python_scalar(value)
    if isinstance(value, float):
        return value
    if isinstance(value, (numbers.Real, np.bool_)):
        return float(value)
    raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be float, not {type(value).__name__}")


def _bool(value, op: str, arg: str, position: int) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be bool, not {type(value).__name__}")


def _torch_size(shape) -> str:
    return f"torch.Size({list(shape)})"


def _mixed_dtype(x: np.ndarray, op: str):
    if x.dtype == _FLOAT32:
        return TypeError(f"{op}: mixed dtype (CPU): expect parameter to have scalar type of Float")
    return TypeError(f"{op}: mixed dtype (CPU): all inputs must share same datatype.")


def _param(p, x: np.ndarray, op: str, arg: str) -> np.ndarray:
    """weight / bias as a contiguous array of the input's dtype (shape checked by the caller).
    Plain Python sequences take the input's dtype; arrays must have it already, as in torch."""
    if type(p) is not _ndarray:
        if hasattr(p, "dtype") or hasattr(p, "__dlpack__"):
            p = as_array(p, op, arg)
        else:
            p = np.asarray(as_array(p, op, arg), dtype=x.dtype)
    if p.dtype != x.dtype:
        raise _mixed_dtype(x, op)
    if not p.flags.c_contiguous:
        p = np.ascontiguousarray(p)
    return aligned(p)


def _running(r, x: np.ndarray, expected: int, op: str, arg: str, reported: int | None = None,
             any_float: bool = False) -> np.ndarray:
    """A running statistic: a 1-D array of the input's dtype (of either float dtype with
    `any_float`), kept as given (any stride) so that training updates it in place. `reported`
    scales the counts in the message (torch's instance_norm reports the sizes of its
    per-instance copies)."""
    if not (isinstance(r, _ndarray) or hasattr(r, "__dlpack__")):
        raise TypeError(f"{op}(): argument '{arg}' must be an array, not {type(r).__name__}")
    r = as_array(r, op, arg)
    if r.size != expected:
        scale = 1 if reported is None else reported
        raise ShapeError(f"{op}: {arg} should contain {expected * scale} elements not {r.size * scale}")
    if r.ndim != 1:
        raise ShapeError(f"{op}: TensorAccessor expected 1 dims but tensor has {r.ndim} ({arg})")
    if r.dtype != x.dtype and not (any_float and r.dtype in FLOAT_DTYPES):
        raise _mixed_dtype(x, op)
    return r


def _output(out, x: np.ndarray, op: str) -> tuple:
    """(the array the kernel writes, the input it reads): out= checked, and the input copied
    where out overlaps it other than element for element (readable_beside)."""
    if out is None:
        return empty(x.shape, x.dtype), x
    return check_out(out, x.shape, x.dtype, op), readable_beside(x, out)


def _channels_or_raise(x: np.ndarray, running_mean, op: str) -> int:
    """C for an input of at least 2 dims; torch's errors for 0-d and 1-d inputs otherwise."""
    if x.ndim >= 2:
        return x.shape[1]
    if running_mean is not None:
        count = as_array(running_mean, op, "running_mean").size
        if count != 0:
            raise ShapeError(f"{op}: running_mean should contain 0 elements not {count}")
    rank = max(x.ndim, 1)
    raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got 1)")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
               *, activation=None, out=None):
    """Batch normalisation over every dim but the channel dim (dim 1), as
    torch.nn.functional.batch_norm. In training mode the batch statistics normalise the
    input and, when given, ``running_mean`` / ``running_var`` are updated in place."""
    op = "batch_norm"
    x = _input(input, op)
    training = _bool(training, op, "training", 6)
    momentum = _float(momentum, op, "momentum", 7)
    eps = _float(eps, op, "eps", 8)
    act = _activation(activation, op)
    shape = x.shape
    if training and x.ndim >= 1:
        values = shape[0]
        for s in shape[2:]:
            values *= s
        if values == 1:
            raise ShapeError(f"Expected more than 1 value per channel when training, got input size {_torch_size(shape)}")
    if training and eps <= 0.0:
        raise ShapeError(f"{op} eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ShapeError(f"{op} eps must be non-negative, but got {eps}")
    if x.size == 0 and running_mean is None and running_var is None:
        return _output(out, x, op)[0]  # torch hands an empty input back before it looks for statistics
    if not training:
        if running_mean is None:
            raise ShapeError(f"{op}: running_mean must be defined in evaluation mode")
        if running_var is None:
            raise ShapeError(f"{op}: running_var must be defined in evaluation mode")
    if (running_mean is None) != (running_var is None):
        raise ShapeError(f"{op}: running_mean and running_var must either both be None or neither be None")
    channels = _channels_or_raise(x, running_mean, op)
    if running_mean is not None:
        running_mean = _running(running_mean, x, channels, op, "running_mean")
        running_var = _running(running_var, x, channels, op, "running_var")
    weight = _channel_param(weight, x, channels, op, "weight")
    bias = _channel_param(bias, x, channels, op, "bias")
    result, x = _output(out, x, op)
    _core.batch_norm(x, result, weight, bias, running_mean, running_var, training, momentum, eps, act)
    return result


def _channel_param(p, x: np.ndarray, channels: int, op: str, arg: str, reported: int = 1):
    """batch_norm / instance_norm weight or bias: any shape with C elements, as torch."""
    if p is None:
        return None
    p = _param(p, x, op, arg)
    if p.size != channels:
        raise ShapeError(f"{op}: {arg} should contain {channels * reported} elements not {p.size * reported}")
    return p.reshape(-1)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5, *, activation=None, out=None):
    """Instance normalisation: each (sample, channel) plane normalised by its own statistics,
    as torch.nn.functional.instance_norm. With ``use_input_stats`` the running statistics, when
    given, move towards the batch average of the per-instance statistics (in place); without
    it the running statistics normalise the input."""
    op = "instance_norm"
    x = _input(input, op)
    use_input_stats = _bool(use_input_stats, op, "use_input_stats", 6)
    momentum = _float(momentum, op, "momentum", 7)
    eps = _float(eps, op, "eps", 8)
    act = _activation(activation, op)
    shape = x.shape
    if use_input_stats:
        spatial = 1
        for s in shape[2:]:
            spatial *= s
        if spatial == 1:
            raise ShapeError(f"Expected more than 1 spatial element when training, got input size {_torch_size(shape)}")
    elif running_mean is None or running_var is None:
        raise ShapeError(f"{op}: Expected running_mean and running_var to be defined when use_input_stats is false")
    if (running_mean is None) != (running_var is None):
        raise ShapeError(f"{op}: running_mean and running_var must either both be None or neither be None")
    channels = _channels_or_raise(x, running_mean, op)
    batch = shape[0]
    # torch repeats the per-channel arguments over the batch and reports those sizes.
    given = None
    if running_mean is not None:
        running_mean = _running(running_mean, x, channels, op, "running_mean", batch, any_float=True)
        running_var = _running(running_var, x, channels, op, "running_var", batch, any_float=True)
        if running_mean.dtype != x.dtype or running_var.dtype != x.dtype:
            # torch takes running statistics of the other float dtype (its per-instance copies
            # are made in the input's): computed in copies, written back cast.
            given = running_mean, running_var
            running_mean, running_var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    weight = _channel_param(weight, x, channels, op, "weight", batch)
    bias = _channel_param(bias, x, channels, op, "bias", batch)
    result, x = _output(out, x, op)
    if use_input_stats and batch == 0 and running_mean is not None:
        # torch averages the instances' statistics over the batch: over no instance, NaN.
        for running in (running_mean, running_var):
            running[...] = (1 - momentum) * running + momentum * np.nan
    else:
        _core.instance_norm(x, result, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, act)
    if given is not None and use_input_stats:
        np.copyto(given[0], running_mean, casting="unsafe")
        np.copyto(given[1], running_var, casting="unsafe")
    return result


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, activation=None, out=None):
    """Group normalisation: the channels split into ``num_groups`` groups, each (sample, group)
    normalised by its own statistics, then a per-channel affine, as
    torch.nn.functional.group_norm."""
    op = "group_norm"
    x = _input(input, op)
    if x.ndim < 2:
        raise ShapeError(f"{op}: Expected at least 2 dimensions for input tensor but received {x.ndim}")
    num_groups = python_scalar(num_groups)
    if type(num_groups) is not int:
        if isinstance(num_groups, (bool, np.bool_)) or not isinstance(num_groups, numbers.Integral):
            raise TypeError(f"{op}(): argument 'num_groups' (position 2) must be int, not {type(num_groups).__name__}")
        num_groups = operator.index(num_groups)
    eps = _float(eps, op, "eps", 5)
    act = _activation(activation, op)
    shape = x.shape
    batch, channels = shape[0], shape[1]
    values = batch * channels // num_groups  # ZeroDivisionError for num_groups=0, as torch
    for s in shape[2:]:
        values *= s
    if values == 1:
        sizes = [batch * channels // num_groups, num_groups, *shape[2:]]
        raise ShapeError(f"Expected more than 1 value per channel when training, got input size {sizes}")
    if num_groups <= 0:
        raise ShapeError(f"{op}: Expected num groups to be greater than 0, got {num_groups}")
    if channels % num_groups:
        raise ShapeError(f"{op}: Expected number of channels in input to be divisible by num_groups, "
                         f"but got input of shape {list(shape)} and num_groups={num_groups}")
    if weight is not None:
        weight = _param(weight, x, op, "weight")
        if weight.ndim != 1 or weight.size != channels:
            raise ShapeError(f"{op}: Expected weight to be a vector of size equal to the number of channels in input, "
                             f"but got weight of shape {list(weight.shape)} and input of shape {list(shape)}")
    if bias is not None:
        bias_array = _param(bias, x, op, "bias")
        if bias_array.ndim != 1 or bias_array.size != channels:
            # PyTorch 2.13 prints the weight's shape here ([0] without a weight); so do we.
            shown = list(weight.shape) if weight is not None else [0]
            raise ShapeError(f"{op}: Expected bias to be a vector of size equal to the number of channels in input, "
                             f"but got bias of shape {shown} and input of shape {list(shape)}")
        bias = bias_array
    result, x = _output(out, x, op)
    _core.group_norm(x, result, num_groups, weight, bias, eps, act)
    return result


def _normalized_shape(normalized_shape, op: str) -> tuple:
    kind = type(normalized_shape)
    if kind is int:
        return (normalized_shape,)
    if (kind is tuple or kind is list) and all(type(d) is int for d in normalized_shape):
        return tuple(normalized_shape)
    if isinstance(normalized_shape, (numbers.Integral,)) and not isinstance(normalized_shape, (bool, np.bool_)):
        return (operator.index(normalized_shape),)  # an int, as torch.nn.LayerNorm accepts
    if isinstance(normalized_shape, (str, bytes)) or not hasattr(normalized_shape, "__iter__"):
        raise TypeError(f"{op}(): argument 'normalized_shape' (position 2) must be tuple of ints, "
                        f"not {type(normalized_shape).__name__}")
    dims = []
    for pos, d in enumerate(normalized_shape):
        d = python_scalar(d)
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op}(): argument 'normalized_shape' (position 2) must be tuple of ints, "
                            f"but found element of type {type(d).__name__} at pos {pos}")
        dims.append(operator.index(d))
    return tuple(dims)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, activation=None, out=None):
    """Layer normalisation over the trailing ``normalized_shape`` dims, with an elementwise
    affine of that shape, as torch.nn.functional.layer_norm (``normalized_shape`` may also be
    an int, as torch.nn.LayerNorm accepts)."""
    op = "layer_norm"
    x = _input(input, op)
    dims = _normalized_shape(normalized_shape, op)
    eps = _float(eps, op, "eps", 5)
    act = _activation(activation, op)
    if not dims:
        raise ShapeError(f"{op}: Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
                         f"one element, but got normalized_shape = []")
    if weight is not None:
        weight = _param(weight, x, op, "weight")
        if weight.shape != dims:
            raise ShapeError(f"{op}: Expected weight to be of same shape as normalized_shape, but got weight of shape "
                             f"{list(weight.shape)} and normalized_shape = {list(dims)}")
    if bias is not None:
        bias = _param(bias, x, op, "bias")
        if bias.shape != dims:
            raise ShapeError(f"{op}: Expected bias to be of same shape as normalized_shape, but got bias of shape "
                             f"{list(bias.shape)} and normalized_shape = {list(dims)}")
    shape = x.shape
    if len(dims) > len(shape) or shape[len(shape) - len(dims):] != dims:
        star = ", ".join(["*", *map(str, dims)])
        raise ShapeError(f"{op}: Given normalized_shape={list(dims)}, expected input with shape [{star}], "
                         f"but got input of size{list(shape)}")
    width = 1
    for d in dims:
        width *= d
    result, x = _output(out, x, op)
    _core.layer_norm(x, result, width,
                     None if weight is None else weight.reshape(-1),
                     None if bias is None else bias.reshape(-1), eps, act)
    return result
