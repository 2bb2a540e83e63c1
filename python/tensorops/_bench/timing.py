"""Timing one callable, or several side by side: warm-up, calibration, then repeats until
enough is seen.

A sample times ``inner`` back-to-back calls, with ``inner`` chosen so that one sample
lasts at least ``sample_target`` seconds: a call of a microsecond is then timed over
thousands of calls rather than at the resolution of the clock, while a call of tens of
milliseconds is timed one at a time. Samples repeat until there are at least
``min_repeat`` of them and they add up to at least ``min_time`` seconds. The median per
call is the figure of merit (it shrugs off the odd sample slowed by another process on
a shared machine); min and max are kept to show the spread. The garbage collector is
paused while samples run, as ``timeit`` does.

``measure_side_by_side`` times the contenders of one case in rounds, one sample of each per
round, so that a slow spell of a shared machine (another tenant on the core's sibling
thread can slow every call by half for seconds) falls on all of them rather than on
whichever was running then: the ratios between them are what the bench reports. Its
samples last at least ``min_time / (4 * min_repeat)`` so that about as many rounds as
samples cover ``min_time``; a contender leaves the rounds once it has enough. Each sample
starts with one untimed call, as long as others share the rounds, so that its timed calls
find in cache what they would have found timed alone rather than what the other libraries'
calls left there.

``measure_in_turns`` is the same idea for runs on several threads, where one library's calls
cannot follow another's: each library's workers keep spinning on the cores for a while after
its call (OpenBLAS, OpenMP, onnxruntime's pool) and slow whichever library runs next
(interleaved on 2 cores, mm_256 fell from 90 to 15 GFLOP/s). The contenders take turns
instead, each turn a measurement of its own with a pause before it that lets the last
library's workers go to sleep (on a 2-core Zen 4, mm_256 on 2 threads timed this way, with
pauses of 20 to 300 ms, came within 10% of each library timed alone), the turns visiting
the contenders forwards, then backwards: a slow spell of the machine then falls on every
contender rather than on whichever was running (timed one after the other, ResNet's
64-channel 3x3 layer at batch 8 came out at 0.77x torch in one run and 0.96x in another).
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

SAMPLE_TARGET_S = 1e-3
MAX_INNER = 1 << 20


@dataclass(frozen=True)
class Measurement:
    """Seconds per call: median, min and max over the samples."""

    median: float
    min: float
    max: float
    samples: int
    inner: int

    def as_dict(self) -> dict:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "samples": self.samples,
            "calls_per_sample": self.inner,
        }


def summarise(per_call_times, inner: int) -> Measurement:
    times = list(per_call_times)
    if not times:
        raise ValueError("summarise: no samples")
    return Measurement(statistics.median(times), min(times), max(times), len(times), inner)


def calls_per_sample(one_call_s: float, sample_target: float = SAMPLE_TARGET_S) -> int:
    """How many back-to-back calls make one sample last ``sample_target`` seconds."""
    if one_call_s >= sample_target:
        return 1
    if one_call_s <= 0.0:
        return MAX_INNER
    return min(MAX_INNER, math.ceil(sample_target / one_call_s))


def measure(
    fn: Callable[[], Any],
    min_repeat: int,
    min_time: float,
    sample_target: float = SAMPLE_TARGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple:
    """Times ``fn()``; returns ``(Measurement, result of the warm-up call)``.

    The warm-up call pays for first-touch page faults, lazy initialisation and cold
    caches; its result is returned so the caller can check it without another call.
    """
    if min_repeat < 1:
        raise ValueError(f"measure: min_repeat must be at least 1, got {min_repeat}")
    outcome = _timed_rounds({"fn": fn}, min_repeat, min_time, sample_target, clock)["fn"]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def measure_side_by_side(
    fns: Dict[str, Callable[[], Any]],
    min_repeat: int,
    min_time: float,
    sample_target: float = SAMPLE_TARGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> Dict[str, Any]:
    """Times every ``fns[name]()`` in interleaved rounds; returns, per name, ``(Measurement,
    result of the warm-up call)``, or the exception one of its calls raised (that contender
    then leaves the rounds)."""
    if min_repeat < 1:
        raise ValueError(f"measure_side_by_side: min_repeat must be at least 1, got {min_repeat}")
    return _timed_rounds(fns, min_repeat, min_time, max(sample_target, min_time / (4 * min_repeat)), clock)


def measure_in_turns(
    fns: Dict[str, Callable[[], Any]],
    min_repeat: int,
    min_time: float,
    turns: int = 3,
    settle: float = 0.1,
    sample_target: float = SAMPLE_TARGET_S,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Dict[str, Any]:
    """Times every ``fns[name]()`` alone, ``turns`` times in turn (forwards, then backwards),
    each turn ``settle`` seconds after the one before; returns, per name, ``(Measurement over
    every turn's samples, result of the first warm-up call)``, or the exception one of its
    calls raised (that contender then takes no more turns). Each turn asks for its share of
    ``min_repeat`` and ``min_time``."""
    if min_repeat < 1 or turns < 1:
        raise ValueError(f"measure_in_turns: min_repeat and turns must be at least 1, got {min_repeat}, {turns}")
    outcome: Dict[str, Any] = {}
    samples: Dict[str, list] = {name: [] for name in fns}
    inner: Dict[str, int] = {}
    names = list(fns)
    for turn in range(turns):
        for name in names if turn % 2 == 0 else names[::-1]:
            if isinstance(outcome.get(name), Exception):
                continue
            sleep(settle)
            turn_samples: Dict[str, list] = {}
            got = _timed_rounds({name: fns[name]}, math.ceil(min_repeat / turns), min_time / turns, sample_target,
                                clock, turn_samples)[name]
            if isinstance(got, Exception):
                outcome[name] = got
                continue
            outcome.setdefault(name, got[1])
            inner.setdefault(name, got[0].inner)
            samples[name] += turn_samples[name]
    for name in names:
        if not isinstance(outcome.get(name), Exception):
            outcome[name] = (summarise(samples[name], inner[name]), outcome[name])
    return outcome


def _timed_rounds(fns: Dict[str, Callable[[], Any]], min_repeat: int, min_time: float, target: float,
                  clock: Callable[[], float], samples_out: Optional[Dict[str, list]] = None) -> Dict[str, Any]:
    """Warm-up and calibration of each callable, then rounds of one sample each (with an
    untimed call first while others share the rounds) until each has enough. The seconds
    per call of every sample go to ``samples_out[name]`` too when it is given."""
    outcome: Dict[str, Any] = {}
    loops = {}
    for name, fn in fns.items():
        try:
            result = fn()
            start = clock()
            fn()
            elapsed = clock() - start
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            outcome[name] = exc
            continue
        outcome[name] = result
        loops[name] = (fn, range(calls_per_sample(elapsed, target)))
    samples = {name: [] for name in loops}
    totals = {name: 0.0 for name in loops}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        pending = list(loops)
        while pending:
            for name in pending:
                fn, loop = loops[name]
                try:
                    if len(pending) > 1:
                        fn()  # untimed: brings back into cache what the others' calls evicted
                    start = clock()
                    for _ in loop:
                        fn()
                    elapsed = clock() - start
                except Exception as exc:  # noqa: BLE001 - handed back to the caller
                    outcome[name] = exc
                    del loops[name]
                    continue
                totals[name] += elapsed
                samples[name].append(elapsed / len(loop))
            pending = [name for name in pending
                       if name in loops and (len(samples[name]) < min_repeat or totals[name] < min_time)]
    finally:
        if gc_was_enabled:
            gc.enable()
    for name, (_, loop) in loops.items():
        outcome[name] = (summarise(samples[name], len(loop)), outcome[name])
        if samples_out is not None:
            samples_out[name] = samples[name]
    return outcome


def ratio(peer_s: Optional[float], tensorops_s: Optional[float]) -> Optional[float]:
    """``peer_time / tensorops_time``: above 1 means tensorops is faster; None when
    either side has no time."""
    if peer_s is None or tensorops_s is None or tensorops_s <= 0.0:
        return None
    return peer_s / tensorops_s


def rate(work: Optional[float], seconds: Optional[float]) -> Optional[float]:
    """GB/s or GFLOP/s: ``work`` (bytes or FLOPs) per second, in units of 1e9."""
    if work is None or seconds is None or seconds <= 0.0:
        return None
    return work / seconds / 1e9
