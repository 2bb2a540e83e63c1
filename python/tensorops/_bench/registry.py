"""Finds the case modules (``cases_*.py`` in this package) and selects cases by regex.

Discovery by file name means a new family adds one module and touches nothing shared.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import sys

from .case import Case

_PREFIX = "cases_"


def all_cases() -> list:
    """Every registered case, family modules in name order, cases in declaration order."""
    cases = []
    seen = {}
    for info in sorted(pkgutil.iter_modules(sys.modules[__package__].__path__), key=lambda m: m.name):
        if not info.name.startswith(_PREFIX):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        for case in module.CASES:
            if not isinstance(case, Case):
                raise TypeError(f"{module.__name__}.CASES holds {type(case).__name__}, expected Case")
            if case.name in seen:
                raise ValueError(f"benchmark case {case.name!r} is declared in both {seen[case.name]} and {module.__name__}")
            seen[case.name] = module.__name__
            cases.append(case)
    return cases


def select_cases(pattern: str = None) -> list:
    """Cases whose name or family matches ``pattern`` (``re.search``); all when None."""
    cases = all_cases()
    if pattern is None:
        return cases
    regex = re.compile(pattern)
    return [c for c in cases if regex.search(c.name) or regex.search(c.family)]
