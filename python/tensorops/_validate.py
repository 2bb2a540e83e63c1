"""Argument normalisation and checks shared by every family, worded as PyTorch words them.

Everything here runs before a kernel is called: C++ re-checks only what it must to stay
memory-safe. Keep these helpers cheap; they sit on every call's path.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _core
from ._core import ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_ndarray = np.ndarray


def as_array(x, op: str, arg: str = "input") -> np.ndarray:
    """Any array-like as an ndarray, without copying when the data allows.

    ndarrays pass through; ``__dlpack__`` objects (torch CPU tensors) are wrapped zero-copy;
    the buffer protocol and ``__array__`` go through ``np.asarray``. Arrays whose byte strides
    are not a multiple of the item size (possible with NumPy views of structured data) are
    copied, since kernels count strides in elements.
    """
    if type(x) is not _ndarray:
        if isinstance(x, _ndarray):
            x = x.view(np.ndarray)
        elif hasattr(x, "__dlpack__") and not isinstance(x, (numbers.Number, str, bytes)):
            x = _from_dlpack(x, op, arg)
        else:
            try:
                converted = np.asarray(x)
            except Exception as exc:  # noqa: BLE001 - reworded for the user
                raise TypeError(f"{op}: argument '{arg}' must be an array-like, got {type(x).__name__}") from exc
            if converted.dtype.kind in "OUSV":  # objects, strings, raw bytes
                raise TypeError(f"{op}: argument '{arg}' must be an array-like of numbers, got {type(x).__name__}")
            x = converted
    itemsize = x.itemsize
    for s in x.strides:
        if s % itemsize:
            return np.ascontiguousarray(x)
    return x


def inplace_input(input, out, op: str, floats: bool = False) -> np.ndarray:
    """The array an ``inplace=True`` call writes into: the input itself (not a copy, even when
    unaligned), writeable (and of a float dtype, with `floats`); ``out=`` cannot come with it."""
    if out is not None:
        raise TypeError(f"{op}: inplace=True and out= cannot be combined")
    x = as_array(input, op)
    if floats:
        check_float(x, op)
    if not x.flags.writeable:
        raise ValueError(f"{op}: inplace=True needs a writeable input, but the input array is read-only")
    return x


def python_scalar(value):
    """A 0-d array or tensor as the Python number it holds (torch's argument parser takes one
    wherever a number goes); anything else unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def is_index(value) -> bool:
    """An int as torch's argument parser takes one: anything with __index__ (NumPy and 0-d
    torch integers) except bools."""
    return type(value) is int or (hasattr(value, "__index__") and not isinstance(value, (bool, np.bool_)))


def torch_type_name(value) -> str:
    """A type as torch's argument parser names it: builtins bare, others with their module
    (``float``, ``numpy.bool``)."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def unpack_error(op: str, name: str, pos: int, item) -> TypeError:
    """torch's error for a later element of an int-sequence argument that is no index (its
    parser checks a sequence's first element by type and unpacks the rest as indices, which
    lets a Python bool through as 0 or 1). pos is 0-based; torch counts from 1."""
    return TypeError(f"{op}(): argument '{name}' failed to unpack the object at pos {pos + 1} with error "
                     f'"type must be tuple of ints,but got {torch_type_name(item)}"')


def aligned(x: np.ndarray) -> np.ndarray:
    """x, or an aligned copy when its data pointer is off the item size (a view at an odd byte
    offset): kernels read through typed pointers, where that is undefined behaviour, and C++
    refuses it. Views stay views: only arrays about to reach a kernel go through here."""
    return x if x.flags.aligned else x.copy()


def _from_dlpack(x, op: str, arg: str) -> np.ndarray:
    detach = getattr(x, "detach", None)
    if detach is not None and getattr(x, "requires_grad", False):
        x = detach()  # torch refuses to export tensors that require grad
    is_neg = getattr(x, "is_neg", None)
    if is_neg is not None and is_neg():
        # A lazily negated view (z.conj().imag) exports its memory without the sign it
        # reads with: materialise the values first.
        x = x.resolve_neg()
    device = getattr(x, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        raise TypeError(f"{op}: argument '{arg}' is on device '{device}', tensorops computes on the CPU")
    try:
        return np.from_dlpack(x)
    except (TypeError, BufferError, RuntimeError) as exc:
        error = exc
    if hasattr(x, "__array__"):
        try:
            return np.asarray(x)
        except (TypeError, RuntimeError) as exc:  # a dtype NumPy lacks (bfloat16), a conjugate view
            error = exc
    dtype = getattr(x, "dtype", None)
    shown = f" of dtype {dtype}" if dtype is not None else ""
    raise TypeError(f"{op}: cannot read argument '{arg}' of type {type(x).__name__}{shown}: {error}") from error


_POOLED_BYTES = _core.POOLED_BYTES
_core_empty = _core.empty
_np_empty = np.empty


def empty(shape, dtype) -> np.ndarray:
    """A new C-contiguous array for an op's result. Multi-megabyte ones come from tensorops'
    buffer pool, whose blocks come back warm when their array dies (no page faults on the next
    output of that size); small ones from NumPy."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for size in shape:
        nbytes *= size
    try:
        if nbytes < _POOLED_BYTES:
            return _np_empty(shape, dtype)
        return _core_empty(tuple(shape), dtype)
    except ValueError as exc:  # a size past what an index can hold (NumPy's "array is too big")
        raise _too_big(shape, exc) from None


