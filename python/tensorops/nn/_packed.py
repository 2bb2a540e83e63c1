"""What the layers that pack their weight once (Linear, Conv2d, ConvTranspose2d) share.

They prepare their weight for the kernels on the first forward (GEMM panels, reordered
filters) and keep the result under ``_packed`` until the weights change: ``_weights_changed``,
which Module calls whenever a parameter is replaced, loaded or converted, drops it; a copy
also lapses when any module loads a state_dict after it was made, since the weight may be an
array that module shares (tied weights), and when the weight was written in place (torch
code's ``weight.copy_(w)`` / ``fill_``, ported as ``weight[...] = w``): every write through
the Parameter's index counts (its ``_version``), and a write by other means (``np.copyto``,
a view, a torch tensor sharing the memory) is seen when it changes the first, middle or last
element. A write that changes none of those through a view or another array stays unseen:
call ``reset_packed_weight()`` after it. They also share torch's default initialisation of
such layers.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import module_array
from .module import Module, in_place_loads
from .parameter import Parameter


class PackedLayer(Module):
    """A Module whose forward uses a packed copy of its weight, kept in ``_packed``.
    ``_derived_state`` names every attribute derived from the weights that a copy must
    rebuild rather than carry (a subclass that keeps more extends it)."""

    _derived_state: tuple = ("_packed",)

    def _create_parameters(self, weight_shape: tuple, bias_size, dtype) -> None:
        """Registers ``weight`` and ``bias`` (``bias_size`` values, or None when it is None) in
        torch's order, then initialises them with the layer's ``reset_parameters``."""
        self._packed = None
        self.weight = Parameter(module_array(weight_shape, dtype))
        if bias_size is None:
            self.register_parameter("bias", None)
        else:
            self.bias = Parameter(module_array((bias_size,), dtype))
        self.reset_parameters()

    def _weight_signature(self) -> tuple:
        """What tells a written weight from the one packed: its index-write count and three
        of its elements (NaN spelled out, since NaN != NaN would repack on every call)."""
        w = self._parameters.get("weight")
        if w is None or not w.size:
            return ()
        size = w.size
        first, middle, last = w.item(0), w.item(size // 2), w.item(size - 1)
        if first != first or middle != middle or last != last:
            first, middle, last = repr(first), repr(middle), repr(last)
        return (getattr(w, "_version", 0), first, middle, last)

    def _kept_packing(self, key=None):
        """The packed weight kept for ``key`` (what it was packed for: groups, kernel set...),
        or None when there is none, another module has loaded a state_dict since or the
        weight was written in place (see the module's docstring)."""
        kept = self.__dict__.get("_packed")
        if kept is not None and kept[0] == (in_place_loads(), key, self._weight_signature()):
            return kept[1]
        return None

    def _keep_packing(self, packed, key=None) -> None:
        self.__dict__["_packed"] = ((in_place_loads(), key, self._weight_signature()), packed)

    def reset_packed_weight(self) -> None:
        """Drops the packed weight; the next forward packs the current one."""
        self.__dict__["_packed"] = None

    def __getstate__(self) -> dict:
        """What pickle and copy.deepcopy keep: the layer without what it derived from its
        weights (the packed weight, nn.Conv2d's kept call plan), which hold compiled objects
        that cannot be pickled; the copy packs its own on its first forward."""
        state = dict(self.__dict__)
        for name in self._derived_state:
            state.pop(name, None)
        state["_packed"] = None
        return state

    def _weights_changed(self) -> None:
        self.reset_packed_weight()

    def _init_uniform(self, fan_in: int) -> None:
        """torch's default for linear and convolution layers: the weight and the bias uniform
        in +-1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5) is that bound for the weight)."""
        rng = np.random.default_rng()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight[...] = rng.uniform(-bound, bound, self.weight.shape)
        if self.bias is not None:
            self.bias[...] = rng.uniform(-bound, bound, self.bias.shape)
        self.reset_packed_weight()
