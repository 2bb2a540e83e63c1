"""Embedding: a lookup table of ``num_embeddings`` rows of size ``embedding_dim``."""
from __future__ import annotations

import operator

import numpy as np

from .._core import ShapeError
from .._validate import FLOAT_DTYPES, as_array, module_array, module_device, module_dtype
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """``torch.nn.Embedding``: ``forward(indices)`` returns ``weight[indices]``.

    The weight is drawn from N(0, 1) with the ``padding_idx`` row zeroed, as torch
    initialises it; ``max_norm`` rescales looked-up rows of the weight in place.
    ``scale_grad_by_freq`` and ``sparse`` only matter for gradients and are kept for the
    repr and for signature compatibility.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight=None, _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        module_device(device, "Embedding")
        self.num_embeddings = operator.index(num_embeddings)
        self.embedding_dim = operator.index(embedding_dim)
        if padding_idx is not None:
            padding_idx = operator.index(padding_idx)
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ShapeError("Padding_idx must be within num_embeddings")
            if padding_idx < 0:
                padding_idx += self.num_embeddings
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(module_array((self.num_embeddings, self.embedding_dim),
                                                 module_dtype(dtype, "Embedding")), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            weight = as_array(_weight, "Embedding", "_weight")
            if weight.shape != (self.num_embeddings, self.embedding_dim):
                raise ShapeError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        self.weight[...] = np.random.default_rng().standard_normal(self.weight.shape)
        if self.padding_idx is not None:
            self.weight[self.padding_idx] = 0
        self._weights_changed()

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False):
        """An Embedding whose weight is ``embeddings``, a 2-D float array or tensor, sharing its
        memory as torch does (``max_norm`` rescales its rows in place); a read-only array is
        copied."""
        weight = as_array(embeddings, "Embedding.from_pretrained", "embeddings")
        if weight.ndim != 2:
            raise ShapeError("Embeddings parameter is expected to be 2-dimensional")
        if weight.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Embedding.from_pretrained: unsupported dtype {weight.dtype}; "
                            "supported dtypes are float32 and float64")
        rows, cols = weight.shape
        return cls(rows, cols, _weight=weight if weight.flags.writeable else weight.copy(), _freeze=freeze, padding_idx=padding_idx,
                   max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