def _too_big(shape, exc) -> ShapeError:
    return ShapeError(f"a tensor of shape {list(shape)} cannot be allocated: {exc}")


def numpy_dtype(dtype) -> np.dtype:
    """np.dtype(dtype), a torch dtype taken by its name (torch.float64 -> float64); TypeError
    for what is neither."""
    if type(dtype).__module__ == "torch":
        dtype = str(dtype).rpartition(".")[2]
    return np.dtype(dtype)


def module_dtype(dtype, owner: str) -> np.dtype:
    """The dtype of a module's parameters: float32 by default (torch's default dtype),
    float64 on request (as a NumPy or a torch dtype), anything else a TypeError naming the
    module."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dtype = numpy_dtype(dtype)
    except TypeError:
        raise TypeError(f"{owner}: unsupported dtype {dtype}; supported dtypes are float32 and float64") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: unsupported dtype {dtype}; supported dtypes are float32 and float64")
    return dtype


def module_device(device, owner: str) -> None:
    """A module's ``device`` argument: None or the CPU ("cpu", "cpu:0", torch.device("cpu"))."""
    if device is None or str(device).split(":")[0] == "cpu":
        return
    try:
        numpy_dtype(device)
    except TypeError:
        raise TypeError(f"{owner}: tensorops computes on the CPU, got device '{device}'") from None
    # A dtype where torch's order has the device (the dtype came positionally).
    raise TypeError(f"{owner}: got the dtype {device} where torch's argument order has the device; pass it as dtype=")


def module_array(shape, dtype, fill=None) -> np.ndarray:
    """A module's new parameter or buffer: ``fill`` (or uninitialised), refusing a negative
    size in torch's words."""
    shape = tuple(shape)
    if any(size < 0 for size in shape):
        raise ShapeError(f"Trying to create tensor with negative dimension {min(shape)}: {list(shape)}")
    try:
        return np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    except ValueError as exc:
        raise _too_big(shape, exc) from None


def typename(obj) -> str:
    """obj's type as torch's messages name it: a builtin bare, anything else with its module."""
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def check_bool(value, op: str, name: str) -> None:
    """A flag torch's argument parser takes only as a Python bool (keepdim, training)."""
    if type(value) is not bool:
        raise TypeError(f"{op}(): argument '{name}' must be bool, not {typename(value)}")


def check_float(x: np.ndarray, op: str, arg: str = "input") -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{op}: "{arg}" has unsupported dtype {x.dtype}; supported dtypes are float32 and float64')


def float_array(x, op: str, arg: str = "input") -> np.ndarray:
    x = as_array(x, op, arg)
    check_float(x, op, arg)
    return x if x.flags.aligned else x.copy()


def normalize_dim(dim, ndim: int, op: str = "") -> int:
    """A dim in [-ndim, ndim) as a non-negative int; 0-d tensors accept -1 and 0, as torch."""
    try:
        if isinstance(dim, (bool, np.bool_)):  # an index, to Python, but not a dim to torch
            raise TypeError
        d = operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    rank = max(ndim, 1)
    if d < -rank or d >= rank:
        raise IndexError(f"{op}: " * bool(op) +
                         f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {d})")
    return d + rank if d < 0 else d


