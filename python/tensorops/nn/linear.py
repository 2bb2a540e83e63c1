"""Linear: ``y = x @ weight.T + bias``, with the weight packed once for the GEMM engine."""
from __future__ import annotations

import operator

from .._validate import module_dtype
from ..gemm import pack_linear_weight
from . import functional as F
from ._packed import PackedLayer

__all__ = ["Linear"]


class Linear(PackedLayer):
    """``torch.nn.Linear(in_features, out_features, bias=True)``.

    The first forward packs the weight into the GEMM microkernel's panel layout
    (``tensorops.pack_linear_weight``), which makes small batches (M = 2..32 rows) stream
    the weight once at full speed; the packed copy is dropped whenever the weight is
    replaced - by ``load_state_dict``, by assigning ``self.weight``, by ``to(dtype)`` or by
    in-place arithmetic on the parameter (``m.weight *= 2``). Writes through an index or
    ``np.copyto`` into ``m.weight`` are invisible to the module: call
    ``m.reset_packed_weight()`` after those.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features = operator.index(in_features)
        self.out_features = operator.index(out_features)
        self._create_parameters((self.out_features, self.in_features), self.out_features if bias else None,
                                module_dtype(dtype, "Linear"))

    def reset_parameters(self) -> None:
        """torch's initialisation: weight and bias uniform in +-1/sqrt(in_features)."""
        self._init_uniform(self.in_features)

    def forward(self, input):
        packed = self.__dict__.get("_packed")
        if packed is None:
            packed = pack_linear_weight(self.weight)
            self.__dict__["_packed"] = packed
        return F.linear(input, packed, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
