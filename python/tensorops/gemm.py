"""Matrix products: mm, bmm, matmul, addmm, linear (torch semantics), and packed weights.

Every product runs on the C++ GEMM engine (csrc/gemm): operands are read through their
strides (transposed and sliced arrays are not copied), the result is written into a fresh
C-contiguous array or ``out=``, and ``linear``/``addmm`` fuse the bias, an optional residual
and an optional activation into the product, applied while each output tile is in cache::

    y = tops.linear(x, w, b, activation="gelu")          # gelu(x @ w.T + b)
    y = tops.linear(x, w, b, residual=h)                  # x @ w.T + b + h
    pw = tops.pack_linear_weight(w)                       # pack once ...
    y = tops.linear(x, pw, b)                             # ... reuse for every call

``activation`` is None, ``"relu"``, ``"gelu"`` (exact, erf), ``"gelu_tanh"`` or ``"silu"``; it is
applied last: ``act(x @ w.T + b + residual)``.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import aligned, as_array, broadcast_shapes, finish, python_scalar, result_buffer, torch_dtype_name

__all__ = ["mm", "bmm", "matmul", "addmm", "linear", "pack_linear_weight"]

_ACTIVATIONS = {None: 0, "relu": 1, "gelu": 2, "gelu_tanh": 3, "silu": 4}
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_ndarray = np.ndarray
PackedLinearWeight = _core.PackedWeight


def _operand(x, op: str, arg: str) -> np.ndarray:
    x = x if type(x) is _ndarray else as_array(x, op, arg)
    if x.dtype != _FLOAT32 and x.dtype != _FLOAT64:
        raise TypeError(f'{op}: "{arg}" has unsupported dtype {x.dtype}; supported dtypes are float32 and float64')
    return aligned(x)


def epilogue_activation(activation, op: str) -> int:
    """The GEMM epilogue's code for ``activation`` (None, "relu", "gelu", "gelu_tanh",
    "silu"); convolution's epilogue is the GEMM's, so conv shares the codes and the message."""
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{op}: activation must be None or a string, got {type(activation).__name__}")
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ShapeError(f"{op}: unknown activation {activation!r}; expected None, 'relu', 'gelu', 'gelu_tanh' "
                         f"or 'silu'") from None


def _mm_shape_error(op, m, k, k2, n) -> ShapeError:
    return ShapeError(f"{op}: mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {k2}x{n})")


def _check_mm_dtypes(a, b) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"expected m1 and m2 to have the same dtype, but got: {torch_dtype_name(a.dtype)} != "
                        f"{torch_dtype_name(b.dtype)}")


def _foldable(x: np.ndarray) -> bool:
    """Whether the leading dims of x (all but the last) merge into one without a copy."""
    prev = None
    for size, stride in zip(x.shape[:-1], x.strides[:-1]):
        if size == 1:
            continue
        if prev is not None and prev != stride * size:
            return False
        prev = stride
    return True


def _fold(x: np.ndarray) -> np.ndarray:
    """x[..., K] as [prod(...), K]: a view when the leading dims allow it, else a copy."""
    # (The row count spelled out: NumPy cannot infer -1 beside a zero-length K.)
    return x if x.ndim == 2 else x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


# ---- mm / bmm ------------------------------------------------------------------------------

def mm(input, mat2, *, out=None):
    """Matrix product of two 2-D arrays (torch.mm)."""
    a = _operand(input, "mm", "input")
    b = _operand(mat2, "mm", "mat2")
    if a.ndim != 2:
        raise ShapeError("mm: self must be a matrix")
    if b.ndim != 2:
        raise ShapeError("mm: mat2 must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise _mm_shape_error("mm", a.shape[0], a.shape[1], b.shape[0], b.shape[1])
    _check_mm_dtypes(a, b)
    c, final = result_buffer(out, (a.shape[0], b.shape[1]), a.dtype, (a, b), "mm")
    _core.addmm(a, b, c)
    return finish(c, final)


def bmm(input, mat2, *, out=None):
    """Batched matrix product of two 3-D arrays with equal batch sizes (torch.bmm)."""
    a = _operand(input, "bmm", "input")
    b = _operand(mat2, "bmm", "mat2")
    if a.ndim != 3:
        raise ShapeError("bmm: batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise ShapeError("bmm: batch2 must be a 3D tensor")
    if b.shape[0] != a.shape[0] or b.shape[1] != a.shape[2]:
        raise ShapeError(f"bmm: Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    if a.dtype != b.dtype:
        raise TypeError(f"expected scalar type {torch_dtype_name(a.dtype, True)} but found "
                        f"{torch_dtype_name(b.dtype, True)}")
    c, final = result_buffer(out, (a.shape[0], a.shape[1], b.shape[2]), a.dtype, (a, b), "bmm")
    _core.matmul(a, b, c)
    return finish(c, final)


# ---- matmul --------------------------------------------------------------------------------

def matmul(input, other, *, out=None):
    """torch.matmul: 1-D operands are promoted (and the added dim removed from the result),
    2-D is mm, and higher ranks are batched with broadcast batch dims."""
    a = _operand(input, "matmul", "input")
    b = _operand(other, "matmul", "other")
    da, db = a.ndim, b.ndim
    if da == 0 or db == 0:
        raise ShapeError(f"matmul: both arguments to matmul need to be at least 1D, but they are {da}D and {db}D")
    if da == 1 and db == 1:
        if a.shape[0] != b.shape[0]:
            raise ShapeError(f"matmul: inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                             f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
        if a.dtype != b.dtype:
            raise TypeError(f"dot : expected both vectors to have same dtype, but found {torch_dtype_name(a.dtype, True)} "
                            f"and {torch_dtype_name(b.dtype, True)}")
        c, final = result_buffer(out, (), a.dtype, (a, b), "matmul")
        _core.addmm(a[None, :], b[:, None], c.reshape(1, 1))
        return finish(c, final)
    if db == 1 and da >= 2:
        # Matrix (or folded batch of matrices) times vector: computed as out^T = v^T A^T, so the
        # rows of A are streamed as dot products.
        lead = a.shape[:-1]
        rows = math.prod(lead)
        if a.shape[-1] != b.shape[0]:
            shown = f"{rows}x{a.shape[-1]}"
            raise ShapeError(f"matmul: size mismatch, got input ({rows}), mat ({shown}), vec ({b.shape[0]})")
        if a.dtype != b.dtype:
            raise TypeError(f"addmv input tensors must have the same dtype, but got {torch_dtype_name(b.dtype, True)}, "
                            f"{torch_dtype_name(a.dtype, True)}, and {torch_dtype_name(b.dtype, True)}")
        c, final = result_buffer(out, lead, a.dtype, (a, b), "matmul")
        a2 = _fold(a)
        _core.addmm(b[None, :], a2.T, c.reshape(1, rows))
        return finish(c, final)
    if da <= 2 and db == 2:
        a2 = a[None, :] if da == 1 else a
        if a2.shape[1] != b.shape[0]:
            raise _mm_shape_error("matmul", a2.shape[0], a2.shape[1], b.shape[0], b.shape[1])
        _check_mm_dtypes(a, b)
        shape = (b.shape[1],) if da == 1 else (a.shape[0], b.shape[1])
        c, final = result_buffer(out, shape, a.dtype, (a, b), "matmul")
        _core.addmm(a2, b, c.reshape(a2.shape[0], b.shape[1]))
        return finish(c, final)
    if db == 2:  # da >= 3: fold the batch into M (torch does the same)
        rows = math.prod(a.shape[:-1])
        if a.shape[-1] != b.shape[0]:
            raise _mm_shape_error("matmul", rows, a.shape[-1], b.shape[0], b.shape[1])
        _check_mm_dtypes(a, b)
        c, final = result_buffer(out, a.shape[:-1] + (b.shape[1],), a.dtype, (a, b), "matmul")
        if _foldable(a):
            _core.addmm(a.reshape(rows, a.shape[-1]), b, c.reshape(rows, b.shape[1]))
        else:
            _core.matmul(a, b.reshape((1,) * (da - 2) + b.shape), c)
        return finish(c, final)
    # Batched: at least one operand has rank >= 3.
    a3 = a[None, :] if da == 1 else a
    b3 = b[:, None] if db == 1 else b
    batch = broadcast_shapes(a3.shape[:-2], b3.shape[:-2], op="matmul")
    nbatch = math.prod(batch)
    if a3.shape[-1] != b3.shape[-2]:
        raise ShapeError(f"matmul: Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{nbatch}, {a3.shape[-1]}] but got: [{nbatch}, {b3.shape[-2]}].")
    if a.dtype != b.dtype:
        raise TypeError(f"expected scalar type {torch_dtype_name(a.dtype, True)} but found "
                        f"{torch_dtype_name(b.dtype, True)}")
    m, n = a3.shape[-2], b3.shape[-1]
    shape = batch + ((m,) if da > 1 else ()) + ((n,) if db > 1 else ())
    c, final = result_buffer(out, shape, a.dtype, (a, b), "matmul")
    nd = len(batch) + 2
    a3 = a3.reshape((1,) * (nd - a3.ndim) + a3.shape)
    b3 = b3.reshape((1,) * (nd - b3.ndim) + b3.shape)
    _core.matmul(a3, b3, c.reshape(batch + (m, n)))
    return finish(c, final)


# ---- addmm / linear ------------------------------------------------------------------------

def _expand_error(target, bias_shape) -> ShapeError:
    nb, nt = len(bias_shape), len(target)
    for i in range(1, min(nb, nt) + 1):
        if bias_shape[-i] != 1 and bias_shape[-i] != target[-i]:
            return ShapeError(f"The expanded size of the tensor ({target[-i]}) must match the existing size "
                              f"({bias_shape[-i]}) at non-singleton dimension {nt - i}.  Target sizes: {list(target)}.  "
                              f"Tensor sizes: {list(bias_shape)}")
    # Every size matches, but the bias has more dims than the output it would be added into.
    return _widening_error(tuple(target), broadcast_shapes(tuple(target), tuple(bias_shape)))


def _widening_error(target: tuple, widened: tuple) -> ShapeError:
    """torch's error for an in-place add whose other operand would widen the output."""
    return ShapeError(f"output with shape {list(target)} doesn't match the broadcast shape {list(widened)}")


