"""Shape and layout: views, reshapes, joins and splits, as torch does them.

Where torch returns a view, these return a NumPy view of the input (the same memory);
where torch copies, they copy, through the C++ strided copy (contiguous, reshape when the
strides cannot express the new shape, cat, stack). Views work for any dtype; the ops that
copy take float32, float64, int32, int64 and bool.
"""
from __future__ import annotations

import operator
from math import prod

import numpy as np

from . import _core
from ._core import ShapeError
from ._validate import aligned, as_array, check_out, empty, normalize_dim

__all__ = ["reshape", "view", "transpose", "permute", "squeeze", "unsqueeze", "flatten", "cat", "concat", "stack",
           "expand", "split", "chunk", "narrow", "contiguous"]

_COPY_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.bool_))
# torch's promotion among those dtypes: bool < integers < floating, then the wider one.
_KIND_RANK = {"b": 0, "i": 1, "f": 2}
_TORCH_TENSOR_TYPE = {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor", "int32": "torch.IntTensor",
                      "int64": "torch.LongTensor", "bool": "CPUBoolType"}
_as_strided = np.lib.stride_tricks.as_strided
_MAX_BYTES = np.iinfo(np.intp).max
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _check_copy_dtype(dtype, op: str) -> None:
    if dtype not in _COPY_DTYPES:
        raise TypeError(f"{op}: unsupported dtype {dtype}; supported dtypes are float32, float64, int32, int64 and bool")


def _copy(x: np.ndarray, op: str) -> np.ndarray:
    _check_copy_dtype(x.dtype, op)
    out = empty(x.shape, x.dtype)
    _core.copy(aligned(x), out)
    return out


