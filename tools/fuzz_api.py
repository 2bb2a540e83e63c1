#!/usr/bin/env python
"""Fuzzes the public Python API: random arrays and arguments, for a set time.

    python tools/fuzz_api.py --seconds 600              # atheris when installed, else random
    python tools/fuzz_api.py --seconds 60 --engine random --seed 7
    python tools/fuzz_api.py --replay tests/fuzz_corpus  # what tests/test_fuzz_corpus.py runs

The targets are the names docs/api.md lists as implemented (so a family is fuzzed as soon
as its rows move up there); arguments are drawn from each target's signature, guided by the
parameter's name (arrays for `input`/`weight`/..., dims, sizes, probabilities, flags), with
arrays in every layout (0-size dims, 0-d, permuted, strided, reversed, zero-stride broadcast
up to 2^40 elements, read-only, unaligned) and dtypes the op does not support.

A call passes when it returns or raises ShapeError/ValueError/RuntimeError/TypeError/
IndexError (or MemoryError for a result that cannot be allocated), leaves inputs it should not
write unchanged, and returns the same bits under the generic kernels and one thread as under
the best kernels and all threads. Anything else is a finding.

Cases run in a worker subprocess (under an address-space limit, so a huge allocation fails
instead of swamping the machine); the supervisor restarts it after a crash. Each case is a
JSON description written to a scratch file before it runs, so when the worker dies (signal,
sanitizer abort) or stops making progress (hang), the supervisor saves that case to the corpus
directory; unexpected exceptions, modified inputs and kernel-set mismatches are saved by the
worker itself, one file per distinct finding. Corpus files are regression tests: replaying
one must pass once the finding is fixed. The exit status is 1 when a run added a finding.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
DEFAULT_CORPUS = ROOT / "tests" / "fuzz_corpus"
PLANNED_HEADING = "## Planned (not yet implemented)"
# Names whose calls change process state or draw random numbers: not compared across kernel sets.
STATEFUL = {"set_num_threads", "manual_seed", "dropout", "Dropout", "initial_seed", "cpu_info", "get_num_threads"}
HANG_SECONDS = 60
ADDRESS_SPACE_BYTES = 6 << 30
SAMPLED_ABOVE = 1 << 16
MAX_ELEMENTS = 1 << 13
BROADCAST_WORK = (2**31 + 1) * 2
# Inputs larger than this are not rerun under one thread and the generic kernels: the reruns
# test kernel arithmetic, which small inputs test as well, and would triple the time of a call
# whose work is bounded only by BROADCAST_WORK.
RERUN_MAX_ELEMENTS = 1 << 24
HARNESS_BUG = 3  # worker exit status: the harness itself failed

# The in-tree build (tools/dev_build.sh) when tensorops is not importable otherwise; an
# installed package or PYTHONPATH (e.g. the sanitizer build) takes precedence.
if importlib.util.find_spec("tensorops") is None and any((ROOT / "python" / "tensorops").glob("_core*.so")):
    sys.path.append(str(ROOT / "python"))

DTYPES = ["float32", "float64", "int32", "int64", "bool", "float16", "uint8", "int8", "complex64", "object"]
SIZES = [0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 16, 17, 33]
HUGE_INTS = [2**31 - 1, 2**31, -2**31 - 1, 2**32, 2**62, 2**63 - 1, -2**63, 2**63, 2**64, 2**100, -2**100]
FLOATS = [0.0, 0.5, 1.0, -1.0, 0.1, 0.9, 1.5, 2.0, 1e-12, 1e308, -1e308, "nan", "inf", "-inf"]
ARRAY_NAMES = {"input", "x", "tensor", "a", "b", "weight", "bias", "other", "src", "cond", "running_mean",
               "running_var", "indices", "target", "mat1", "mat2", "vec", "out"}
DIM_NAMES = {"dim", "dim0", "dim1", "start_dim", "end_dim", "start", "length", "chunks", "padding_idx",
             "num_groups", "num_embeddings", "embedding_dim", "num_parameters", "n", "seed", "groups", "correction"}
SIZE_NAMES = {"shape", "size", "sizes", "dims", "output_size", "normalized_shape", "kernel_size", "stride", "padding",
              "dilation", "output_padding", "split_size_or_sections", "unflattened_size"}
FLOAT_NAMES = {"p", "eps", "momentum", "negative_slope", "alpha", "beta", "threshold", "max_norm", "norm_type", "min",
               "max", "min_val", "max_val", "init", "lambd", "value"}
BOOL_NAMES = {"training", "keepdim", "ceil_mode", "return_indices", "inplace", "count_include_pad", "freeze",
              "sparse", "scale_grad_by_freq", "unbiased", "affine", "track_running_stats", "requires_grad"}


# ---- choosing: the same generator code draws from atheris's bytes or from random.Random ------

class RandomChooser:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def pick(self, options):
        return options[self.int(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.int(0, 99) < percent


class BytesChooser(RandomChooser):
    """Draws from an atheris FuzzedDataProvider, so libFuzzer's mutations steer the choices."""

    def __init__(self, provider):
        self.provider = provider

    def int(self, low: int, high: int) -> int:
        return self.provider.ConsumeIntInRange(low, high)


