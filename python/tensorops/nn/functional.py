"""torch.nn.functional names over tensorops kernels, gathered from the families.

Activations take torch.nn.functional's arguments, ``inplace=`` included: with
``inplace=True`` the result is written back into the input array (which must be a
writeable float ndarray, or a torch tensor shared zero-copy), as torch does.
"""
from __future__ import annotations

from .. import _core
from ..conv import conv2d, conv_transpose2d
from ..dropout import dropout
from ..embedding import embedding
from ..gemm import linear
from ..pointwise import (
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softplus,
    softsign,
    tanh,
)
from ..norm import batch_norm, group_norm, instance_norm, layer_norm
from ..pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from ..reduce import _softmax

__all__ = [
    # activations
    "celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "logsigmoid", "mish",
    "prelu", "relu", "relu6", "selu", "sigmoid", "silu", "softplus", "softsign", "tanh", "softmax", "log_softmax",
    # convolution and linear
    "conv2d", "conv_transpose2d", "linear",
    # normalization
    "batch_norm", "layer_norm", "instance_norm", "group_norm",
    # pooling
    "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    # embedding and dropout
    "embedding", "dropout",
]


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """torch.nn.functional.softmax: tensorops.softmax, with torch's third parameter here,
    ``_stacklevel`` (taken and unused: the implicit-dim warning points at the caller), where
    torch.softmax's is ``dtype``."""
    return _softmax("softmax", _core.softmax, input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """torch.nn.functional.log_softmax: as softmax."""
    return _softmax("log_softmax", _core.log_softmax, input, dim, dtype)
