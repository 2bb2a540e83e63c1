"""Pointwise functions: unary maps, binary maps with broadcasting, activations.

Every function computes in float32 or float64 and returns a new C-contiguous array (or
writes ``out=``). Operands may be arrays, array-likes (torch tensors, zero-copy) or Python
numbers; binary ops broadcast as NumPy/torch do and promote dtypes as torch does:

- dimensioned arrays outrank 0-d arrays, which outrank Python numbers: a category only
  decides the result's dtype when it brings a higher *kind* (bool < integer < float) than
  the categories above it (float32 array + float64 0-d array -> float32, int array + float
  scalar -> float32, int array + float64 0-d array -> float64);
- a Python float counts as float32 (torch's default dtype), an int as int64;
- a result that would not be float32/float64 (int op int, float16) raises TypeError.
Operands of another dtype are converted to the result dtype first; the kernels see one dtype.

Inputs are never modified, with one exception asked for by name: the activations that take
``inplace=`` in torch.nn.functional write their result back into the input array when
``inplace=True``, as torch does (the input must be a writeable float array, or a torch
tensor, which is shared zero-copy).
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import (FLOAT_DTYPES, aligned, as_array, broadcast_shapes, check_out, empty, inplace_input,
                        readable_beside)

__all__ = [
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "clamp",
    "neg", "abs", "sqrt", "rsqrt", "exp", "log", "sin", "cos", "tanh", "sigmoid", "erf",
    "floor", "ceil", "round", "sign", "reciprocal", "square",
    "relu", "selu", "celu", "prelu",
]

_nd = np.ndarray
_empty = empty
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)
_C64 = np.dtype(np.complex64)
_U = _core.UNARY_OPS
_B = _core.BINARY_OPS
_unary_core = _core.unary
_binary_core = _core.binary
_unary_fast = _core.unary_fast
_binary_fast = _core.binary_fast
_ADD, _SUB, _MUL, _DIV = _B["add"], _B["sub"], _B["mul"], _B["div"]


# ---- operands and type promotion ---------------------------------------------------------------

def _scalar_dtype(value):
    """The dtype torch gives a Python number (a 'wrapped number'); None if not a number."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _I64
    if isinstance(value, (float, np.floating)):
        return _F32
    if isinstance(value, (complex, np.complexfloating)):
        return _C64
    return None


def _promote(a, b):
    if a is None:
        return b
    if a == b:
        return a
    if a.kind == "c" or b.kind == "c":
        return np.promote_types(a, b)
    if a.kind == "f" and b.kind == "f":
        return a if a.itemsize >= b.itemsize else b
    if a.kind == "f":
        return a
    if b.kind == "f":
        return b
    if a.kind == "b":
        return b
    if b.kind == "b":
        return a
    return _I64  # any integer result is refused by the caller; which one does not matter


def _combine(higher, lower):
    """torch's combine_categories: the lower category counts only for a higher kind."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "c":
        return higher
    if lower.kind == "c":
        return np.promote_types(higher, lower) if higher.kind == "f" else lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind in "cf":
        return _promote(higher, lower)
    return higher


def _operands(op, values, names, integers_to_float=False):
    """(arrays, result dtype): each value as an ndarray of the result dtype (Python numbers
    become 0-d arrays), with torch's promotion. Raises TypeError for a non-float result,
    except that with integers_to_float (true division) an integer or bool result becomes
    float32, torch's default dtype."""
    dim = zero = wrapped = None
    items = []
    for value, name in zip(values, names):
        dtype = None if isinstance(value, _nd) else _scalar_dtype(value)
        if dtype is not None:
            wrapped = _promote(wrapped, dtype)
            items.append((None, value))
            continue
        arr = aligned(as_array(value, op, name))
        if arr.ndim:
            dim = _promote(dim, arr.dtype)
        else:
            zero = _promote(zero, arr.dtype)
        items.append((arr, None))
    result = _combine(dim, _combine(zero, wrapped))
    if integers_to_float and result is not None and result.kind in "biu":
        result = _F32
    if result not in FLOAT_DTYPES:
        raise TypeError(f"{op}: unsupported dtype {result}; tensorops computes {op} in float32 and float64")
    arrays = []
    for arr, number in items:
        if arr is None:
            with np.errstate(over="ignore"):  # 1e300 in float32 is inf, silently, as in torch
                arr = np.array(float(number), result)
        elif arr.dtype != result:
            arr = arr.astype(result)
        arrays.append(arr)
    return arrays, result