def _expand_to(bias: np.ndarray, target: tuple) -> np.ndarray:
    """bias broadcast to target as a view (zero strides), with torch's expand message."""
    if bias.ndim > len(target):
        raise ShapeError(f"expand(torch.{torch_dtype_name(bias.dtype, True)}Tensor{{{list(bias.shape)}}}, "
                         f"size={list(target)}): the number of sizes provided ({len(target)}) must be greater or equal "
                         f"to the number of dimensions in the tensor ({bias.ndim})")
    for i in range(1, bias.ndim + 1):
        if bias.shape[-i] != 1 and bias.shape[-i] != target[-i]:
            raise _expand_error(target, bias.shape)
    return np.broadcast_to(bias, target)


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the result (torch.addmm).
    beta == 0 ignores input (NaN included) and alpha == 0 ignores the product, as torch."""
    beta, alpha = python_scalar(beta), python_scalar(alpha)
    for name, value in (("beta", beta), ("alpha", alpha)):
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"addmm(): argument '{name}' must be Number, not {type(value).__name__}")
    bias = aligned(as_array(input, "addmm", "input"))
    a = _operand(mat1, "addmm", "mat1")
    b = _operand(mat2, "addmm", "mat2")
    if a.ndim != 2:
        raise ShapeError(f"addmm: mat1 must be a matrix, got {a.ndim}-D tensor")
    if b.ndim != 2:
        raise ShapeError(f"addmm: mat2 must be a matrix, got {b.ndim}-D tensor")
    if a.shape[1] != b.shape[0]:
        raise _mm_shape_error("addmm", a.shape[0], a.shape[1], b.shape[0], b.shape[1])
    if a.dtype != b.dtype:
        raise TypeError(f"mat1 and mat2 must have the same dtype, but got {torch_dtype_name(a.dtype, True)} and "
                        f"{torch_dtype_name(b.dtype, True)}")
    if bias.dtype != b.dtype:
        raise TypeError(f"self and mat2 must have the same dtype, but got {_torch_upper_any(bias.dtype)} and "
                        f"{torch_dtype_name(b.dtype, True)}")
    shape = (a.shape[0], b.shape[1])
    addend = _expand_to(bias, shape)
    c, final = result_buffer(out, shape, a.dtype, (a, b, bias), "addmm")
    _core.addmm(a, b, c, addend if beta != 0 else None, None, float(alpha), float(beta), 0)
    return finish(c, final)


def _torch_upper_any(dtype) -> str:
    names = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
             "float16": "Half", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}
    return torch_dtype_name(dtype, True) if dtype in (_FLOAT32, _FLOAT64) else names.get(str(dtype), str(dtype))


def pack_linear_weight(weight):
    """Packs a linear weight [out_features, in_features] once into the GEMM microkernel's
    panel layout; pass the result to ``linear`` in place of the weight. The packed copy does
    not follow later changes to ``weight``: pack again after updating it."""
    w = _operand(weight, "pack_linear_weight", "weight")
    if w.ndim != 2:
        raise ShapeError(f"pack_linear_weight: weight must be 2-D [out_features, in_features], got {w.ndim}-D")
    return _core.PackedWeight(w)


def linear(input, weight, bias=None, *, activation=None, residual=None, out=None):
    """input @ weight.T + bias over any leading dims (torch.nn.functional.linear), with two
    fused extensions: ``residual`` (added after the bias, broadcast to the result) and
    ``activation`` (None, "relu", "gelu", "gelu_tanh" or "silu", applied last).
    ``weight`` may be an array [out_features, in_features] (or 1-D [in_features]) or the
    result of ``pack_linear_weight``."""
    act = epilogue_activation(activation, "linear")
    x = _operand(input, "linear", "input")
    packed = isinstance(weight, PackedLinearWeight)
    if packed:
        w = weight
        n, k = w.out_features, w.in_features
        wdim, wdtype = 2, np.dtype(w.dtype)
    else:
        w = _operand(weight, "linear", "weight")
        wdim, wdtype = w.ndim, w.dtype
    if x.ndim == 0 or wdim == 0:
        raise ShapeError(f"linear: both arguments to linear need to be at least 1D, but they are {x.ndim}D and {wdim}D")
    if wdim > 2:
        raise ShapeError(f"linear: t() expects a tensor with <= 2 dimensions, but self is {wdim}D")
    if wdim == 1:
        if act or residual is not None:
            raise ShapeError("linear: activation and residual need a 2-D weight")
        if bias is None:
            return matmul(x, w, out=out)
        # torch: addmm, which refuses the vector, for a 2-D input and for a contiguous one with
        # a bias of one non-1 dim (it flattens those); else matmul, then the bias added into its
        # result in place (so it must not widen it).
        b = aligned(as_array(bias, "linear", "bias"))
        one_dim = b.ndim == 1 or sum(size != 1 for size in b.shape) == 1
        if x.ndim == 2 or (one_dim and x.flags.c_contiguous):
            raise ShapeError("linear: mat2 must be a matrix, got 1-D tensor")
        if b.dtype != wdtype:
            raise TypeError(f"self and mat2 must have the same dtype, but got {_torch_upper_any(b.dtype)} and "
                            f"{torch_dtype_name(wdtype, True)}")
        y = matmul(x, w, out=out)
        widened = broadcast_shapes(y.shape, b.shape)
        if widened != y.shape:
            raise _widening_error(y.shape, widened)
        from .pointwise import add
        return add(y, b, out=y)
    if not packed:
        n, k = w.shape
    rows = math.prod(x.shape[:-1])
    if x.shape[-1] != k:
        raise _mm_shape_error("linear", rows, x.shape[-1], k, n)
    if x.dtype != wdtype:
        raise TypeError(f"expected m1 and m2 to have the same dtype, but got: {torch_dtype_name(x.dtype)} != "
                        f"{torch_dtype_name(wdtype)}")
    shape = x.shape[:-1] + (n,)
    addend = None
    if bias is not None:
        b = aligned(as_array(bias, "linear", "bias"))
        if b.dtype != wdtype:
            raise TypeError(f"self and mat2 must have the same dtype, but got {_torch_upper_any(b.dtype)} and "
                            f"{torch_dtype_name(wdtype, True)}")
        if b.ndim == 1 and b.shape[0] == n:
            addend = b  # the kernel adds it to every row
        elif b.ndim <= 1 or x.ndim <= 2 or (x.flags.c_contiguous and sum(size != 1 for size in b.shape) == 1):
            # torch folds a contiguous input into rows (addmm) when the bias has exactly one
            # dim that is not 1: the bias must then expand to the rows, not to the output.
            addend = _expand_to(b, (rows, n))
        else:
            if len(broadcast_shapes(shape, b.shape)) != len(shape):
                raise _expand_error(shape, b.shape)
            addend = _fold(np.broadcast_to(b, shape))
    res2 = None
    if residual is not None:
        r = _operand(residual, "linear", "residual")
        if r.dtype != x.dtype:
            raise TypeError(f"linear: residual has dtype {r.dtype}, expected {x.dtype}")
        if broadcast_shapes(shape, r.shape) != tuple(shape):
            raise ShapeError(f"linear: residual of shape {list(r.shape)} does not broadcast to the output shape {list(shape)}")
        rv = np.broadcast_to(r, shape)
        res2 = _fold(rv) if rv.ndim != 1 else rv.reshape(1, n)
    c, final = result_buffer(out, shape, x.dtype, (x, None if packed else w, bias, residual), "linear")
    x2 = _fold(x) if x.ndim != 1 else x.reshape(1, k)
    _core.addmm(x2, w if packed else w.T, c.reshape(rows, n), addend, res2, 1.0, 1.0, act)
    return finish(c, final)
