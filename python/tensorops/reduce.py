"""Reductions and softmax, with torch's semantics on NumPy arrays.

sum, mean, prod, amax, amin, logsumexp, var, std reduce over ``dim=None|int|tuple``
(``None`` and ``()`` mean every dim); argmax / argmin and max / min with a dim reduce one dim
and return the first index of the winner (a NaN wins). Inputs are float32 or float64;
``dtype=`` (sum, mean, prod, softmax, log_softmax) converts the input first, as torch does.
"""
from __future__ import annotations

import collections
import operator
import warnings

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import FLOAT_DTYPES, aligned, as_array, check_bool, empty, normalize_dim, normalize_dims, python_scalar

__all__ = ["sum", "mean", "prod", "amax", "amin", "argmax", "argmin", "logsumexp", "var", "std",
           "max", "min", "softmax", "log_softmax"]

# torch.return_types.max / min: a pair with .values and .indices.
_MaxResult = collections.namedtuple("max", ["values", "indices"])
_MinResult = collections.namedtuple("min", ["values", "indices"])

_TORCH_DTYPE_NAMES = {"torch.float32": np.dtype(np.float32), "torch.float64": np.dtype(np.float64)}


def _as_float_dtype(dtype, op: str) -> np.dtype:
    named = _TORCH_DTYPE_NAMES.get(str(dtype))
    if named is not None:
        return named
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be a floating dtype, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{op}: unsupported dtype {dt}; supported dtypes are float32 and float64")
    return dt


def _float_input(input, op: str, dtype=None) -> np.ndarray:
    x = aligned(as_array(input, op))
    if dtype is not None:
        dt = _as_float_dtype(dtype, op)
        if x.dtype != dt:
            x = x.astype(dt)
    elif x.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{op}: "input" has unsupported dtype {x.dtype}; supported dtypes are float32 and float64')
    return x


def _reduced_dims(dim, ndim: int, op: str) -> tuple:
    if type(dim) is int and -ndim <= dim < ndim:  # the common call, kept cheap
        return (dim + ndim if dim < 0 else dim,)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    return normalize_dims(dim, ndim, op)


def _check_nonempty(x: np.ndarray, dim, dims: tuple, op: str) -> None:
    """amax and amin refuse an empty reduction, naming the first empty dim as given."""
    if x.size:
        return
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        raise ShapeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                         "Specify the reduction dim with the 'dim' argument.")
    given = dim if isinstance(dim, (tuple, list)) else (dim,)
    for d in given:  # torch names the dim as it was given (amax(x, -1): "dim -1")
        if x.ndim and x.shape[normalize_dim(d, x.ndim, op)] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")


