"""Dropout: random zeroing in training mode, the identity in eval mode."""
from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """``torch.nn.Dropout(p=0.5, inplace=False)``: ``F.dropout(x, p, self.training)``.

    Masks come from tensorops' generator (``tensorops.manual_seed``).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool):
            raise TypeError(f"Dropout: p must be a number, got {type(p).__name__}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
