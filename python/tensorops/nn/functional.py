"""torch.nn.functional names over tensorops kernels."""
from __future__ import annotations

from ..pointwise import relu  # noqa: F401

__all__ = ["relu"]
