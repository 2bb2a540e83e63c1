"""Lets threadpoolctl see and limit the tensorops thread pool.

``threadpool_limits(1)`` then limits tensorops as it limits OpenBLAS and OpenMP.
"""
from __future__ import annotations

from . import _core


def register_threadpoolctl() -> None:
    try:
        import threadpoolctl
    except ImportError:
        return
    register = getattr(threadpoolctl, "register", None)
    base = getattr(threadpoolctl, "LibController", None)
    if register is None or base is None:  # threadpoolctl < 3.5 has no plug-in API
        return

    class TensoropsController(base):
        user_api = "tensorops"
        internal_api = "tensorops"
        filename_prefixes = ("_core",)
        check_symbols = ("tensorops_get_num_threads",)

        def get_num_threads(self):
            return _core.get_num_threads()

        def set_num_threads(self, num_threads):
            # threadpoolctl passes limits as they were asked for: 0 or less means one thread
            # here, and a count past what the core holds is capped there.
            _core.set_num_threads(min(max(int(num_threads), 1), 2**31 - 1))

        def get_version(self):
            from . import __version__

            return __version__

        def set_additional_attributes(self):
            self.isa = _core.active_isa()

    register(TensoropsController)
