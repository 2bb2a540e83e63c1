"""tensorops: fast CPU deep-learning operators with PyTorch semantics on NumPy arrays.

    import tensorops as tops
    import tensorops.nn as nn
    import tensorops.nn.functional as F

Arrays in, ``numpy.ndarray`` out. Where the documentation is silent, PyTorch's behaviour
for the same call is the specification.
"""
from __future__ import annotations

import os as _os

import numpy as _np

from . import _core
from ._core import ShapeError

__version__ = "0.1.0"

_USER_ISA_NAMES = {"generic": "scalar", "x86_avx2": "avx2", "x86_avx512": "avx512"}


def _apply_isa_env() -> None:
    requested = _os.environ.get("TENSOROPS_ISA")
    if requested:
        # An unknown value is an error here, at import, never a silent fallback.
        _core.set_isa_cap(requested.strip().lower())


_apply_isa_env()


def _env_count(name: str, unit: str, largest: int):
    """The non-negative whole number an environment variable holds (plain digits), or None
    where it is unset; anything else is an error at import."""
    requested = _os.environ.get(name)
    if not requested:
        return None
    text = requested.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > largest:
        raise ValueError(f"{name}: expected a number of {unit} from 0 to {largest}, got {requested!r}")
    return int(text)


def _apply_cache_env() -> None:
    l2 = _env_count("TENSOROPS_L2_CACHE_BYTES", "bytes", 2**63 - 1)
    if l2 is not None:
        _core.set_l2_cache_bytes(l2)
    pool_mib = _env_count("TENSOROPS_CACHE_MB", "MiB", 2**43)
    if pool_mib is not None:
        _core.set_cache_limit(pool_mib << 20)


_apply_cache_env()


def cpu_info() -> dict:
    """The kernel set in use and what the CPU offers.

    Keys: ``isa`` (``"avx512"``, ``"avx2"`` or ``"scalar"``), ``isa_token`` (the same as
    ``generic``/``x86_avx2``/``x86_avx512``), ``detected_isa`` (best the CPU supports),
    ``isa_cap``, ``num_threads``, ``features`` (list of CPU feature names), ``vendor`` and
    ``l2_cache_bytes`` (one core's L2, which some kernels choose their path by: what the C
    library reports, 0 where it cannot tell, or ``TENSOROPS_L2_CACHE_BYTES`` where set).
    """
    active = _core.active_isa()
    return {
        "isa": _USER_ISA_NAMES[active],
        "isa_token": active,
        "detected_isa": _USER_ISA_NAMES[_core.detected_isa()],
        "isa_cap": _USER_ISA_NAMES[_core.isa_cap()],
        "num_threads": _core.get_num_threads(),
        "features": list(_core.cpu_features()),
        "vendor": _core.cpu_vendor(),
        "l2_cache_bytes": _core.l2_cache_bytes(),
    }


def get_num_threads() -> int:
    """Threads a tensorops kernel may use (default: the cores available to the process,
    or ``OMP_NUM_THREADS`` when set)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the threads a tensorops kernel may use (``n >= 1``)."""
    if isinstance(n, (bool, _np.bool_)) or not isinstance(n, (int, _np.integer)):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    if n >= 1 << 31:
        raise ValueError(f"set_num_threads: {n} threads is more than a process can start")
    _core.set_num_threads(n)


def empty_cache() -> None:
    """Frees the idle blocks of tensorops' output buffer pool.

    Outputs of 4 MiB and more are carved from a pool whose blocks return, warm, when their
    array dies, so the next output of that size skips the OS's page faults and zeroing. At
    most ``TENSOROPS_CACHE_MB`` (default 1024) MiB of idle blocks are kept.
    """
    _core.empty_cache()


from .pointwise import *  # noqa: E402,F401,F403
from .pointwise import __all__ as _pointwise_all  # noqa: E402
from .reduce import *  # noqa: E402,F401,F403
from .reduce import __all__ as _reduce_all  # noqa: E402
from .shape import *  # noqa: E402,F401,F403
from .shape import __all__ as _shape_all  # noqa: E402
from .gemm import *  # noqa: E402,F401,F403
from .gemm import __all__ as _gemm_all  # noqa: E402
from .conv import *  # noqa: E402,F401,F403
from .conv import __all__ as _conv_all  # noqa: E402
from . import norm as _norm, pool as _pool, embedding as _embedding  # noqa: E402,F401  (nn.functional)
from .dropout import dropout, initial_seed, manual_seed  # noqa: E402,F401
from . import nn  # noqa: E402,F401
from ._threadpool import register_threadpoolctl as _register_threadpoolctl  # noqa: E402

_register_threadpoolctl()

__all__ = [
    "ShapeError",
    "cpu_info",
    "get_num_threads",
    "set_num_threads",
    "empty_cache",
    "nn",
    *_pointwise_all,
    *_reduce_all,
    *_shape_all,
    *_gemm_all,
    *_conv_all,
    "dropout",
    "manual_seed",
    "initial_seed",
]
