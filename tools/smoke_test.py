#!/usr/bin/env python
"""Smoke test of an installed tensorops, with NumPy alone (no torch, no test suite): the checks
a freshly installed wheel must pass. Used by tools/check_wheel.sh and by cibuildwheel.

    TENSOROPS_ISA=scalar python tools/smoke_test.py     # the generic kernels
    python tools/smoke_test.py                          # the best kernels this CPU has

Run it from outside the source tree, so the installed package is the one imported.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import tensorops as tops
import tensorops.nn as nn
import tensorops.nn.functional as F


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"smoke test failed: {what}")


def main() -> int:
    info = tops.cpu_info()
    package = Path(tops.__file__).parent
    print(f"tensorops {tops.__version__} from {package}: isa={info['isa']} threads={info['num_threads']}")
    requested = os.environ.get("TENSOROPS_ISA")
    if requested in ("scalar", "generic"):
        check(info["isa"] == "scalar", f"TENSOROPS_ISA={requested} gave isa={info['isa']}")
    check((package / "py.typed").exists() and (package / "_core.pyi").exists(), "py.typed and _core.pyi are installed")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((67, 131)).astype(np.float32)
    for threads in (1, 2):
        tops.set_num_threads(threads)
        check(np.array_equal(tops.relu(x), np.maximum(x, 0)), "relu")
        check(np.array_equal(tops.contiguous(x.T), x.T), "transposed copy")
        check(np.array_equal(tops.cat([x, x[::-1]], 1), np.concatenate([x, x[::-1]], 1)), "cat")
        check(np.array_equal(tops.stack([x, x], 2), np.stack([x, x], 2)), "stack")
        check(np.array_equal(tops.reshape(x.T, (-1,)), x.T.reshape(-1)), "reshape copy")
        weight = rng.standard_normal((10, 4))
        idx = np.array([[1, 9], [0, 3]])
        check(np.array_equal(F.embedding(idx, weight), weight[idx]), "embedding")
        tops.manual_seed(7)
        kept = F.dropout(np.ones(1000, np.float32), 0.25)
        check(set(np.unique(kept)) <= {np.float32(0), np.float32(1 / 0.75)}, "dropout values")
    model = nn.Sequential(nn.Flatten(), nn.ReLU())
    check(np.array_equal(model(x.reshape(67, 1, 131)), np.maximum(x, 0)), "nn.Sequential")
    try:
        F.embedding(np.array([10]), weight)
    except IndexError:
        pass
    else:
        check(False, "an out-of-range index raises IndexError")
    try:
        tops.reshape(x, (-2,))
    except tops.ShapeError:
        pass
    else:
        check(False, "a negative size raises ShapeError")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
