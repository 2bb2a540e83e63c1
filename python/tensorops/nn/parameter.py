"""``Parameter``: how a module tells its learnable arrays apart from everything else.

torch marks parameters with a Tensor subclass; here a Parameter is an ``np.ndarray``
subclass that views the array it was built from (no copy, as ``torch.nn.Parameter``
shares storage with its tensor). Assigning one to a module attribute registers it. Only
the marking matters, so arithmetic on a Parameter (ufunc results, indexing) yields plain
ndarrays: a product of weights is not itself a weight.
"""
from __future__ import annotations

import numpy as np

from .._core import ShapeError
from .._validate import as_array

__all__ = ["Parameter"]


class Parameter(np.ndarray):
    """An array a module owns as a parameter: ``nn.Parameter(array, requires_grad=True)``.

    ``data`` may be any array-like (NumPy arrays are viewed, torch CPU tensors shared
    through DLPack). ``requires_grad`` is kept for code written against torch; tensorops
    does not train, so nothing reads it.
    """

    def __new__(cls, data=None, requires_grad: bool = True):
        array = np.empty(0, np.float32) if data is None else as_array(data, "Parameter", "data")
        if requires_grad and array.dtype.kind not in "fc":
            raise ShapeError("Only Tensors of floating point and complex dtype can require gradients")
        param = array.view(cls)
        param.requires_grad = bool(requires_grad)
        return param

    def __array_finalize__(self, obj):
        self.requires_grad = getattr(obj, "requires_grad", True)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        if return_scalar:
            return array[()]
        # In-place arithmetic (p += 1) writes into the parameter itself, which stays one.
        return array if array is self else array.view(np.ndarray)

    # Bumped by every write through an index (``p[...] = w``, also through a Parameter view
    # of it such as ``p.reshape(-1)``, which bumps every Parameter it views), so that layers
    # keeping a packed copy of their weight see the write (see nn/_packed.py).
    _version = 0

    def __getitem__(self, key):
        item = np.ndarray.__getitem__(self, key)
        return item.view(np.ndarray) if isinstance(item, np.ndarray) else item

    def __setitem__(self, key, value):
        np.ndarray.__setitem__(self, key, value)
        owner = self
        while owner is not None:
            if isinstance(owner, Parameter):
                owner._version += 1
            owner = owner.base if isinstance(owner, np.ndarray) else None

    def __reduce__(self):
        return (Parameter, (self.view(np.ndarray), self.requires_grad))

    def __repr__(self) -> str:
        return "Parameter containing:\n" + repr(self.view(np.ndarray))

    __str__ = __repr__  # as torch prints a Parameter
