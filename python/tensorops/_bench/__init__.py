"""Side-by-side benchmarks behind ``python -m tensorops bench``.

Every number this package prints is a ratio measured in one process: tensorops and its
peers (NumPy, and PyTorch and onnxruntime when importable) run the same case on the same
data, one after the other, with the thread count pinned for every library. Absolute
timings drift with the machine and its load; ratios taken minutes apart on the same
machine drift much less, so they are what the tables lead with.

The pieces:

- ``case.py``: the ``Case`` record and ``op()``, the late-bound reference to a library
  function. A tensorops op that does not exist yet resolves to nothing and shows as
  ``n/a``; everything else that goes wrong is reported as an error.
- ``cases_<family>.py``: one module per operator family, each a list ``CASES``. Modules
  are discovered by name, so adding a family is adding a file.
- ``timing.py``: warm-up, then repeats until both a minimum count and a minimum time are
  reached; the median is the figure of merit.
- ``peers.py``: thread pinning and the optional peer libraries; ``onnx_models.py`` builds
  small ONNX graphs in memory.
- ``runner.py`` runs the cases, ``report.py`` prints tables and writes JSON and plots,
  ``machine.py`` describes the machine (``python -m tensorops info``).

Adding a family is one new module, ``cases_<family>.py``, holding for example::

    CASES = [
        Case(
            name="layernorm_8x128x768",
            family="norm",
            setup=lambda dtype: (randn((8, 128, 768), dtype),),
            tensorops=op("nn.functional.layer_norm", normalized_shape=(768,)),
            torch=op("nn.functional.layer_norm", normalized_shape=(768,)),
            bytes_moved=lambda inputs: 2 * nbytes(*inputs),
        ),
    ]

``flops=`` instead of ``bytes_moved=`` makes the rate GFLOP/s; neither makes the case
report time per call.
"""
from __future__ import annotations

from .case import Case, op
from .registry import all_cases, select_cases

__all__ = ["Case", "op", "all_cases", "select_cases"]
