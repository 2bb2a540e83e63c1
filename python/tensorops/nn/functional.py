"""torch.nn.functional names over tensorops kernels."""
from __future__ import annotations

from ..pointwise import relu  # noqa: F401

__all__ = ["relu"]
from ..dropout import dropout  # noqa: E402,F401
from ..embedding import embedding  # noqa: E402,F401

__all__ += ["dropout", "embedding"]
from ..pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d  # noqa: E402,F401

__all__ += ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]
