"""Normalization modules: torch.nn's BatchNorm2d, InstanceNorm2d, LayerNorm and GroupNorm,
with torch's parameters, buffers (running statistics and ``num_batches_tracked``), state_dict
keys, train/eval behaviour and reprs, over tensorops.nn.functional's normalization ops."""
from __future__ import annotations

import numbers
import operator
import warnings

import numpy as np

from .._validate import as_array, module_array, module_device, module_dtype
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm2d", "InstanceNorm2d", "LayerNorm", "GroupNorm"]


def _affine(module: Module, shape, dtype: np.dtype, affine: bool, bias: bool) -> None:
    """torch's affine parameters: weight ones and bias zeros of ``shape``, or None."""
    if affine:
        module.weight = Parameter(module_array(shape, dtype, 1))
        if bias:
            module.bias = Parameter(module_array(shape, dtype, 0))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        module.weight[...] = 1
    if module.bias is not None:
        module.bias[...] = 0


class _NormBase(Module):
    """Shared state of batch and instance norm: affine parameters and running statistics."""

    def __init__(self, num_features: int, eps: float, momentum, affine: bool, track_running_stats: bool,
                 device, dtype, bias: bool):
        super().__init__()
        module_device(device, type(self).__name__)
        self.num_features = operator.index(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = module_dtype(dtype, type(self).__name__)
        _affine(self, (self.num_features,), dt, affine, bias)
        if track_running_stats:
            self.register_buffer("running_mean", module_array((self.num_features,), dt, 0))
            self.register_buffer("running_var", module_array((self.num_features,), dt, 1))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Checkpoints older than num_batches_tracked (version < 2) keep the current count.
        version = local_metadata.get("version", None)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            # torch keeps the module's own count (its fresh 0 for a new module).
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_NormBase):
    """Batch normalisation of (N, C, H, W) input over N, H and W, per channel.

    Training mode normalises with the batch statistics and updates ``running_mean`` /
    ``running_var`` in place (unbiased variance; ``momentum=None`` gives the cumulative
    average over ``num_batches_tracked`` batches); eval mode uses the running statistics.
    """

    _version = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, input):
        x = as_array(input, "BatchNorm2d")
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)


class InstanceNorm2d(_NormBase):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) input: every plane by
    its own statistics. With ``track_running_stats`` the running statistics are updated in
    training mode and used in eval mode, as in torch."""

    _version = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, input):
        x = as_array(input, "InstanceNorm2d")
        if x.ndim not in (3, 4):
            raise ValueError(f"expected 3D or 4D input (got {x.ndim}D input)")
        feature_dim = x.ndim - 3
        if x.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {x.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=2)
        batched = x if x.ndim == 4 else x[np.newaxis]
        out = F.instance_norm(batched, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out if x.ndim == 4 else out[0]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # torch refuses running statistics from a checkpoint without version (saved before
        # 0.4.0, when instance norm tracked them by default) for a layer that does not track
        # them, strict or not.
        if local_metadata.get("version", None) is None and not self.track_running_stats:
            keys = [prefix + name for name in ("running_mean", "running_var") if prefix + name in state_dict]
            if keys:
                name = type(self).__name__
                error_msgs.append(
                    f"Unexpected running stats buffer(s) {' and '.join(f'{chr(34)}{k}{chr(34)}' for k in keys)} for "
                    f"{name} with track_running_stats=False. If state_dict is a checkpoint saved before 0.4.0, this "
                    f"may be expected because {name} does not track running stats by default since 0.4.0. Please "
                    f"remove these keys from state_dict. If the running stats are actually needed, instead set "
                    f"track_running_stats=True in {name} to enable them. See the documentation of {name} for "
                    f"details.")
                for key in keys:
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        module_device(device, "LayerNorm")
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(operator.index(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine(self, self.normalized_shape, module_dtype(dtype, "LayerNorm"), elementwise_affine, bias)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation: channels split into ``num_groups`` groups, each normalised per
    sample, then a per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        module_device(device, "GroupNorm")
        num_groups, num_channels = operator.index(num_groups), operator.index(num_channels)
        if num_channels % num_groups != 0:  # ZeroDivisionError for num_groups=0, as torch
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine(self, (num_channels,), module_dtype(dtype, "GroupNorm"), affine, bias)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
