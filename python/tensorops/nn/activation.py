"""One module per activation function, with torch.nn's names, arguments and reprs.

Each forward calls the same-named function of ``tensorops.nn.functional``, looked up at
call time, so the modules hold no arithmetic of their own. ``inplace=True`` is passed
through: the functional form then writes its result into the input array, as torch does.
PReLU is the one activation with a parameter (``weight``, one slope per channel).
"""
from __future__ import annotations

import numpy as np

from .._core import ShapeError
from .._validate import module_array, module_device, module_dtype
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
    "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign", "LogSigmoid", "PReLU", "Softmax",
    "LogSoftmax",
]


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class _InplaceActivation(Module):
    """Shared constructor and repr of the activations whose only argument is ``inplace``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class _AlphaActivation(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class _SoftmaxFamily(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class ReLU(_InplaceActivation):
    """``max(x, 0)`` (``F.relu``)."""

    def forward(self, input):
        # The plain call is the hot path; the keyword goes along only when asked for.
        return F.relu(input, inplace=True) if self.inplace else F.relu(input)


class Hardtanh(Module):
    """``x`` clamped to ``[min_val, max_val]`` (``F.hardtanh``)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if not max_val > min_val:
            raise ShapeError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return F.hardtanh(input, min_val=self.min_val, max_val=self.max_val, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)`` (``F.relu6``)."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input):
        return F.relu6(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere (``F.leaky_relu``)."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, negative_slope=self.negative_slope, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(_AlphaActivation):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (``F.elu``)."""

    def forward(self, input):
        return F.elu(input, alpha=self.alpha, inplace=self.inplace)


class CELU(_AlphaActivation):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``F.celu``)."""

    def forward(self, input):
        return F.celu(input, alpha=self.alpha, inplace=self.inplace)


class SELU(_InplaceActivation):
    """Scaled ELU with torch's fixed alpha and scale (``F.selu``)."""

    def forward(self, input):
        return F.selu(input, inplace=self.inplace)


class GELU(Module):
    """``x * Phi(x)``, exact or with the tanh approximation (``F.gelu``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_InplaceActivation):
    """``x * sigmoid(x)`` (``F.silu``)."""

    def forward(self, input):
        return F.silu(input, inplace=self.inplace)


class Mish(_InplaceActivation):
    """``x * tanh(softplus(x))`` (``F.mish``)."""

    def forward(self, input):
        return F.mish(input, inplace=self.inplace)


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6`` (``F.hardsigmoid``); torch prints no arguments for it, even with inplace=True."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardsigmoid(input, inplace=self.inplace)


class Hardswish(Module):
    """``x * relu6(x + 3) / 6`` (``F.hardswish``); torch prints no arguments for it, even with inplace=True."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input, inplace=self.inplace)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``F.sigmoid``)."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent (``F.tanh``)."""

    def forward(self, input):
        return F.tanh(input)


class Softsign(Module):
    """``x / (1 + |x|)`` (``F.softsign``)."""

    def forward(self, input):
        return F.softsign(input)


class LogSigmoid(Module):
    """``log(sigmoid(x))`` (``F.logsigmoid``)."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (``F.softplus``)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, beta=self.beta, threshold=self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """max(0, x) + weight * min(0, x), with one learnable slope or one per channel (dim 1)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        module_device(device, "PReLU")
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(module_array((num_parameters,), module_dtype(dtype, "PReLU")))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weight.fill(self.init)
        self._weights_changed()

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmax(_SoftmaxFamily):
    """Softmax along ``dim`` (``F.softmax``)."""

    def forward(self, input):
        return F.softmax(input, self.dim)


class LogSoftmax(_SoftmaxFamily):
    """Log of the softmax along ``dim`` (``F.log_softmax``)."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)
