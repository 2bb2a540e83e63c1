"""The benchmark CLI (``python -m tensorops bench|info``) and the logic under it.

Nothing here asserts a timing: the CLI runs once on one small selection with a tiny
minimum time, and the timing, ratio, registry, check and report logic is tested on
synthetic inputs and a fake clock.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import tensorops
from tensorops.__main__ import main
from tensorops._bench import Case, all_cases, op, select_cases
from tensorops._bench.report import format_seconds, format_tables, plot_ratios
from tensorops._bench.runner import Libraries, Settings, errors_in, run_cases
from tensorops._bench.timing import (calls_per_sample, measure, measure_in_turns, measure_side_by_side, rate, ratio,
                                     summarise)

pytestmark = pytest.mark.single_isa

ROOT = Path(__file__).resolve().parent.parent

PEERS = ("numpy", "torch", "onnxruntime")


def _cli(*args, timeout=120):
    # The environment (PYTHONPATH included) is inherited: the same tensorops the tests
    # import, in-tree or installed.
    return subprocess.run([sys.executable, "-m", "tensorops", *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def test_cli_bench_writes_every_number_to_json(tmp_path):
    path = tmp_path / "bench.json"
    done = _cli("bench", "--ops", "relu", "--threads", "1", "--json", str(path), "--min-time", "0.001", "--repeat", "2")
    assert done.returncode == 0, done.stderr
    assert "relu_16M" in done.stdout and "== pointwise (float32) ==" in done.stdout
    document = json.loads(path.read_text())
    assert document["schema"] == 1
    machine = document["machine"]
    assert machine["versions"]["tensorops"] == tensorops.__version__
    assert machine["cpu_info"]["isa"] in ("scalar", "avx2", "avx512")
    assert {"features", "num_threads", "detected_isa", "isa_cap"} <= set(machine["cpu_info"])
    # The peers' kernel sets, so that a TENSOROPS_ISA=avx2 run says what it was compared with.
    assert set(machine["peer_kernels"]) == {"torch", "numpy"}
    if importlib.util.find_spec("torch") is not None:
        assert isinstance(machine["peer_kernels"]["torch"], str)
        assert f"torch {machine['peer_kernels']['torch']}" in done.stderr
    assert document["settings"]["threads"] == [1]
    assert document["settings"]["repeat"] == 2
    (case,) = document["cases"]
    assert (case["name"], case["family"], case["unit"]) == ("relu_16M", "pointwise", "GB/s")
    assert case["bytes_moved"] == 2 * 4096 * 4096 * 4
    (run,) = case["runs"]
    assert run["threads"] == 1
    tops = run["results"]["tensorops"]
    assert tops["status"] == "ok"
    assert tops["samples"] >= 2
    assert 0 < tops["min_s"] <= tops["median_s"] <= tops["max_s"]
    assert tops["rate"] == pytest.approx(case["bytes_moved"] / tops["median_s"] / 1e9)
    copy = run["copy"]
    assert copy["impl"] == "numpy.copyto" and copy["bytes_moved"] == case["bytes_moved"]
    assert tops["pct_copy"] == pytest.approx(100 * tops["rate"] / copy["rate"])
    assert run["results"]["numpy"]["status"] == "ok"
    for peer in PEERS:
        result = run["results"][peer]
        assert result["status"] in ("ok", "n/a"), result
        if result["status"] == "ok":
            assert run["ratios"][peer] == pytest.approx(result["median_s"] / tops["median_s"])
        else:
            assert run["ratios"][peer] is None and result["reason"]
    assert run["check_reference"] in ("torch", "numpy")
    assert run["checks"]["tensorops"]["ok"]
    assert all(check["ok"] for check in run["checks"].values())
    # tools/bench_summary.py turns the same file into the README's table.
    summary = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_summary.py"), str(path)], capture_output=True,
                             text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    header, rule, row = summary.stdout.strip().splitlines()
    assert header == "| case | 1t tensorops | 1t vs torch | 1t vs onnxruntime | 1t vs numpy |"
    assert row.startswith("| `relu_16M` | ") and " GB/s | " in row
    assert f"{run['ratios']['numpy']:.2f}x" in row


def test_cli_info():
    done = _cli("info")
    assert done.returncode == 0, done.stderr
    assert f"tensorops {tensorops.__version__}" in done.stdout
    assert "ISA:" in done.stdout and "numpy" in done.stdout and "threads:" in done.stdout


def test_cli_list_and_selection(capsys):
    assert main(["bench", "--list", "--ops", "relu"]) == 0
    out = capsys.readouterr().out
    assert "relu_16M" in out and "sigmoid_16M" not in out
    assert main(["bench", "--list"]) == 0  # every case, composite calls included
    assert "layernorm_8x128x768" in capsys.readouterr().out
    assert main(["bench", "--ops", "^no_such_case$"]) == 2
    assert "no case matches" in capsys.readouterr().err


def test_cli_rejects_bad_arguments(capsys):
    for argv in (["bench", "--threads", "0"], ["bench", "--ops", "("], ["bench", "--min-time", "-1"], [],
                 ["bench", "--threads", "abc"], ["bench", "--threads", str(2**31)], ["bench", "--min-time", "inf"],
                 ["bench", "--min-time", "nan"], ["bench", "--json", "/nonexistent/folder/x.json"],
                 ["bench", "--json", "."]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    errors = capsys.readouterr().err
    assert "invalid regular expression" in errors and "_positive_int" not in errors
    assert "is not a writable directory" in errors and "'.' is a directory" in errors


def test_summarise_median_min_max():
    odd = summarise([3.0, 1.0, 2.0], inner=1)
    assert (odd.median, odd.min, odd.max, odd.samples) == (2.0, 1.0, 3.0, 3)
    assert summarise([4.0, 1.0, 2.0, 3.0], inner=8).median == 2.5
    with pytest.raises(ValueError, match="no samples"):
        summarise([], inner=1)


class FakeClock:
    """A clock that only the measured function advances."""

    def __init__(self):
        self.now = 0.0
        self.calls = []  # the names of the contenders' calls, in order

    def __call__(self):
        return self.now

    def work(self, seconds):
        def fn():
            self.now += seconds
            return "result"

        return fn

    def contender(self, name, seconds, fail_at=None):
        """A call that takes `seconds`, noted in self.calls, and raises at its fail_at-th call."""

        def fn():
            self.calls.append(name)
            if fail_at is not None and self.calls.count(name) >= fail_at:
                raise RuntimeError(f"{name} broke")
            self.now += seconds
            return name

        return fn


def test_measure_repeats_until_count_and_time():
    clock = FakeClock()
    measured, result = measure(clock.work(0.01), min_repeat=3, min_time=0.05, clock=clock)
    assert result == "result"
    assert measured.inner == 1
    assert measured.samples == 5  # five samples of 10 ms reach 50 ms; three would not
    assert measured.median == pytest.approx(0.01)
    measured, _ = measure(clock.work(0.01), min_repeat=4, min_time=0.0, clock=clock)
    assert measured.samples == 4


def test_measure_batches_short_calls():
    clock = FakeClock()
    # Powers of two keep the fake clock's sums exact.
    measured, _ = measure(clock.work(2.0**-20), min_repeat=2, min_time=0.0, sample_target=2.0**-10, clock=clock)
    assert measured.inner == 1024
    assert measured.median == 2.0**-20
    assert calls_per_sample(2e-3, 1e-3) == 1
    assert calls_per_sample(3e-4, 1e-3) == 4
    with pytest.raises(ValueError, match="min_repeat"):
        measure(clock.work(1.0), min_repeat=0, min_time=0.0, clock=clock)


def test_measure_side_by_side_interleaves_rounds():
    clock = FakeClock()
    order, timed = clock.calls, clock.contender
    # Samples last at least min_time / (4 * min_repeat) = 2^-9 s: "fast" (2^-11 s a call) takes
    # four calls a sample, "slow" (10 ms) one; each round takes one sample of each, and a
    # contender leaves once it has min_repeat samples and min_time in all.
    out = measure_side_by_side({"fast": timed("fast", 2.0**-11), "slow": timed("slow", 0.01)}, min_repeat=3,
                               min_time=12 * 2.0**-9, clock=clock)
    fast, fast_result = out["fast"]
    slow, slow_result = out["slow"]
    assert (fast_result, slow_result) == ("fast", "slow")
    assert (fast.inner, slow.inner) == (4, 1)
    assert slow.samples == 3 and slow.median == pytest.approx(0.01)
    assert fast.samples == 12 and fast.median == pytest.approx(2.0**-11)
    rounds = order[4:]  # after two warm-up and two calibration calls
    # Each sample starts with an untimed call while both are in the rounds.
    assert rounds[:14] == ["fast"] * 5 + ["slow"] * 2 + ["fast"] * 5 + ["slow"] * 2
    # A contender whose call raises is handed back as the exception; the others go on.
    order.clear()
    out = measure_side_by_side({"ok": timed("ok", 0.01), "bad": timed("bad", 0.01, fail_at=3)}, min_repeat=3,
                               min_time=0.0, clock=clock)
    assert isinstance(out["bad"], RuntimeError) and str(out["bad"]) == "bad broke"
    assert out["ok"][0].samples == 3
    with pytest.raises(ValueError, match="min_repeat"):
        measure_side_by_side({}, min_repeat=0, min_time=0.0, clock=clock)


def test_measure_in_turns_takes_turns_after_a_pause():
    clock = FakeClock()
    order, timed = clock.calls, clock.contender

    def pause(seconds):
        order.append(f"pause {seconds}")
        clock.now += seconds  # a pause is never timed: the fake clock moves only between samples

    # Three turns, forwards, backwards, forwards; each turn of one contender is a warm-up call,
    # a calibration call and its share of the samples (min_repeat 4 over 3 turns: 2 each).
    out = measure_in_turns({"a": timed("a", 0.01), "b": timed("b", 0.02)}, min_repeat=4, min_time=0.0, turns=3,
                           settle=0.5, clock=clock, sleep=pause)
    a, a_result = out["a"]
    b, b_result = out["b"]
    assert (a_result, b_result) == ("a", "b")
    assert (a.samples, b.samples) == (6, 6)
    assert a.median == pytest.approx(0.01) and b.median == pytest.approx(0.02)
    turn = lambda name: ["pause 0.5"] + [name] * 4
    assert order == turn("a") + turn("b") + turn("b") + turn("a") + turn("a") + turn("b")
    # A contender whose call raises is handed back as the exception and takes no more turns.
    order.clear()
    out = measure_in_turns({"ok": timed("ok", 0.01), "bad": timed("bad", 0.01, fail_at=3)}, min_repeat=3,
                           min_time=0.0, turns=3, settle=0.0, clock=clock, sleep=pause)
    assert isinstance(out["bad"], RuntimeError) and str(out["bad"]) == "bad broke"
    assert out["ok"][0].samples == 3 and order.count("bad") == 3
    with pytest.raises(ValueError, match="turns"):
        measure_in_turns({}, min_repeat=1, min_time=0.0, turns=0, clock=clock, sleep=pause)


def test_ratio_and_rate():
    assert ratio(2.0, 1.0) == 2.0  # the peer takes twice as long: tensorops is 2x faster
    assert ratio(0.5, 1.0) == 0.5
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None
    assert rate(2e9, 0.5) == 4.0
    assert rate(None, 1.0) is None
    assert format_seconds(0.0123) == "12.3 ms" and format_seconds(2.5e-6) == "2.5 us" and format_seconds(None) == "n/a"


def test_registry_has_the_required_cases():
    names = [c.name for c in all_cases()]
    assert len(names) == len(set(names))
    required = {
        "relu_16M", "sigmoid_16M", "gelu_16M", "add_bcast_8x256x56x56+256x1x1", "add_1elem",
        "softmax_lastdim_8x12x128x128", "max_dim1_values_indices_4096x4096",
        "contiguous_transposed_4096x4096", "cat_4x4096x1024_dim1",
        *(f"{r}_{over}_4096x4096" for r in ("sum", "mean", "amax", "var") for over in ("dim1", "all")),
        "mm_M1_K768_N3072", "mm_M16_K768_N3072",
    }
    assert required <= set(names)
    assert {c.family for c in select_cases("^reduce$")} == {"reduce"}
    assert next(c for c in all_cases() if c.name == "add_1elem").unit == "us/call"


def test_registry_has_the_conv_cases():
    conv = {c.name: c for c in select_cases("^conv$")}
    resnet = ["r50_stem7x7", "r50_3x3_64_56", "r50_1x1_256to64_56", "r50_3x3_256_14", "r50_1x1_1024to256_14",
              "r50_3x3_512_7", "r50_1x1_2048to512_7"]
    assert set(conv) == {
        "conv_seed_16x33_k3s2", "conv_seed_16x33_k3x5_dil", *(f"{r}_b{b}" for r in resnet for b in (1, 8)),
        "mbv2_dw3x3_c144_56", "mbv2_dw3x3_c960_7", "mbv2_dw3x3s2_c144_56", "effnet_dw5x5s2_c144_56",
        "convnext_dw7x7_c96_56", "convT_seed_16x33_k3s2", "convT_dcgan_512to256_k4s2p1",
        "r50_3x3_512_7_b1_unpacked", "mbv2_dw3x3_c144_56_unpacked", "convT_dcgan_512to256_k4s2p1_b1_unpacked",
        "convT_dcgan_latent_100to512_k4_b64",
    }
    for name, case in conv.items():
        assert case.unit == "GFLOP/s" and case.extra is not None and case.mark is not None
        assert (case.prepare is None) == name.endswith("_unpacked")


def test_a_conv_case_runs_packed_and_reports_its_workspace():
    (case,) = select_cases("^mbv2_dw3x3_c960_7$")
    (entry,) = run_cases([case], Settings(threads=(1,), min_repeat=1, min_time=0.0), progress=lambda line: None)
    (run,) = entry["runs"]
    tops = run["results"]["tensorops"]
    assert tops["status"] == "ok" and run["checks"]["tensorops"]["ok"]
    # What the case's calls requested since the runner's mark: nothing ran after them.
    assert 0 < tops["extra"]["workspace_bytes"] == tensorops._core.workspace_requested_bytes()
    assert tops["extra"]["workspace_bytes"] <= tensorops._core.workspace_bytes()
    assert entry["flops"] == 2.0 * 960 * 7 * 7 * 9
    assert "tensorops extra" in format_tables([entry], "float32")


def test_runner_prepares_tensorops_inputs_once_and_reports_extras():
    prepared = []

    def prepare(inputs):
        prepared.append(inputs)
        (x,) = inputs
        return (x, 2.0)  # tensorops' own form of the inputs: the scale it was "packed" with

    def broken_prepare(inputs):
        raise ValueError("cannot pack")

    marks = []
    scale = Case("scale", "fake", _small, lambda x, factor: x * factor, numpy=lambda x: 2 * x, prepare=prepare,
                 mark=lambda: marks.append(len(prepared)), extra=lambda: {"workspace_bytes": 3 * 2**20, "calls": 2})
    broken = Case("broken", "fake", _small, lambda x: x, numpy=lambda x: x, prepare=broken_prepare)
    libs = Libraries()
    entries = run_cases([scale, broken], Settings(threads=(1, 2), min_repeat=1, min_time=0.0), libs,
                        progress=lambda line: None)
    assert len(prepared) == 1  # once per case, not per thread count or call
    assert marks == [1, 1]  # before tensorops' measurement at each thread count
    for run in entries[0]["runs"]:
        assert run["checks"]["tensorops"]["ok"]
        assert run["results"]["tensorops"]["extra"] == {"workspace_bytes": 3 * 2**20, "calls": 2}
    assert entries[1]["runs"][0]["results"]["tensorops"] == {"status": "error",
                                                            "reason": "preparing its inputs: ValueError: cannot pack"}
    table = format_tables(entries, "float32")
    assert "tensorops extra" in table and "workspace 3 MiB, calls 2" in table


def test_op_resolves_late_and_missing_ops_are_none():
    assert op("definitely_not_an_op").resolve(tensorops) is None
    assert op("nn.functional.no_such_activation").resolve(tensorops) is None
    add_axis = op("sum", axis=1).resolve(np)
    np.testing.assert_array_equal(add_axis(np.ones((2, 3))), [3.0, 3.0])


def _fake_tensorops(**ops):
    return types.SimpleNamespace(get_num_threads=lambda: 1, set_num_threads=lambda n: None, **ops)


def _small(dtype):
    return (np.linspace(-1.0, 1.0, 64, dtype=dtype).reshape(8, 8),)


def test_runner_reports_missing_errors_and_wrong_results():
    def broken_torch(x):
        raise RuntimeError("boom")

    def wrong_onnx(inputs):
        from onnx import helper  # noqa: F401 - only reached when onnx is importable

        from tensorops._bench.onnx_models import single_node

        return single_node("Neg")(inputs)  # declared as relu but computes -x

    cases = [
        Case("absent", "fake", _small, op("not_written_yet"), numpy=op("abs"), bytes_moved=lambda i: 2 * i[0].nbytes),
        Case("wrong", "fake", _small, op("bad_relu"), torch=op("relu"), numpy=lambda x: np.maximum(x, 0), onnx=wrong_onnx),
        Case("raises", "fake", _small, op("good_relu"), torch=broken_torch, numpy=op("no_such_numpy_function")),
    ]
    libs = Libraries()
    libs.tensorops = _fake_tensorops(bad_relu=lambda x: x, good_relu=lambda x: np.maximum(x, 0))
    entries = run_cases(cases, Settings(threads=(1,), min_repeat=1, min_time=0.0), libs, progress=lambda line: None)
    absent, wrong, raises = (e["runs"][0] for e in entries)

    assert absent["results"]["tensorops"] == {"status": "n/a", "reason": "tensorops.not_written_yet does not exist yet"}
    assert absent["results"]["numpy"]["status"] == "ok" and absent["ratios"]["numpy"] is None
    assert absent["results"]["onnxruntime"]["status"] == "n/a" and "copy" in absent
    assert "checks" not in absent or "tensorops" not in absent["checks"]

    assert not wrong["checks"]["tensorops"]["ok"]
    assert wrong["checks"]["numpy"]["ok"]
    if wrong["results"]["onnxruntime"]["status"] == "ok":
        assert not wrong["checks"]["onnxruntime"]["ok"]
    assert entries[1]["unit"] == "us/call" and "copy" not in wrong

    assert raises["results"]["torch"] == {"status": "error", "reason": "RuntimeError: boom"}
    assert raises["results"]["numpy"]["status"] == "error" and "no_such_numpy_function" in raises["results"]["numpy"]["reason"]
    assert "check_reference" not in raises  # no peer ran, so nothing to compare with

    reported = {(case, who) for case, _, who, _ in errors_in(entries)}
    assert ("wrong", "tensorops") in reported and ("raises", "torch") in reported and ("raises", "numpy") in reported
    assert not any(case == "absent" for case, _ in reported)

    table = format_tables(entries, "float32")
    assert "== fake (float32) ==" in table and "WRONG" in table and "ERROR" in table and "n/a" in table
    assert "tensorops n/a: tensorops.not_written_yet does not exist yet" in table


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    run = {
        "threads": 1,
        "results": {"tensorops": {"status": "ok", "median_s": 1.0}},
        "ratios": {"numpy": 2.0, "torch": 0.5, "onnxruntime": None},
    }
    missing = {"threads": 1, "results": {"tensorops": {"status": "n/a"}}, "ratios": dict.fromkeys(PEERS)}
    path = tmp_path / "ratios.png"
    plot_ratios([{"name": "a", "runs": [run]}, {"name": "b", "runs": [missing]}], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_busy_warning_only_when_others_compete():
    from tensorops.__main__ import _busy_warning

    assert _busy_warning([0.1, 0.1, 0.1], [2.2, 1.0, 0.5], cores=2) is None  # only this run's threads
    assert "other processes competed" in _busy_warning([1.5, 1.0, 0.5], [2.0, 1.0, 0.5], cores=2)
    assert _busy_warning([0.1, 0.1, 0.1], [3.9, 2.0, 1.0], cores=2) is not None
    assert _busy_warning(None, None, cores=2) is None
