"""Linear: ``y = x @ weight.T + bias``, with the weight packed once for the GEMM engine."""
from __future__ import annotations

import math
import operator

from .. import _core
from .._validate import module_device, module_dtype
from ..gemm import pack_linear_weight
from . import functional as F
from ._packed import PackedLayer

__all__ = ["Linear"]


# A single row (batch-1 inference) reads the weight as it lies, by dot products over its rows,
# once each thread's share of the weight is this large: coming from beyond L2, the rows' many
# streams arrive faster than the packed panels' one (1 thread, float32: 768 x 768 64 vs 71
# us, 768 x 3072 342 vs 393 us, 3072 x 768 342 vs 357 us, AVX-512 and AVX2 alike). Shares
# that stay in an L2 of 2 MiB stream faster as packed panels (the Xeon, 768 x 768 on 2
# threads, AVX-512: 20.5 vs 24.5 us).
_ROW_IN_PLACE_BYTES_PER_THREAD = 2 << 20

# Below this L2 size a single row reads every weight in place, however small its share: on
# Zen 4 (1 MiB L2) the dot products won at every size tried, from 256 x 256 to 3072 x 768,
# on 1 and 2 threads, float32 and float64, AVX-512 and AVX2, by 0.67-0.97x the time of the
# packed panels (768 x 768 on 2 threads 20.9 vs 29.0 us; 256 x 256 6.2 vs 7.2 us).
_PACKED_ROW_MIN_L2_BYTES = 2 << 20


def reads_weight_in_place(rows: int, weight) -> bool:
    """Whether Linear multiplies ``rows`` rows by ``weight`` as it lies rather than by its
    packed copy (on the current thread count and L2 size)."""
    if rows != 1:
        return False
    l2 = _core.l2_cache_bytes()  # 0 where the size is unknown: the share decides
    return (0 < l2 < _PACKED_ROW_MIN_L2_BYTES
            or weight.nbytes >= _ROW_IN_PLACE_BYTES_PER_THREAD * _core.get_num_threads())


class Linear(PackedLayer):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``.

    The first forward that needs it packs the weight into the GEMM microkernel's panel
    layout (``tensorops.pack_linear_weight``), which makes small batches (M = 2..32 rows)
    stream the weight once at full speed; a single row reads ``weight`` itself, where dot
    products over its rows are faster: on a core whose L2 is under 2 MiB always, else once
    the weight is 2 MiB a thread or more. The packed copy is
    dropped whenever the weight is replaced - by ``load_state_dict``, by assigning
    ``self.weight``, by ``to(dtype)`` or by in-place arithmetic on the parameter
    (``m.weight *= 2``) - and when any module loads a state_dict (the weight may be
    shared with it). Writes into the array itself (through an index, ``np.copyto``, or
    in-place arithmetic on another name for it: ``w = m.weight; w *= 2``) are invisible to the
    packed copy: call ``m.reset_packed_weight()`` after those.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        module_device(device, "Linear")
        self.in_features = operator.index(in_features)
        self.out_features = operator.index(out_features)
        self._create_parameters((self.out_features, self.in_features), self.out_features if bias else None,
                                module_dtype(dtype, "Linear"))

    def reset_parameters(self) -> None:
        """torch's initialisation: weight and bias uniform in +-1/sqrt(in_features)."""
        self._init_uniform(self.in_features)

    def forward(self, input):
        shape = getattr(input, "shape", None)
        if shape is not None and len(shape) >= 1 and reads_weight_in_place(math.prod(shape[:-1]), self.weight):
            return F.linear(input, self.weight, self.bias)
        packed = self._kept_packing()
        if packed is None:
            packed = pack_linear_weight(self.weight)
            self._keep_packing(packed)
        return F.linear(input, packed, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