def _int(value, op: str, arg: str, position: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be int, not bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be int, not {type(value).__name__}") from None
    if not _INT64_MIN <= value <= _INT64_MAX:  # torch's argument parser refuses these outright
        raise ShapeError(f"{op}(): argument '{arg}' (position {position}): Overflow when unpacking long long")
    return value


def _int_tuple(values, op: str, arg: str, position: int) -> tuple:
    """A sequence of ints, worded as torch's argument parser words a wrong one."""
    if not isinstance(values, (tuple, list)):
        raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be tuple of ints, not {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be tuple of ints, "
                            f"but found element of type {type(v).__name__} at pos {i}")
        out.append(operator.index(v))
    return tuple(out)


def _varargs_ints(values: tuple, op: str, arg: str) -> tuple:
    """Tensor-method style sizes: f(x, 2, 3) or f(x, (2, 3))."""
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = values[0]
    return _int_tuple(values, op, arg, 1)


def _infer_size(shape: tuple, numel: int) -> tuple:
    infer = None
    known = 1
    for i, s in enumerate(shape):
        if s == -1:
            if infer is not None:
                raise ShapeError("only one dimension can be inferred")
            infer = i
        elif s >= 0:
            known *= s
        else:
            raise ShapeError(f"invalid shape dimension {s} at index {i} of shape {list(shape)}")
    if numel == known or (infer is not None and known > 0 and numel % known == 0):
        if infer is None:
            return shape
        if known == 0:
            raise ShapeError(f"cannot reshape tensor of 0 elements into shape {list(shape)} because the unspecified "
                             "dimension size -1 can be any value and is ambiguous")
        return shape[:infer] + (numel // known,) + shape[infer + 1:]
    raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {numel}")


def _view_strides(shape: tuple, strides: tuple, new_shape: tuple, itemsize: int):
    """Byte strides that show the same elements as new_shape, or None where torch.view would
    refuse (torch's computeStride: each run of dims that is contiguous in memory may be split
    or merged, but no new dim may span two such runs)."""
    if not shape:
        return (itemsize,) * len(new_shape)
    if prod(shape) == 0:
        if shape == new_shape:
            return strides
        out = [0] * len(new_shape)
        step = itemsize
        for d in range(len(new_shape) - 1, -1, -1):
            out[d] = step
            step *= max(new_shape[d], 1)
        return tuple(out)
    out = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_stride = strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                out[view_d] = view_numel * chunk_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_stride = strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    return tuple(out) if view_d == -1 else None


def _reshape(x: np.ndarray, new_shape: tuple, op: str, view_only: bool) -> np.ndarray:
    if x.flags.c_contiguous:
        try:
            return x.reshape(new_shape)
        except ValueError as exc:  # sizes whose product overflows an index, beside a 0
            raise ShapeError(f"{op}: shape {list(new_shape)} is too large: {exc}") from None
    strides = _view_strides(x.shape, x.strides, new_shape, x.itemsize)
    if strides is not None:
        return _as_strided(x, new_shape, strides)
    if view_only:
        raise ShapeError("view size is not compatible with input tensor's size and stride (at least one dimension "
                         "spans across two contiguous subspaces). Use .reshape(...) instead.")
    return _copy(x, op).reshape(new_shape)


def reshape(input, shape):
    """torch.reshape: a view when the strides allow it, else a C-contiguous copy; one -1 is inferred."""
    x = as_array(input, "reshape")
    return _reshape(x, _infer_size(_int_tuple(shape, "reshape", "shape", 2), x.size), "reshape", False)


def _sizes_by_keyword(op: str, positional: tuple, keywords: dict, names: tuple) -> tuple:
    """The sizes of a varargs op (view, permute, expand), given positionally or, as torch also
    takes them, as one sequence under one of `names`."""
    unknown = set(keywords) - set(names)
    if unknown:
        raise TypeError(f"{op}() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    if keywords:
        if positional or len(keywords) > 1:
            raise TypeError(f"{op}() got multiple values for argument '{names[0]}'")
        return (next(iter(keywords.values())),)
    return positional


def view(input, *shape, **keywords):
    """Tensor.view: ``view(x, 2, 3)``, ``view(x, (2, 3))`` or ``view(x, size=(2, 3))``; raises
    where torch.view raises (the strides cannot express the new shape) instead of copying."""
    x = as_array(input, "view")
    shape = _sizes_by_keyword("view", shape, keywords, ("size", "shape"))
    return _reshape(x, _infer_size(_varargs_ints(shape, "view", "size"), x.size), "view", True)


def transpose(input, dim0, dim1):
    """torch.transpose: a view with dims dim0 and dim1 swapped."""
    x = as_array(input, "transpose")
    d0 = normalize_dim(dim0, x.ndim, "transpose")
    d1 = normalize_dim(dim1, x.ndim, "transpose")
    return x.swapaxes(d0, d1) if x.ndim else x.view()


def permute(input, *dims, **keywords):
    """torch.permute: ``permute(x, (2, 0, 1))`` (or ``permute(x, 2, 0, 1)``, ``dims=(2, 0, 1)``),
    a view."""
    x = as_array(input, "permute")
    dims = _varargs_ints(_sizes_by_keyword("permute", dims, keywords, ("dims",)), "permute", "dims")
    if len(dims) != x.ndim:
        raise ShapeError("permute(sparse_coo): number of dimensions in the tensor input does not match the length of "
                         f"the desired ordering of dimensions i.e. input.dim() = {x.ndim} is not equal to "
                         f"len(dims) = {len(dims)}")
    order = []
    for d in dims:  # one at a time, as torch: a duplicate before an out-of-range dim is reported first
        nd = normalize_dim(d, x.ndim, "permute")
        if nd in order:
            raise ShapeError("permute(): duplicate dims are not allowed.")
        order.append(nd)
    return x.transpose(order)


def squeeze(input, dim=None):
    """torch.squeeze: drops size-1 dims (all, one, or a tuple of them); other dims named are kept."""
    x = as_array(input, "squeeze")
    if dim is None:
        return x.squeeze()
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = []
    for d in dims:
        nd = normalize_dim(d, x.ndim, "squeeze")
        if nd in axes:
            raise ShapeError(f"dim {nd} appears multiple times in the list of dims")
        axes.append(nd)
    if x.ndim == 0:
        return x.view()
    return x.squeeze(axis=tuple(a for a in axes if x.shape[a] == 1))


def unsqueeze(input, dim):
    """torch.unsqueeze: a view with a size-1 dim inserted at dim (in [-ndim-1, ndim])."""
    x = as_array(input, "unsqueeze")
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return x[(slice(None),) * d + (None,)]


def flatten(input, start_dim=0, end_dim=-1):
    """torch.flatten: dims start_dim..end_dim merged into one (a view when the strides allow);
    a 0-d input gives shape (1,)."""
    x = as_array(input, "flatten")
    s = normalize_dim(start_dim, x.ndim, "flatten")
    e = normalize_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if x.ndim == 0:
        return x.reshape(1)
    if s == e:
        return x
    new_shape = x.shape[:s] + (prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return _reshape(x, new_shape, "flatten", False)


def contiguous(input):
    """Tensor.contiguous: the input itself when it is C-contiguous, else a C-contiguous copy."""
    x = as_array(input, "contiguous")
    return x if x.flags.c_contiguous else _copy(x, "contiguous")


def _array_list(tensors, op: str) -> list:
    if isinstance(tensors, np.ndarray) or hasattr(tensors, "__dlpack__") or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be tuple of Tensors, not {type(tensors).__name__}")
    return [as_array(t, op, "tensors") for t in tensors]


def _result_dtype(arrays: list, op: str):
    best = arrays[0].dtype
    for a in arrays:
        dt = a.dtype
        if dt is best or dt == best:
            continue
        _check_copy_dtype(dt, op)
        _check_copy_dtype(best, op)
        if (_KIND_RANK[dt.kind], dt.itemsize) > (_KIND_RANK[best.kind], best.itemsize):
            best = dt
    _check_copy_dtype(best, op)
    return best


class _DefaultDim(int):
    """cat's and stack's default dim: 0, told apart from a dim=0 given beside axis=."""

    def __repr__(self) -> str:
        return "0"


_DIM_ZERO = _DefaultDim(0)


def _dim_or_axis(dim, axis, op: str):
    """torch's NumPy-style ``axis=`` alias of ``dim`` (one or the other)."""
    if axis is None:
        return dim
    if dim is not _DIM_ZERO:
        raise TypeError(f"{op}() received both dim and axis; pass one of them")
    return axis


def _result_array(shape: tuple, dtype, out, op: str, arrays: list):
    """The array a joining op writes: a new one, or ``out=`` (checked), with any input that
    shares memory with out copied first so that nothing is read after it was overwritten."""
    if out is None:
        return empty(shape, dtype), arrays
    check_out(out, shape, dtype, op)
    return out, [a.copy() if np.may_share_memory(a, out) else a for a in arrays]


def cat(tensors, dim=_DIM_ZERO, *, axis=None, out=None):
    """torch.cat: the tensors joined along dim (or ``axis``), into one new array or ``out=``.
    Shapes must match except along dim; 1-D empty tensors (shape (0,)) are skipped, as torch
    does; mixed dtypes promote as torch promotes them (float32 with float64 gives float64)."""
    dim = _dim_or_axis(dim, axis, "cat")
    arrays = _array_list(tensors, "cat")
    if not arrays:
        raise ShapeError("torch.cat(): expected a non-empty list of Tensors")
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ShapeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    dtype = _result_dtype(arrays, "cat")
    first = None
    for a in arrays:
        if a.shape != (0,):
            first = a
            break
    if first is None:
        return _result_array((0,), dtype, out, "cat", [])[0]
    ndim = first.ndim
    d = normalize_dim(dim, ndim, "cat")
    kept = []
    total = 0
    for i, a in enumerate(arrays):
        if a.shape == (0,):
            continue
        if a.ndim != ndim:
            raise ShapeError(f"Tensors must have same number of dimensions: got {ndim} and {a.ndim}")
        for k in range(ndim):
            if k != d and a.shape[k] != first.shape[k]:
                raise ShapeError(f"Sizes of tensors must match except in dimension {d}. Expected size "
                                 f"{first.shape[k]} but got size {a.shape[k]} for tensor number {i} in the list.")
        total += a.shape[d]
        kept.append(a)
    out, kept = _result_array(first.shape[:d] + (total,) + first.shape[d + 1:], dtype, out, "cat", kept)
    _core.cat([aligned(a) for a in kept], d, out)
    return out


concat = cat


def stack(tensors, dim=_DIM_ZERO, *, axis=None, out=None):
    """torch.stack: equal-shaped tensors joined along a new dim (or ``axis``), into one new
    array or ``out=``."""
    dim = _dim_or_axis(dim, axis, "stack")
    arrays = _array_list(tensors, "stack")
    if not arrays:
        raise ShapeError("stack expects a non-empty TensorList")
    first = arrays[0]
    d = normalize_dim(dim, first.ndim + 1, "stack")
    for i, a in enumerate(arrays):
        if a.shape != first.shape:
            raise ShapeError(f"stack expects each tensor to be equal size, but got {list(first.shape)} at entry 0 "
                             f"and {list(a.shape)} at entry {i}")
    out, arrays = _result_array(first.shape[:d] + (len(arrays),) + first.shape[d:], _result_dtype(arrays, "stack"),
                                out, "stack", arrays)
    _core.stack([aligned(a) for a in arrays], d, out)
    return out


def expand(input, *sizes, **keywords):
    """Tensor.expand: ``expand(x, 2, 3)``, ``expand(x, (2, 3))`` or ``expand(x, size=(2, 3))``;
    size-1 dims (and new leading dims) are repeated by a zero stride, -1 keeps a size. A view:
    no data is copied."""
    x = as_array(input, "expand")
    sizes = _varargs_ints(_sizes_by_keyword("expand", sizes, keywords, ("size",)), "expand", "size")
    ndim = len(sizes)
    if ndim < x.ndim:
        kind = _TORCH_TENSOR_TYPE.get(x.dtype.name, x.dtype.name)
        raise ShapeError(f"expand({kind}{{{list(x.shape)}}}, size={list(sizes)}): the number of sizes provided "
                         f"({ndim}) must be greater or equal to the number of dimensions in the tensor ({x.ndim})")
    shape = [0] * ndim
    strides = [0] * ndim
    lead = ndim - x.ndim
    for i in range(ndim - 1, -1, -1):
        target = sizes[i]
        size, stride = (x.shape[i - lead], x.strides[i - lead]) if i >= lead else (1, 0)
        if target == -1 and x.ndim:  # torch takes a 0-d input's -1 as a literal (negative) size
            if i < lead:
                raise ShapeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing "
                                 f"dimension {i}")
            target = size
        elif size != target:
            if size != 1:
                raise ShapeError(f"The expanded size of the tensor ({target}) must match the existing size ({size}) at "
                                 f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  "
                                 f"Tensor sizes: {list(x.shape)}")
            stride = 0
        shape[i] = target
        strides[i] = stride
    if min(shape, default=0) < 0:
        raise ShapeError("numel: integer multiplication overflow")  # torch's words for a negative size
    if max(shape, default=0) > _MAX_BYTES or prod(shape) * x.itemsize > _MAX_BYTES:
        # torch can hold such a view; NumPy cannot describe an array of more bytes than intp counts.
        raise ShapeError(f"expand: size {list(shape)} has more elements of {x.dtype} than an array can address")
    return _as_strided(x, tuple(shape), tuple(strides))


def _slices(x: np.ndarray, d: int, sizes) -> tuple:
    prefix = (slice(None),) * d
    out = []
    start = 0
    for n in sizes:
        out.append(x[prefix + (slice(start, start + n),)])
        start += n
    return tuple(out)


def split(tensor, split_size_or_sections, dim=0):
    """torch.split: a tuple of views along dim, each split_size long (the last may be shorter),
    or as long as the given sections, which must sum to the size of dim."""
    x = as_array(tensor, "split")
    if x.ndim == 0:
        raise ShapeError("split expects at least a 1-dimensional tensor")
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = _int_tuple(split_size_or_sections, "split", "split_size", 2)
        d = normalize_dim(dim, x.ndim, "split")
        if any(s < 0 for s in sections):
            raise ShapeError(f"split_with_sizes expects split_sizes have only non-negative entries, but got "
                             f"split_sizes={list(sections)}")
        if sum(sections) != x.shape[d]:
            raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {x.shape[d]} (input tensor's "
                             f"size at dimension {dim}), but got split_sizes={list(sections)}")
        return _slices(x, d, sections)
    size = _int(split_size_or_sections, "split", "split_size", 2)
    if size < 0:
        raise ShapeError(f"split expects split_size be non-negative, but got split_size={size}")
    d = normalize_dim(dim, x.ndim, "split")
    length = x.shape[d]
    if size == 0:
        if length != 0:
            raise ShapeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {length}")
        return (x[(slice(None),) * d + (slice(0, 0),)],)
    count = max((length + size - 1) // size, 1)
    return _slices(x, d, [size] * (count - 1) + [length - size * (count - 1)])


def chunk(input, chunks, dim=0):
    """torch.chunk: split into pieces of ceil(size / chunks) along dim, so there may be fewer
    than chunks pieces (7 into 4 gives 2, 2, 2, 1; 6 into 4 gives 2, 2, 2)."""
    x = as_array(input, "chunk")
    chunks = _int(chunks, "chunk", "chunks", 1)
    if x.ndim == 0:
        raise ShapeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise ShapeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = normalize_dim(dim, x.ndim, "chunk")
    length = x.shape[d]
    if length == 0:  # torch keeps the number of chunks here: that many empty pieces
        return _slices(x, d, [0] * chunks)
    return split(x, (length + chunks - 1) // chunks, d)


def narrow(input, dim, start, length):
    """torch.narrow: a view of length elements of dim from start (which may be negative)."""
    x = as_array(input, "narrow")
    start = _int(start, "narrow", "start", 2)
    length = _int(length, "narrow", "length", 3)
    if x.ndim == 0:
        raise ShapeError("narrow() cannot be applied to a 0-dim tensor.")
    if length < 0:
        raise ShapeError("narrow(): length must be non-negative.")
    d = normalize_dim(dim, x.ndim, "narrow")
    size = x.shape[d]
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if start > size - length:
        raise ShapeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return x[(slice(None),) * d + (slice(start, start + length),)]