def _is_number(value):
    return not isinstance(value, _nd) and _scalar_dtype(value) is not None


def _prepare_out(out, shape, dtype, op, inputs):
    """Checks out= and copies any input that overlaps it other than element for element."""
    check_out(out, shape, dtype, op)
    return [readable_beside(a, out) for a in inputs]


# ---- unary --------------------------------------------------------------------------------------

def _number(value, op, name):
    """A number argument (Python, NumPy, or a 0-d array or tensor) as a float; a string, None
    or a sequence is a TypeError, as torch's argument parser makes it."""
    if not isinstance(value, (str, bytes)) and value is not None:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{op}(): argument '{name}' must be Number, not {type(value).__name__}")


def _unary(op, code, input, out, pa=0.0, pb=0.0, pc=0.0):
    if out is None:
        # Plain float ndarray: C++ allocates and computes; None means take the general path.
        result = _unary_fast(code, input, pa, pb, pc)
        if result is not None:
            return result
    x = aligned(as_array(input, op))
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{op}: "input" has unsupported dtype {x.dtype}; supported dtypes are float32 and float64')
    if out is None:
        out = _empty(x.shape, x.dtype)
    else:
        (x,) = _prepare_out(out, x.shape, x.dtype, op, [x])
    _unary_core(code, x, out, pa, pb, pc)
    return out


def neg(input, *, out=None):
    """-input."""
    return _unary("neg", _U["neg"], input, out)


def abs(input, *, out=None):  # noqa: A001 - torch's name
    """|input|."""
    return _unary("abs", _U["abs"], input, out)


def sqrt(input, *, out=None):
    """Square root; NaN for negative input, -0 for -0."""
    return _unary("sqrt", _U["sqrt"], input, out)


def rsqrt(input, *, out=None):
    """1 / sqrt(input)."""
    return _unary("rsqrt", _U["rsqrt"], input, out)


def exp(input, *, out=None):
    """e ** input."""
    return _unary("exp", _U["exp"], input, out)


def log(input, *, out=None):
    """Natural logarithm; -inf at 0, NaN below."""
    return _unary("log", _U["log"], input, out)


def sin(input, *, out=None):
    """Sine (C library, lane by lane)."""
    return _unary("sin", _U["sin"], input, out)


def cos(input, *, out=None):
    """Cosine (C library, lane by lane)."""
    return _unary("cos", _U["cos"], input, out)


def tanh(input, *, out=None):
    """Hyperbolic tangent (also torch.nn.functional.tanh)."""
    return _unary("tanh", _U["tanh"], input, out)


def sigmoid(input, *, out=None):
    """1 / (1 + exp(-input)) (also torch.nn.functional.sigmoid)."""
    return _unary("sigmoid", _U["sigmoid"], input, out)


def erf(input, *, out=None):
    """The error function."""
    return _unary("erf", _U["erf"], input, out)


def floor(input, *, out=None):
    """Largest integer <= input."""
    return _unary("floor", _U["floor"], input, out)


def ceil(input, *, out=None):
    """Smallest integer >= input."""
    return _unary("ceil", _U["ceil"], input, out)


def round(input, *, decimals=0, out=None):  # noqa: A001 - torch's name
    """Round half to even, to ``decimals`` decimal places (negative: to tens, hundreds...)."""
    try:
        if isinstance(decimals, (bool, np.bool_)):
            raise TypeError
        decimals = operator.index(decimals)
    except TypeError:
        raise TypeError(f"round: decimals must be an int, got {type(decimals).__name__}") from None
    if not -2**63 <= decimals < 2**63:
        raise ValueError("Overflow when unpacking long long")  # torch's words for an int64 argument
    if decimals == 0:
        return _unary("round", _U["round"], input, out)
    # A power of ten beyond the float range is inf, which makes every result NaN, as in torch.
    places = decimals if decimals > 0 else -decimals  # this module's abs is the elementwise op
    scale = 10.0 ** places if places <= 308 else math.inf
    if decimals > 0:
        return _unary("round", _U["round_scaled"], input, out, scale)
    return _unary("round", _U["round_unscaled"], input, out, scale)


def sign(input, *, out=None):
    """-1, 0 or 1 by the sign of input; 0 for NaN (as torch)."""
    return _unary("sign", _U["sign"], input, out)


def reciprocal(input, *, out=None):
    """1 / input."""
    return _unary("reciprocal", _U["reciprocal"], input, out)