# ---- case descriptions ------------------------------------------------------------------------

def load_targets() -> list:
    """The dotted names docs/api.md lists as implemented that are callable."""
    names, planned = [], False
    for line in API_DOC.read_text().splitlines():
        if line.startswith("## "):
            planned = line.strip() == PLANNED_HEADING
        m = re.match(r"^\|\s*`(tensorops(?:\.\w+)*)`\s*\|", line)
        if m and not planned:
            names.append(m.group(1))
    return [n for n in names if _is_target(resolve(n))]


def _is_target(obj) -> bool:
    if inspect.ismodule(obj) or (isinstance(obj, type) and issubclass(obj, BaseException)):
        return False
    return callable(obj)


def resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(".".join(parts[: i + 1]))
    return obj


def draw_shape(c: RandomChooser, max_dims: int = 4) -> list:
    ndim = c.pick([0, 1, 1, 2, 2, 3, 3, 4, max_dims]) if c.chance(95) else c.int(5, 8)
    shape = [c.pick(SIZES) for _ in range(ndim)]
    # Big sizes come from zero-stride views, not from memory; a 0 dim does not make the other
    # dims free (a nested Python list of an empty array still has one list per row).
    while math.prod(max(n, 1) for n in shape) > MAX_ELEMENTS:
        shape[shape.index(max(shape))] //= 2
    return shape


def draw_array(c: RandomChooser, dtype: str | None = None, shape: list | None = None) -> dict:
    shape = draw_shape(c) if shape is None else list(shape)
    spec = {"shape": shape, "dtype": dtype or (c.pick(DTYPES) if c.chance(15) else c.pick(["float32", "float64"])),
            "seed": c.int(0, 2**16), "special": c.chance(25)}
    layout = c.pick(["contiguous", "contiguous", "permuted", "strided", "negative", "broadcast", "huge_broadcast",
                     "readonly", "unaligned", "pylist"])
    spec["layout"] = layout
    nd = len(shape)
    if layout == "permuted":
        order = list(range(nd))
        for i in range(nd - 1, 0, -1):
            j = c.int(0, i)
            order[i], order[j] = order[j], order[i]
        spec["perm"] = order
    elif layout in ("strided", "negative"):
        spec["steps"] = [c.pick([1, 2, 3] if layout == "strided" else [-1, -2, 1]) for _ in range(nd)]
    elif layout == "broadcast":
        spec["repeat"] = [c.chance(50) for _ in range(nd)]
    elif layout == "huge_broadcast":
        # Past 2^31 elements without unbounded work: an op that must read every element (a
        # reduction, an adaptive pool) takes time in proportion, so the view stays below
        # BROADCAST_WORK elements (a dim of 2^31 + 1 still comes with the smallest shapes).
        inner, lead = max(1, math.prod(shape)), []
        for _ in range(c.int(1, 2)):
            n = c.pick([2**10, 2**16, 2**20, 2**31 + 1])
            if math.prod(lead) * n * inner <= BROADCAST_WORK:
                lead.append(n)
        spec["lead"] = lead or [2**10]
    return {"array": spec}


def draw_int(c: RandomChooser) -> object:
    roll = c.int(0, 99)
    if roll < 75:
        return c.int(-4, 6)
    if roll < 90:
        return c.pick(HUGE_INTS)
    return c.pick([1.5, "0", None, True, [1], {"float": "nan"}])


