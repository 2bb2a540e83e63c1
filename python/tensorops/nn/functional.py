"""torch.nn.functional names over tensorops kernels.

Activations take torch.nn.functional's arguments, ``inplace=`` included; tensorops never
modifies its input, so ``inplace`` exists only for signature compatibility and the result
is always a new array (or ``out=``).
"""
from __future__ import annotations

from ..pointwise import (  # noqa: F401
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

__all__ = [
    "celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "logsigmoid", "mish",
    "prelu", "relu", "relu6", "selu", "sigmoid", "silu", "softplus", "softsign", "tanh",
]
