"""Runs every test once per kernel set (ISA) the machine supports.

The ``isa`` parameter (ids ``generic``, ``x86_avx2``, ``x86_avx512``) caps the kernels for
the test's duration. ``TENSOROPS_ISA`` in the environment lowers the highest one tried.
Tests that exercise no kernel can be marked ``@pytest.mark.single_isa`` to run once.
"""
from __future__ import annotations

import os

import pytest

import tensorops
from tensorops import _core

ISA_ORDER = ["generic", "x86_avx2", "x86_avx512"]
_ALIASES = {"scalar": "generic", "avx2": "x86_avx2", "avx512": "x86_avx512"}


def available_isas() -> list:
    best = ISA_ORDER.index(_core.detected_isa())
    env = os.environ.get("TENSOROPS_ISA", "").strip().lower()
    if env:
        best = min(best, ISA_ORDER.index(_ALIASES.get(env, env)))
    return ISA_ORDER[: best + 1]


AVAILABLE_ISAS = available_isas()


def pytest_configure(config):
    config.addinivalue_line("markers", "single_isa: the test exercises no kernel; run it once, on the best ISA")
    config.addinivalue_line("markers", "slow: a long-running test")


def pytest_report_header(config):
    return f"tensorops ISAs under test: {', '.join(AVAILABLE_ISAS)}; threads: {tensorops.get_num_threads()}"


def pytest_generate_tests(metafunc):
    if "isa" not in metafunc.fixturenames:
        return
    isas = AVAILABLE_ISAS[-1:] if metafunc.definition.get_closest_marker("single_isa") else AVAILABLE_ISAS
    metafunc.parametrize("isa", isas, ids=isas, scope="function")


@pytest.fixture(autouse=True)
def _kernel_set(isa):
    previous = _core.isa_cap()
    _core.set_isa_cap(isa)
    try:
        yield isa
    finally:
        _core.set_isa_cap(previous)


@pytest.fixture(params=["small_l2", "mid_l2", "large_l2"])
def assumed_l2(request):
    """Runs the test as if a core's L2 were small (512 KiB, Zen 3), mid-sized (1 MiB, Zen 4) and
    large (2 MiB, the Xeon): the paths chosen by the L2 size
    (tensorops.cpu_info()["l2_cache_bytes"]) all get tested."""
    from reference import L2_SIZES, assumed_l2_cache_bytes

    with assumed_l2_cache_bytes(L2_SIZES[request.param]) as size:
        yield size