def draw_sizes(c: RandomChooser) -> object:
    roll = c.int(0, 99)
    if roll < 30:
        return draw_int(c)
    items = [draw_int(c) if c.chance(20) else c.int(-1, 6) for _ in range(c.int(0, 4))]
    return {"tuple": items} if roll < 80 else items


def draw_float(c: RandomChooser) -> object:
    if c.chance(80):
        v = c.pick(FLOATS)
        return {"float": v} if isinstance(v, str) else v
    return c.pick([None, 1, True, "0.5", [0.5]])


def draw_value(c: RandomChooser, name: str) -> object:
    if name in ARRAY_NAMES or c.chance(5):
        if name == "indices" or (name == "input" and c.chance(30)):
            return draw_array(c, dtype=c.pick(["int64", "int32", "int64", "float32", "bool"]))
        return draw_array(c) if c.chance(95) else c.pick([None, 3, 1.5, "x", [1.0, -2.0]])
    if name == "tensors":
        shape = draw_shape(c, 3)
        return [draw_array(c, shape=shape if c.chance(70) else None) for _ in range(c.int(0, 4))]
    if name in DIM_NAMES:
        return draw_int(c)
    if name in SIZE_NAMES:
        return draw_sizes(c)
    if name in FLOAT_NAMES:
        return draw_float(c)
    if name in BOOL_NAMES:
        return c.pick([True, False, True, False, None, 0, 1, "yes"])
    return c.pick([draw_int(c), draw_float(c), None, "none", "same", draw_sizes(c)])