def _run(op: str, kernel, x: np.ndarray, dims: tuple, keepdim: bool, *extra) -> np.ndarray:
    check_bool(keepdim, op, "keepdim")
    shape = x.shape
    if not shape:
        x = x.reshape(1)
        dims = (0,)
        kept = ()
    elif len(dims) == 1:
        kept = shape[:dims[0]] + shape[dims[0] + 1:]
    else:
        kept = tuple(s for i, s in enumerate(shape) if i not in dims)
    out = empty(kept, x.dtype)
    kernel(x, out, dims, *extra)
    if keepdim:
        return out.reshape(tuple(1 if i in dims else s for i, s in enumerate(shape)))
    return out


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over dim (None: every dim); pairwise-blocked, identical bits for any thread count."""
    x = _float_input(input, "sum", dtype)
    return _run("sum", _core.sum, x, _reduced_dims(dim, x.ndim, "sum"), keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over dim; NaN for an empty reduction, as torch."""
    x = _float_input(input, "mean", dtype)
    return _run("mean", _core.mean, x, _reduced_dims(dim, x.ndim, "mean"), keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over dim (1 for an empty reduction)."""
    x = _float_input(input, "prod", dtype)
    return _run("prod", _core.prod, x, _reduced_dims(dim, x.ndim, "prod"), keepdim)


def amax(input, dim=None, keepdim=False):
    """Maximum over dim; NaN if any reduced element is NaN."""
    x = _float_input(input, "amax")
    dims = _reduced_dims(dim, x.ndim, "amax")
    _check_nonempty(x, dim, dims, "amax")
    return _run("amax", _core.amax, x, dims, keepdim)


def amin(input, dim=None, keepdim=False):
    """Minimum over dim; NaN if any reduced element is NaN."""
    x = _float_input(input, "amin")
    dims = _reduced_dims(dim, x.ndim, "amin")
    _check_nonempty(x, dim, dims, "amin")
    return _run("amin", _core.amin, x, dims, keepdim)


def logsumexp(input, dim=None, keepdim=False):
    """log(sum(exp(input))) over dim, computed as max + log(sum(exp(input - max)))."""
    x = _float_input(input, "logsumexp")
    return _run("logsumexp", _core.logsumexp, x, _reduced_dims(dim, x.ndim, "logsumexp"), keepdim)


def _correction(op: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}(): pass either 'unbiased' or 'correction', not both")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{op}(): argument 'unbiased' must be bool, not {type(unbiased).__name__}")
        return 1.0 if unbiased else 0.0
    if correction is None:
        return 1.0
    correction = python_scalar(correction)
    if not isinstance(correction, (int, float, np.integer, np.floating, np.bool_)):  # a bool counts, as in torch
        raise TypeError(f"{op}(): argument 'correction' must be a number, not {type(correction).__name__}")
    return float(correction)


def _moments(op: str, kernel, input, dim, unbiased, keepdim, correction):
    if isinstance(dim, (bool, np.bool_)):  # torch's var(input, unbiased) form
        if unbiased is not None:
            raise TypeError(f"{op}(): got 'unbiased' twice")
        dim, unbiased = None, bool(dim)
    c = _correction(op, unbiased, correction)
    x = _float_input(input, op)
    dims = _reduced_dims(dim, x.ndim, op)
    count = 1
    for d in dims if x.ndim else ():
        count *= x.shape[d]
    if count - c <= 0:
        warnings.warn(f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                      "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=3)
    return _run(op, kernel, x, dims, keepdim, c)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over dim with Bessel's correction by default (correction=1, or unbiased=True);
    single pass, stable when the mean is large relative to the spread."""
    return _moments("var", _core.var, input, dim, unbiased, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of var with the same arguments."""
    return _moments("std", _core.std, input, dim, unbiased, keepdim, correction)


def _kept_shape(shape: tuple, d: int, keepdim: bool) -> tuple:
    if not shape:  # a 0-d input stays 0-d, keepdim or not
        return ()
    return shape[:d] + ((1,) if keepdim else ()) + shape[d + 1:]


def _arg(op: str, kernel, input, dim, keepdim):
    check_bool(keepdim, op, "keepdim")
    x = _float_input(input, op)
    if dim is None:
        if x.size == 0:
            raise IndexError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0.")
        out = empty((), np.int64)
        kernel(x.reshape(-1), out, 0)
        return out.reshape((1,) * x.ndim) if keepdim else out
    d = normalize_dim(dim, x.ndim, op)
    shape = x.shape
    if x.ndim == 0:
        x = x.reshape(1)
    if x.shape[d] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    out = empty(x.shape[:d] + x.shape[d + 1:], np.int64)
    kernel(x, out, d)
    return out.reshape(_kept_shape(shape, d, keepdim))


def argmax(input, dim=None, keepdim=False):
    """Index of the first maximum (a NaN wins); dim=None indexes the flattened input."""
    return _arg("argmax", _core.argmax, input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    """Index of the first minimum (a NaN wins); dim=None indexes the flattened input."""
    return _arg("argmin", _core.argmin, input, dim, keepdim)


def _is_dim(dim) -> bool:
    # An array or tensor, even a 0-d integer one, is max(input, other)'s `other` to torch;
    # Python and NumPy integer scalars are dims.
    if isinstance(dim, np.ndarray) or hasattr(dim, "__dlpack__"):
        return False
    try:
        operator.index(dim)
        return True
    except TypeError:
        return isinstance(dim, (tuple, list))


def _integer_valued(value) -> bool:
    try:
        operator.index(value)
        return True
    except TypeError:
        return False


def _extremum_arguments(op: str, args: tuple, kwargs: dict):
    """torch's two signatures of max/min: (input, dim, keepdim=False) and (input, other).
    Returns (dim, keepdim, other, other_given). A positional second argument is `other` when it
    is an array or tensor (0-d included) and a dim otherwise; `dim=` is always a dim."""
    unknown = set(kwargs) - {"dim", "keepdim", "other"}
    if unknown:
        raise TypeError(f"{op}() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    if len(args) > 2:
        raise TypeError(f"{op}() takes from 1 to 3 positional arguments but {len(args) + 1} were given")
    if "other" in kwargs:
        if args or "dim" in kwargs or "keepdim" in kwargs:
            raise TypeError(f"{op}(): 'other' cannot be given with a dim or keepdim")
        return None, False, kwargs["other"], True
    if args and "dim" in kwargs:
        raise TypeError(f"{op}() got multiple values for argument 'dim'")
    if len(args) == 2 and "keepdim" in kwargs:
        raise TypeError(f"{op}() got multiple values for argument 'keepdim'")
    keepdim = args[1] if len(args) == 2 else kwargs.get("keepdim", False)
    if "dim" in kwargs:
        return kwargs["dim"], keepdim, None, False
    # With a keepdim only the dim signature fits: a 0-d integer tensor is then a dim.
    keepdim_given = len(args) == 2 or "keepdim" in kwargs
    if args and keepdim_given and getattr(args[0], "ndim", None) == 0 and _integer_valued(args[0]):
        return args[0], keepdim, None, False
    if args and not _is_dim(args[0]) and not isinstance(args[0], (bool, float)):
        if len(args) == 2 or "keepdim" in kwargs:
            raise TypeError(f"{op}(input, other) takes no keepdim")
        return None, False, args[0], True
    return (args[0] if args else None), keepdim, None, False


def _extremum(op: str, all_kernel, kernel, result_type, pair_name: str, input, args, kwargs):
    dim, keepdim, other, other_given = _extremum_arguments(op, args, kwargs)
    if other_given:
        # max(input, other): the elementwise torch.maximum / torch.minimum.
        from . import pointwise
        return getattr(pointwise, pair_name)(input, other)
    if dim is None:
        if keepdim:
            raise TypeError(f"{op}(): keepdim needs a dim")
        x = _float_input(input, op)
        if x.size == 0:
            raise ShapeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                             "Specify the reduction dim with the 'dim' argument.")
        return _run(op, all_kernel, x, tuple(range(x.ndim)), False)
    check_bool(keepdim, op, "keepdim")
    x = _float_input(input, op)
    d = normalize_dim(dim, x.ndim, op)
    shape = x.shape
    if x.ndim == 0:
        x = x.reshape(1)
    if x.shape[d] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    kept = x.shape[:d] + x.shape[d + 1:]
    values = empty(kept, x.dtype)
    indices = empty(kept, np.int64)
    kernel(x, values, indices, d)
    out_shape = _kept_shape(shape, d, keepdim)
    return result_type(values.reshape(out_shape), indices.reshape(out_shape))


def max(input, *args, **kwargs):
    """max(input) -> 0-d array; max(input, dim, keepdim=False) -> (values, indices) with .values
    and .indices (int64, first index of the max, a NaN wins); max(input, other) -> maximum
    (torch's signatures: a positional array or tensor is `other`, ``dim=`` always a dim)."""
    return _extremum("max", _core.amax, _core.max, _MaxResult, "maximum", input, args, kwargs)


def min(input, *args, **kwargs):
    """min(input) -> 0-d array; min(input, dim, keepdim=False) -> (values, indices);
    min(input, other) -> minimum."""
    return _extremum("min", _core.amin, _core.min, _MinResult, "minimum", input, args, kwargs)


def _softmax(op: str, kernel, input, dim, dtype):
    x = _float_input(input, op, dtype)
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. "
                      "Change the call to include dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    d = normalize_dim(dim, x.ndim, op)
    shape = x.shape
    if x.size == 0:
        # (NumPy calls an empty array contiguous whatever its strides, which the kernel's
        # same-strides check would refuse: there is nothing to compute.)
        return empty(shape, x.dtype)
    if x.ndim == 0:
        x = x.reshape(1)
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    # Same memory order as x, so the kernel walks both alike; from the buffer pool (fresh
    # pages from NumPy cost 8192x1024 softmax a third of its time in page zeroing).
    out = empty(x.shape, x.dtype) if x.flags.c_contiguous else empty(x.shape[::-1], x.dtype).T
    kernel(x, out, d)
    return out.reshape(shape) if out.shape != shape else out


def softmax(input, dim=None, dtype=None):
    """exp(x - max) / sum(exp(x - max)) along dim. dim=None picks torch's legacy implicit dim
    (0 for 0-, 1- and 3-d inputs, else 1) with its deprecation warning."""
    return _softmax("softmax", _core.softmax, input, dim, dtype)


def log_softmax(input, dim=None, dtype=None):
    """x - max - log(sum(exp(x - max))) along dim; dim=None as in softmax."""
    return _softmax("log_softmax", _core.log_softmax, input, dim, dtype)
