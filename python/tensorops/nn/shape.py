"""Modules that only pass data on or regroup its dims: ``Identity``, ``Flatten``, ``Unflatten``.

Flatten and Unflatten follow torch's rules for which dims may be merged or split and
return a view of the input whenever NumPy's reshape can (torch returns views there too);
they accept any dtype, as torch does.
"""
from __future__ import annotations

import math

from .._core import ShapeError
from .._validate import as_array, normalize_dim
from .module import Module

__all__ = ["Identity", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored (as torch does)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Merges dims ``start_dim`` .. ``end_dim`` into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        x = as_array(input, "flatten")
        start = normalize_dim(self.start_dim, x.ndim, "flatten")
        end = normalize_dim(self.end_dim, x.ndim, "flatten")
        if start > end:
            raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
        if x.ndim == 0:
            return x.reshape(1)
        if start == end:
            return x
        shape = x.shape
        return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (one entry may be -1, inferred)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                f"unflattened_size must be a tuple of ints, but found type {type(unflattened_size).__name__}")
        for pos, size in enumerate(unflattened_size):
            if not isinstance(size, int):
                raise TypeError(
                    "unflattened_size must be tuple of ints, "
                    f"but found element of type {type(size).__name__} at pos {pos}")
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input):
        x = as_array(input, "unflatten")
        sizes = list(self.unflattened_size)
        if not sizes:
            raise ShapeError("unflatten: sizes must be non-empty")
        dim = normalize_dim(self.dim, x.ndim, "unflatten")
        if x.ndim == 0:
            raise ShapeError(f"unflatten: Dimension specified as {dim} but tensor has no dimensions")
        length = x.shape[dim]
        return x.reshape(x.shape[:dim] + tuple(self._resolve(sizes, length, dim)) + x.shape[dim + 1:])

    @staticmethod
    def _resolve(sizes: list, length: int, dim: int) -> list:
        inferred = None
        known = 1
        for i, size in enumerate(sizes):
            if size == -1:
                if inferred is not None:
                    raise ShapeError("unflatten: only one dimension can be inferred")
                inferred = i
            elif size < 0:
                raise ShapeError(f"unflatten: invalid shape dimension {size} at index {i} of shape {sizes}")
            else:
                known *= size
        fits = known == length or (inferred is not None and known > 0 and length % known == 0)
        if not fits:
            raise ShapeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {dim} "
                             f"({length}) in the input tensor")
        if inferred is not None:
            if known == 0:
                raise ShapeError(f"unflatten: cannot reshape tensor of 0 elements into shape {sizes} because the "
                                 "unspecified dimension size -1 can be any value and is ambiguous")
            sizes[inferred] = length // known
        return sizes

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