def square(input, *, out=None):
    """input * input."""
    return _unary("square", _U["square"], input, out)


# ---- binary -------------------------------------------------------------------------------------

def _binary(op, code, input, other, out, alpha=1.0, integers_to_float=False):
    if _is_number(input) and _is_number(other):
        raise TypeError(f"{op}: expected at least one array argument, got two numbers")
    (a, b), dtype = _operands(op, (input, other), ("input", "other"), integers_to_float)
    shape = a.shape if a.shape == b.shape else broadcast_shapes(a.shape, b.shape, op=op)
    if out is None:
        out = _empty(shape, dtype)
    else:
        a, b = _prepare_out(out, shape, dtype, op, [a, b])
    _binary_core(code, a, b, out, alpha)
    return out


def _alpha(value, op):
    """add/sub's alpha: a number, and not a bool (torch takes one only for bool results)."""
    if isinstance(value, (bool, np.bool_)):
        raise ShapeError("Boolean alpha only supported for Boolean results.")
    return _number(value, op, "alpha")


def add(input, other, *, alpha=1, out=None):
    """input + alpha * other, broadcasting."""
    if alpha == 1 and alpha is not True:
        if out is None:
            # Same-shape float ndarrays of one dtype: C++ allocates and computes; else None.
            result = _binary_fast(_ADD, input, other)
            if result is not None:
                return result
        return _binary("add", _ADD, input, other, out)
    return _binary("add", _B["add_scaled"], input, other, out, _alpha(alpha, "add"))


def _is_bool(value):
    """A Python/NumPy bool or an array-like of bool dtype (NumPy's or torch's)."""
    return isinstance(value, (bool, np.bool_)) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def sub(input, other, *, alpha=1, out=None):
    """input - alpha * other, broadcasting. Like torch, refuses bool operands."""
    if alpha == 1 and alpha is not True and out is None:
        result = _binary_fast(_SUB, input, other)
        if result is not None:
            return result
    if _is_bool(input) and _is_bool(other):
        raise TypeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                        "Use the `^` or `logical_xor()` operator instead.")
    if _is_bool(input) or _is_bool(other):
        raise TypeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                        "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    if alpha == 1 and alpha is not True:
        return _binary("sub", _B["sub"], input, other, out)
    return _binary("sub", _B["add_scaled"], input, other, out, -_alpha(alpha, "sub"))


def mul(input, other, *, out=None):
    """input * other, broadcasting."""
    if out is None:
        result = _binary_fast(_MUL, input, other)
        if result is not None:
            return result
    return _binary("mul", _MUL, input, other, out)


_DIV_CODES = {None: _B["div"], "trunc": _B["div_trunc"], "floor": _B["div_floor"]}


def div(input, other, *, rounding_mode=None, out=None):
    """input / other, broadcasting; rounding_mode 'trunc' rounds toward zero, 'floor' down
    (Python's //, computed as torch computes it)."""
    if rounding_mode is not None and not isinstance(rounding_mode, str):
        raise TypeError(f"div(): argument 'rounding_mode' must be str or None, not {type(rounding_mode).__name__}")
    code = _DIV_CODES.get(rounding_mode)
    if code is None:
        raise ShapeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")
    if rounding_mode is None and out is None:
        result = _binary_fast(_DIV, input, other)
        if result is not None:
            return result
    # True division of integers is a float32 division in torch; rounded division stays
    # integer, which tensorops does not compute.
    return _binary("div", code, input, other, out, integers_to_float=rounding_mode is None)


# Exponents torch computes with a cheaper exact function than pow (same values, and the
# same answers at the edges: pow(-inf, 0.5) is NaN through sqrt, as in torch).
_F32_MAX = float(np.finfo(np.float32).max)
_POW_SPECIAL = {2.0: "square", 0.5: "sqrt", -0.5: "rsqrt", -1.0: "reciprocal"}


def pow(input, exponent, *, out=None):  # noqa: A001 - torch's name
    """input ** exponent, broadcasting; either may be a number."""
    if _is_number(exponent) and not _is_number(input):
        x = _operands("pow", (input, exponent), ("input", "exponent"))[0][0]
        e = float(exponent)
        name = _POW_SPECIAL.get(e)
        if name is not None:
            return _unary("pow", _U[name], x, out)
        # In float32 the exponent travels as three floats that add up to it (pow_scalar_op).
        parts = [e, 0.0, 0.0]
        if x.dtype == _F32 and abs(e) <= _F32_MAX:
            rest = e
            for i in range(3):
                parts[i] = float(np.float32(rest))
                rest -= parts[i]
        return _unary("pow", _U["pow_scalar"], x, out, *parts)
    return _binary("pow", _B["pow"], input, exponent, out)