def draw_call(c: RandomChooser, target: str, obj) -> tuple:
    """(args, kwargs) for one call, from the signature."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return [], {}
    args, kwargs, keyword_only = [], {}, False
    for p in params:
        if p.name == "self":
            continue
        if p.kind == p.VAR_POSITIONAL:
            if c.chance(50):
                args.extend(draw_int(c) if c.chance(20) else c.int(-1, 6) for _ in range(c.int(0, 4)))
            else:
                args.append(draw_sizes(c))
            keyword_only = True
            continue
        if p.kind == p.VAR_KEYWORD:
            continue
        if p.default is not p.empty and c.chance(35):
            keyword_only = True  # skipping one: the rest must go by keyword
            continue
        value = draw_value(c, p.name)
        if p.kind == p.KEYWORD_ONLY or keyword_only or c.chance(20):
            kwargs[p.name] = value
            keyword_only = True
        else:
            args.append(value)
    if c.chance(3):
        kwargs["unexpected"] = 1
    return args, kwargs


def draw_case(c: RandomChooser, targets: list) -> dict:
    target = c.pick(targets)
    obj = resolve(target)
    case = {"op": target}
    if isinstance(obj, type):
        case["init_args"], case["init_kwargs"] = draw_call(c, target, obj.__init__)
        forward = getattr(obj, "forward", None)
        case["args"], case["kwargs"] = draw_call(c, target, forward) if forward else ([], {})
    else:
        case["args"], case["kwargs"] = draw_call(c, target, obj)
    if target.rpartition(".")[2] in PIECEWISE:
        _cap_broadcast_leads(case, 2**20)
    return case


# Ops returning one Python object per piece: splitting a 2^31-long broadcast dim into pieces of
# a few elements asks for hundreds of millions of views, which exhausts memory in torch and
# here alike (NumPy may then surface it as a SystemError), so their broadcast dims stay smaller.
PIECEWISE = {"split", "chunk"}


def _cap_broadcast_leads(spec, cap: int) -> None:
    if isinstance(spec, dict):
        if "lead" in spec:
            spec["lead"] = [min(n, cap) for n in spec["lead"]]
        for value in spec.values():
            _cap_broadcast_leads(value, cap)
    elif isinstance(spec, list):
        for value in spec:
            _cap_broadcast_leads(value, cap)


# ---- building and running a case --------------------------------------------------------------

def build(spec):
    import numpy as np
    if isinstance(spec, list):
        return [build(s) for s in spec]
    if not isinstance(spec, dict):
        return spec
    if "tuple" in spec:
        return tuple(build(s) for s in spec["tuple"])
    if "float" in spec:
        return float(spec["float"])
    if "array" in spec:
        return _build_array(spec["array"], np)
    return {k: build(v) for k, v in spec.items()}


def _build_array(a: dict, np):
    shape, dtype = tuple(a["shape"]), np.dtype(a["dtype"])
    rng = np.random.default_rng(a["seed"])
    if dtype.kind == "f" or dtype.kind == "c":
        values = np.asarray(rng.standard_normal(shape) * 3, dtype)
        if a.get("special") and values.size:
            mask = rng.random(shape) < 0.3
            values[mask] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0], dtype), int(mask.sum()))
    elif dtype.kind == "b":
        values = np.asarray(rng.random(shape) < 0.5)
    elif dtype.kind == "O":
        values = np.empty(shape, object)
        values[...] = 1
    else:
        values = np.asarray(rng.integers(-3, 20, shape), dtype)
    layout = a["layout"]
    if layout == "permuted" and values.ndim:
        perm = a["perm"]
        return np.ascontiguousarray(values.transpose(perm)).transpose(np.argsort(perm))
    if layout in ("strided", "negative") and values.ndim:
        steps = a["steps"]
        big = np.zeros(tuple(s * abs(k) for s, k in zip(values.shape, steps)), dtype)
        view = big[tuple(slice(None, None, k) for k in steps)]
        view[...] = values
        return view
    if layout == "broadcast" and values.ndim:
        src = values[tuple(slice(0, 1) if r and s else slice(None) for r, s in zip(a["repeat"], values.shape))]
        return np.broadcast_to(src, values.shape)
    if layout == "huge_broadcast":
        try:
            return np.broadcast_to(values, tuple(a["lead"]) + values.shape)
        except ValueError:  # more elements than NumPy can address: pass the small array instead
            return values
    if layout == "readonly":
        values.flags.writeable = False
        return values
    if layout == "unaligned" and dtype.kind != "O":
        raw = np.zeros(values.nbytes + 1, np.uint8)[1:].view(dtype).reshape(values.shape)
        raw[...] = values
        return raw
    if layout == "pylist" and dtype.kind in "fib":
        return values.tolist()
    return values


# ZeroDivisionError is what torch raises for GroupNorm with num_groups=0, and tensorops follows it.
ACCEPTED = (ValueError, RuntimeError, TypeError, IndexError, MemoryError, ZeroDivisionError)


def _snapshot(value):
    import numpy as np
    if isinstance(value, np.ndarray):
        return value.tobytes() if value.size < (1 << 24) else None
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    return None


def _truthy(value) -> bool:
    try:
        return bool(value)
    except Exception:  # noqa: BLE001 - an array's truth value is ambiguous: not a flag
        return False


def _positional(obj, args: list) -> dict:
    """The parameter names of `obj` that positional `args` bind to, by position."""
    try:
        params = [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        return {}
    return {i: p.name for i, p in enumerate(params[:len(args)])
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _writable_arguments(case: dict, built: dict) -> set:
    """Arguments (names and positions) an op may legitimately write: out=, the input under a
    truthy inplace (torch tests it with `if self.inplace`), and embedding's weight (max_norm
    renormalises rows in place)."""
    names = {"out"}
    if case["op"].lower().endswith("embedding"):
        names.add("weight")
    obj = resolve(case["op"])
    target = getattr(obj, "forward", obj) if isinstance(obj, type) else obj
    call_names = _positional(target, built["args"])
    init_names = _positional(obj.__init__, built["init_args"]) if isinstance(obj, type) else {}
    flags = [built["kwargs"].get("inplace"), built["init_kwargs"].get("inplace")]
    flags += [built["args"][i] for i, n in call_names.items() if n == "inplace"]
    flags += [built["init_args"][i] for i, n in init_names.items() if n == "inplace"]
    if any(_truthy(f) for f in flags):
        names.add("input")
    return names | {i for i, n in call_names.items() if n in names}


def _call(case: dict, built: dict, instance=None):
    """Calls the target; a class is constructed first (or `instance` is used: modules draw
    random initial weights, so a comparison must reuse one instance's weights)."""
    obj = resolve(case["op"])
    if isinstance(obj, type):
        obj = instance if instance is not None else obj(*built["init_args"], **built["init_kwargs"])
        if not callable(obj):
            return obj
    return obj(*built["args"], **built["kwargs"])


def _construct(case: dict, built: dict):
    obj = resolve(case["op"])
    return obj(*built["init_args"], **built["init_kwargs"]) if isinstance(obj, type) else None


def _comparable(a, b):
    """Pairs of arrays to compare (a sample of a huge broadcast view; the ends of a long
    list of pieces), or None when the two results differ in structure, shape or dtype."""
    import numpy as np
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return None
        if a.size > SAMPLED_ABOVE:
            flat = np.random.default_rng(0).integers(0, a.size, 4096)
            where = np.unravel_index(flat, a.shape)
            a, b = a[where], b[where]
        return [(np.asarray(a), np.asarray(b))]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return None
        pairs = []
        for i in sorted(set(range(min(len(a), 8))) | set(range(max(8, len(a) - 8), len(a)))):
            inner = _comparable(a[i], b[i])
            if inner is None:
                return None
            pairs += inner
        return pairs
    return []


def _same_bits(a, b) -> bool:
    """Bit-identical, except that every NaN counts as the same NaN (its sign and payload are
    whatever the instruction that made it left, in torch as here)."""
    import numpy as np
    pairs = _comparable(a, b)
    if pairs is None:
        return False
    for x, y in pairs:
        if x.dtype.kind in "fc":
            nan_x, nan_y = np.isnan(x), np.isnan(y)
            if not np.array_equal(nan_x, nan_y):
                return False
            x, y = np.where(nan_x, 0, x), np.where(nan_y, 0, y)
        if x.tobytes() != y.tobytes():
            return False
    return True


# How far the generic kernels may drift from the vector ones: a different summation order or
# polynomial moves a float32 result by a few ulps of the largest value around it.
ISA_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def _close_across_isas(a, b) -> bool:
    """The same NaN/inf pattern, the same sign of every zero, exact integers and indices,
    and floats within ISA_TOLERANCE of each other, scaled by the result's own magnitude."""
    import numpy as np
    pairs = _comparable(a, b)
    if pairs is None:
        return False
    for x, y in pairs:
        if x.dtype.name not in ISA_TOLERANCE:
            if not _same_bits(x, y):
                return False
            continue
        if not (np.array_equal(np.isnan(x), np.isnan(y)) and np.array_equal(np.isposinf(x), np.isposinf(y))
                and np.array_equal(np.isneginf(x), np.isneginf(y))):
            return False
        zero = (x == 0) & (y == 0)
        if not np.array_equal(np.signbit(x[zero]), np.signbit(y[zero])):
            return False
        finite = np.isfinite(x)
        xf, yf = x[finite].astype(np.float64), y[finite].astype(np.float64)
        scale = max(1.0, float(np.abs(yf).max(initial=0.0)))
        if np.any(np.abs(xf - yf) > ISA_TOLERANCE[x.dtype.name] * scale):
            return False
    return True


def _build_call(case: dict) -> dict:
    """Fresh arguments of a case (each run gets its own: an op may write its out= or input)."""
    return {k: build(case.get(k, {} if k.endswith("kwargs") else [])) for k in ("init_args", "init_kwargs", "args",
                                                                              "kwargs")}


def run_case(case: dict) -> dict:
    """Runs one case; returns {"outcome": "ok"|"error"|finding kind, "detail": ...}."""
    import numpy as np
    import tensorops
    from tensorops import _core
    threads, cap = tensorops.get_num_threads(), _core.isa_cap()
    built = _build_call(case)
    before = {i: _snapshot(v) for i, v in enumerate(built["args"])}
    before.update({k: _snapshot(v) for k, v in built["kwargs"].items()})
    # Reruns (and the module copy they start from) only for inputs of a bounded size: a copy
    # of a module holding a huge broadcast view would materialise it.
    sizes = [v.size for part in built.values() for v in (part.values() if isinstance(part, dict) else part)
             if isinstance(v, np.ndarray)]
    rerun = max(sizes, default=0) <= RERUN_MAX_ELEMENTS
    instance = twin = None
    try:
        with np.errstate(all="ignore"):
            instance = _construct(case, built)
            twin = copy.deepcopy(instance) if instance is not None and rerun else None
            result = _call(case, built, instance)
    except ACCEPTED as exc:
        return {"outcome": "error", "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    except Exception as exc:  # noqa: BLE001 - this is what a fuzzer is for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return {"outcome": "unexpected-exception", "detail": f"{type(exc).__name__}: {str(exc)[:300]}",
                "where": f"{Path(frame.filename).name}:{frame.lineno}", "traceback": traceback.format_exc()[-3000:]}
    finally:
        tensorops.set_num_threads(threads)
        _core.set_isa_cap(cap)
    writable = _writable_arguments(case, built)
    after = {i: _snapshot(v) for i, v in enumerate(built["args"])}
    after.update({k: _snapshot(v) for k, v in built["kwargs"].items()})
    for key, value in before.items():
        if value is not None and key not in writable and after[key] != value:
            return {"outcome": "modified-input", "detail": f"argument {key!r} was modified"}
    short = case["op"].rpartition(".")[2]
    if short not in STATEFUL and isinstance(result, (np.ndarray, tuple, list)) and rerun:
        # One thread must give the same bits as all threads; the generic kernels must give
        # the same answer as the best ones, up to rounding.
        for isa, same, check in ((cap, "bits", _same_bits), ("generic", "values", _close_across_isas)):
            built2 = _build_call(case)
            try:
                tensorops.set_num_threads(1)
                _core.set_isa_cap(isa)
                with np.errstate(all="ignore"):
                    reference = _call(case, built2, copy.deepcopy(twin))
            except MemoryError:  # the first result still holds memory under the address-space limit
                return {"outcome": "ok"}
            except Exception as exc:  # noqa: BLE001
                return {"outcome": "isa-mismatch", "detail": f"{isa} kernels, 1 thread, raised {type(exc).__name__}: {exc}"}
            finally:
                tensorops.set_num_threads(threads)
                _core.set_isa_cap(cap)
            if not check(result, reference):
                kind = "thread-mismatch" if isa == cap else "isa-mismatch"
                return {"outcome": kind, "detail": f"{isa} kernels on 1 thread give different {same} from {cap} on {threads}"}
    return {"outcome": "ok"}


def finding_key(case: dict, result: dict) -> str:
    return f"{case['op']}|{result['outcome']}|{result.get('where', '')}|{result['detail'].split(':')[0]}"


def save_finding(corpus: Path, case: dict, result: dict) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    body = json.dumps(case, sort_keys=True)
    digest = hashlib.sha1(body.encode()).hexdigest()[:12]
    path = corpus / f"{result['outcome']}-{case['op'].rpartition('.')[2]}-{digest}.json"
    entry = {"case": case, "found": {k: v for k, v in result.items() if k != "traceback"}}
    path.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    if "traceback" in result:
        print(result["traceback"], file=sys.stderr)
    return path


# ---- the worker -------------------------------------------------------------------------------

class Worker:
    """Runs cases, writing each one to `current` before it runs (for the supervisor)."""

    def __init__(self, corpus: Path, current: Path, deadline: float):
        self.corpus, self.deadline = corpus, deadline
        self.fd = os.open(current, os.O_WRONLY | os.O_CREAT, 0o644)
        self.targets = load_targets()
        self.seen: set = set()
        self.count = 0

    def one(self, chooser: RandomChooser) -> None:
        case = draw_case(chooser, self.targets)
        data = json.dumps(case).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        try:
            result = run_case(case)
        except BaseException:  # noqa: BLE001 - a bug of this harness, not of tensorops
            traceback.print_exc()
            sys.stdout.flush()
            os._exit(HARNESS_BUG)
        self.count += 1
        if result["outcome"] not in ("ok", "error"):
            key = finding_key(case, result)
            if key not in self.seen:
                self.seen.add(key)
                print(f"finding: {save_finding(self.corpus, case, result)}: {result['detail']}", flush=True)


def worker_main(args) -> int:
    import resource
    if not os.environ.get("TENSOROPS_SANITIZED"):  # ASan reserves terabytes of address space for its shadow
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    deadline = time.time() + args.seconds
    if args.engine == "atheris":
        import atheris
        with atheris.instrument_imports():
            import tensorops  # noqa: F401
            import tensorops.nn.functional  # noqa: F401
        worker = Worker(Path(args.corpus), Path(args.current), deadline)

        def test_one_input(data: bytes) -> None:
            worker.one(BytesChooser(atheris.FuzzedDataProvider(data)))
            if time.time() > deadline:
                print(f"worker: {worker.count} cases", flush=True)
                os._exit(0)

        atheris.Setup([sys.argv[0], f"-max_total_time={max(1, int(args.seconds))}", "-rss_limit_mb=0",
                       f"-timeout={HANG_SECONDS}", "-max_len=4096"], test_one_input)
        atheris.Fuzz()
        return 0
    worker = Worker(Path(args.corpus), Path(args.current), deadline)
    chooser = RandomChooser(random.Random(args.seed))
    while time.time() < deadline:
        worker.one(chooser)
    print(f"worker: {worker.count} cases", flush=True)
    return 0


# ---- the supervisor ---------------------------------------------------------------------------

def supervise(args) -> int:
    corpus = Path(args.corpus)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "random"
    end = time.time() + args.seconds
    known = set(corpus.glob("*.json")) if corpus.exists() else set()
    crashes = 0
    seed = args.seed
    with tempfile.TemporaryDirectory() as scratch:
        current = Path(scratch) / "current.json"
        while time.time() < end - 1:
            remaining = end - time.time()
            cmd = [sys.executable, __file__, "--worker", "--engine", engine, "--seconds", f"{remaining:.0f}",
                   "--corpus", str(corpus), "--current", str(current), "--seed", str(seed)]
            log = Path(scratch) / "worker.log"
            env = dict(os.environ)
            # The worker runs in the scratch directory: a relative PYTHONPATH (PYTHONPATH=python
            # from the checkout) would silently import some other installed tensorops there.
            if env.get("PYTHONPATH"):
                env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
            if env.get("TENSOROPS_SANITIZED"):
                # No address-space limit under ASan (its shadow needs terabytes): cap single
                # allocations instead, so a huge result is a MemoryError, not gigabytes written
                # (1 GiB: instrumented copies of several GiB take longer than the hang timeout).
                cap = "max_allocation_size_mb=1024:allocator_may_return_null=1"
                env["ASAN_OPTIONS"] = f"{env['ASAN_OPTIONS']}:{cap}" if env.get("ASAN_OPTIONS") else cap
            with open(log, "w") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=scratch, env=env)
                last_stamp, last_change = None, time.time()
                while proc.poll() is None:
                    time.sleep(0.5)
                    stamp = current.stat().st_mtime_ns if current.exists() else None
                    if stamp != last_stamp:
                        last_stamp, last_change = stamp, time.time()
                    elif time.time() - last_change > HANG_SECONDS:
                        proc.kill()
                        proc.wait()
                        break
            rc = proc.returncode
            tail = log.read_text()[-4000:]
            print("".join(line + "\n" for line in tail.splitlines() if line.startswith(("finding", "worker"))), end="")
            hung = rc == -signal.SIGKILL
            if rc == HARNESS_BUG:
                print(f"the fuzz harness failed (not a tensorops finding):\n{tail}", file=sys.stderr)
                return 2
            if rc != 0 and current.exists():
                case = json.loads(current.read_text())
                kind = "hang" if hung else "crash"
                detail = f"worker {'hung' if hung else 'died'} (exit status {rc})"
                path = save_finding(corpus, case, {"outcome": kind, "detail": detail, "log": tail[-1500:]})
                print(f"finding: {path}: {detail}\n{tail[-1500:]}", flush=True)
                crashes += 1
            elif rc != 0:
                print(f"worker failed before its first case (exit status {rc}):\n{tail}", file=sys.stderr)
                return 2
            seed += 1
    new = sorted(p.name for p in (set(corpus.glob("*.json")) if corpus.exists() else set()) - known)
    print(f"fuzz: {args.seconds:.0f} s with {engine}, {crashes} crash(es)/hang(s), {len(new)} new finding(s)"
          + "".join(f"\n  {corpus / name}" for name in new))
    return 1 if new else 0


def replay(corpus: Path) -> int:
    """Runs every corpus case in this process; prints one JSON line per case; exit 1 on a finding."""
    failed = 0
    for path in sorted(corpus.glob("*.json")):
        entry = json.loads(path.read_text())
        print(json.dumps({"file": path.name, "start": True}), flush=True)
        result = run_case(entry["case"])
        result.pop("traceback", None)
        failed += result["outcome"] not in ("ok", "error")
        print(json.dumps({"file": path.name, **result}), flush=True)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="where findings go (default tests/fuzz_corpus)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random engine")
    parser.add_argument("--replay", metavar="DIR", help="replay the cases in DIR instead of fuzzing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        return replay(Path(args.replay))
    if args.worker:
        return worker_main(args)
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