def normalize_dims(dims, ndim: int, op: str = "") -> tuple:
    """None -> all dims; int or sequence -> sorted tuple of distinct non-negative dims."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, (list, tuple)):
        out = []
        for d in dims:
            nd = normalize_dim(d, ndim, op)
            if nd in out:
                raise ShapeError(f"{op}: dim {nd} appears multiple times in the list of dims")
            out.append(nd)
        return tuple(sorted(out))
    return (normalize_dim(dims, ndim, op),)


def broadcast_shapes(*shapes, names=("a", "b", "c"), op: str = "") -> tuple:
    """NumPy/torch broadcasting of shapes, with torch's message on a mismatch (after "op: ")."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for i, shape in enumerate(shapes):
        offset = ndim - len(shape)
        for j in reversed(range(len(shape))):  # torch reports the last mismatched dim
            size, k = shape[j], offset + j
            if size == out[k] or size == 1:
                continue
            if out[k] == 1:
                out[k] = size
                continue
            # torch names the tensor whose size it kept 'a' and the newcomer 'b'.
            raise ShapeError(
                f"{op}: " * bool(op) + f"The size of tensor a ({out[k]}) must match the size of tensor "
                f"{names[min(i, len(names) - 1)] if i else 'b'} ({size}) at non-singleton dimension {k}"
            )
    return tuple(out)


def readable_beside(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """x, or a copy of it when out overlaps it other than element for element: a kernel that
    writes out while it reads x would otherwise read values it has already overwritten."""
    if out is None or not np.may_share_memory(x, out):
        return x
    same = (x.shape == out.shape and x.strides == out.strides
            and x.__array_interface__["data"][0] == out.__array_interface__["data"][0])
    return x if same else np.array(x)


def check_out(out, shape: tuple, dtype, op: str) -> np.ndarray:
    """``out=``: a C-contiguous, writeable ndarray of the result's shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ShapeError(f"{op}: out has shape {list(out.shape)}, expected {list(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{op}: out has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.c_contiguous:
        raise ShapeError(f"{op}: out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out is read-only")
    if not out.flags.aligned:
        raise ShapeError(f"{op}: out must be aligned to its item size")
    return out


_TORCH_DTYPE_NAMES = {np.dtype(np.float32): ("float", "Float"), np.dtype(np.float64): ("double", "Double")}


def torch_dtype_name(dtype, capitalized: bool = False) -> str:
    """A float dtype as torch's C++ messages print it: "float"/"double" ("Float"/"Double"
    capitalized, as in "expected scalar type Float"); other dtypes by their NumPy name."""
    dtype = np.dtype(dtype)
    names = _TORCH_DTYPE_NAMES.get(dtype)
    return str(dtype) if names is None else names[capitalized]


def result_buffer(out, shape, dtype, inputs, op: str = ""):
    """``(array to compute into, final)`` for an op with ``out=``: a fresh array when out is
    None, else out itself after torch's checks, or a temporary when out overlaps one of
    ``inputs`` (kernels write the result before they have read every input); ``finish``
    then copies the temporary into ``final``. ``op`` prefixes the messages when given."""
    if out is None:
        return empty(shape, dtype), None
    prefix = f"{op}: " if op else ""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{prefix}out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{prefix}Expected out tensor to have dtype {torch_dtype_name(dtype)}, but got "
                        f"{torch_dtype_name(out.dtype)} instead")
    if out.shape != tuple(shape):
        raise ShapeError(f"{prefix}out has shape {list(out.shape)}, expected {list(shape)}")
    if not out.flags.c_contiguous:
        raise ShapeError(f"{prefix}out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{prefix}out is read-only")
    for x in inputs:
        if x is not None and np.may_share_memory(out, x):
            return empty(shape, dtype), out
    return out, None


def finish(result: np.ndarray, final):
    """The value an ``out=`` op returns: ``result``, or ``final`` with ``result`` copied in
    when ``result_buffer`` had to compute into a temporary."""
    if final is None:
        return result
    np.copyto(final, result)
    return final


def to_pair(value, op: str, arg: str) -> tuple:
    """int or length-2 sequence -> (int, int)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = (value[0], value[0])
        if len(value) != 2:
            raise ShapeError(f"{op}: {arg} must be an int or a pair of ints, got {tuple(value)}")
        return (operator.index(value[0]), operator.index(value[1]))
    v = operator.index(value)
    return (v, v)