def maximum(input, other, *, out=None):
    """Elementwise maximum, broadcasting; NaN if either is NaN."""
    return _binary("maximum", _B["maximum"], input, other, out)


def minimum(input, other, *, out=None):
    """Elementwise minimum, broadcasting; NaN if either is NaN."""
    return _binary("minimum", _B["minimum"], input, other, out)


_OMITTED = object()


def where(condition, input=_OMITTED, other=_OMITTED, *, out=None):
    """input where condition else other; condition a bool array; all three broadcast.

    ``where(condition)`` alone is torch's ``nonzero(condition, as_tuple=True)``: a tuple of
    int64 index arrays, one per dim (a 0-d condition counts as 1-d)."""
    cond = as_array(condition, "where", "condition")
    if input is _OMITTED and other is _OMITTED and out is None:
        return tuple(np.ascontiguousarray(index, dtype=np.int64) for index in np.nonzero(np.atleast_1d(cond)))
    if input is _OMITTED or other is _OMITTED:
        raise TypeError("where() takes a condition alone, or a condition, input and other")
    if cond.dtype != _BOOL:
        raise TypeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {cond.dtype}")
    (a, b), dtype = _operands("where", (input, other), ("input", "other"))
    shape = broadcast_shapes(cond.shape, a.shape, b.shape, names=("a", "b", "b"), op="where")
    if out is None:
        out = _empty(shape, dtype)
    else:
        cond, a, b = _prepare_out(out, shape, dtype, "where", [cond, a, b])
    _core.where(cond, a, b, out)
    return out


_INF = {_F32: (np.array(-np.inf, _F32), np.array(np.inf, _F32)),
        _F64: (np.array(-np.inf, _F64), np.array(np.inf, _F64))}
for _bounds in _INF.values():
    for _b in _bounds:
        _b.flags.writeable = False


def clamp(input, min=None, max=None, *, out=None):  # noqa: A002 - torch's names
    """min(max(input, min), max), broadcasting; ``min``/``max`` numbers or arrays. NaN in the
    input or a bound gives NaN; where min > max the result is max (as torch)."""
    if min is None and max is None:
        raise ShapeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    bounds = [v for v in (min, max) if v is not None]
    names = ["input"] + (["min"] if min is not None else []) + (["max"] if max is not None else [])
    arrays, dtype = _operands("clamp", [input] + bounds, names)
    if all(_is_number(v) for v in bounds):
        lo = -np.inf if min is None else float(min)
        hi = np.inf if max is None else float(max)
        return _unary("clamp", _U["clamp"], arrays[0], out, lo, hi)
    x = arrays[0]
    lo = arrays[1] if min is not None else _INF[dtype][0]
    hi = arrays[-1] if max is not None else _INF[dtype][1]
    shape = broadcast_shapes(x.shape, lo.shape, hi.shape, names=("a", "b", "b"), op="clamp")
    if out is None:
        out = _empty(shape, dtype)
    else:
        x, lo, hi = _prepare_out(out, shape, dtype, "clamp", [x, lo, hi])
    _core.clamp(x, lo, hi, out)
    return out


# ---- activations (torch.nn.functional signatures; see nn/functional.py) -------------------------

def _activation(op, code, input, out, inplace, *params):
    """``_unary`` for activations with torch's ``inplace=``: True writes into the input."""
    if not inplace:
        return _unary(op, code, input, out, *params)
    x = inplace_input(input, out, op)
    if x.flags.c_contiguous and x.flags.aligned:
        return _unary(op, code, x, x, *params)
    np.copyto(x, _unary(op, code, x, None, *params))
    return x


def relu(input, inplace=False, *, out=None):
    """max(input, 0); NaN stays NaN."""
    return _activation("relu", _U["relu"], input, out, inplace)


def relu6(input, inplace=False, *, out=None):
    """min(max(input, 0), 6)."""
    return _activation("relu6", _U["clamp"], input, out, inplace, 0.0, 6.0)


def leaky_relu(input, negative_slope=0.01, inplace=False, *, out=None):
    """input if input > 0 else negative_slope * input."""
    return _activation("leaky_relu", _U["leaky_relu"], input, out, inplace,
                       _number(negative_slope, "leaky_relu", "negative_slope"))


def elu(input, alpha=1.0, inplace=False, *, out=None):
    """input if input > 0 else alpha * (exp(input) - 1)."""
    return _activation("elu", _U["elu"], input, out, inplace, _number(alpha, "elu", "alpha"), 1.0, 1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False, *, out=None):
    """scale * elu(input, alpha) with the self-normalising constants."""
    return _activation("selu", _U["elu"], input, out, inplace, _SELU_ALPHA * _SELU_SCALE, _SELU_SCALE, 1.0)


def celu(input, alpha=1.0, inplace=False, *, out=None):
    """max(0, input) + min(0, alpha * (exp(input / alpha) - 1))."""
    alpha = _number(alpha, "celu", "alpha")
    if alpha == 0:
        raise ShapeError("celu: alpha cannot be 0 for CELU")
    return _activation("celu", _U["elu"], input, out, inplace, alpha, 1.0, 1.0 / alpha)


def gelu(input, *, approximate="none", out=None):
    """input * Phi(input) (erf form), or the tanh approximation with approximate='tanh'."""
    if not isinstance(approximate, str):
        raise TypeError(f"gelu(): argument 'approximate' must be str, not {type(approximate).__name__}")
    if approximate == "none":
        return _unary("gelu", _U["gelu"], input, out)
    if approximate == "tanh":
        return _unary("gelu", _U["gelu_tanh"], input, out)
    raise ShapeError("approximate argument must be either none or tanh.")


def silu(input, inplace=False, *, out=None):
    """input * sigmoid(input)."""
    return _activation("silu", _U["silu"], input, out, inplace)


def mish(input, inplace=False, *, out=None):
    """input * tanh(softplus(input))."""
    return _activation("mish", _U["mish"], input, out, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False, *, out=None):
    """clamp(input, min_val, max_val)."""
    min_val, max_val = _number(min_val, "hardtanh", "min_val"), _number(max_val, "hardtanh", "max_val")
    if min_val > max_val:
        raise ShapeError("min_val cannot be greater than max_val")
    return _activation("hardtanh", _U["clamp"], input, out, inplace, min_val, max_val)


def hardsigmoid(input, inplace=False, *, out=None):
    """clamp(input + 3, 0, 6) / 6."""
    return _activation("hardsigmoid", _U["hardsigmoid"], input, out, inplace)


def hardswish(input, inplace=False, *, out=None):
    """input * clamp(input + 3, 0, 6) / 6."""
    return _activation("hardswish", _U["hardswish"], input, out, inplace)


def softplus(input, beta=1.0, threshold=20.0, *, out=None):
    """log(1 + exp(beta * input)) / beta, or input where beta * input > threshold."""
    return _unary("softplus", _U["softplus"], input, out, _number(beta, "softplus", "beta"),
                  _number(threshold, "softplus", "threshold"))


def softsign(input, *, out=None):
    """input / (1 + |input|)."""
    return _unary("softsign", _U["softsign"], input, out)


def logsigmoid(input, *, out=None):
    """log(sigmoid(input)), without overflow."""
    return _unary("logsigmoid", _U["logsigmoid"], input, out)


def prelu(input, weight, *, out=None):
    """input if input > 0 else weight * input, with one weight or one per channel (dim 1)."""
    x = aligned(as_array(input, "prelu"))
    w = aligned(as_array(weight, "prelu", "weight"))
    for arr, name in ((x, "input"), (w, "weight")):
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(f'prelu: "{name}" has unsupported dtype {arr.dtype}; supported dtypes are float32 and float64')
    if w.ndim > 1:
        raise ShapeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}")
    if x.dtype != w.dtype:
        names = {_F32: "Float", _F64: "Double"}
        raise TypeError(f"prelu: Type promoting not supported. Got {names[x.dtype]} and {names[w.dtype]}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size != 1 and w.size != channels:
        raise ShapeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {w.size} "
                         f"and channel size = {channels}.")
    if w.size == 1:
        w = w.reshape(())
    elif x.ndim > 2:
        w = w.reshape((channels,) + (1,) * (x.ndim - 2))
    if out is None:
        out = _empty(x.shape, x.dtype)
    else:
        x, w = _prepare_out(out, x.shape, x.dtype, "prelu", [x, w])
    _binary_core(_B["prelu"], x, w, out, 1.0)
    return out
