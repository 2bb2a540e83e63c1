"""Concurrency and process hygiene, beyond what tests/test_core.py covers (relu under Python
threads, a plain os.fork child, threadpoolctl): every family's kernels called from many Python
threads at once while other threads change the thread count and the kernel set; torch and
tensorops in one process, imported in either order, each keeping its own thread count;
multiprocessing with the 'fork' start method after parallel work, and a fork taken while
another thread is inside a kernel. Every child process runs under a timeout: a hang fails."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tensorops as tops
import tensorops.nn.functional as F
from tensorops import _core
from reference import randn

TIMEOUT = 120


def run_script(code: str, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    for key, value in env.items():
        if value is None:
            environment.pop(key)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, timeout=TIMEOUT)


def _workload(seed: int) -> list:
    """One call into each family present, on inputs big enough to be split across threads."""
    x = randn((129, 1031), np.float32, seed=seed)
    weight = randn((97, 65), np.float64, seed=seed + 1)
    indices = np.random.default_rng(seed).integers(0, 97, (33, 41))
    return [
        ("relu", lambda: tops.relu(x[:, ::-1])),
        ("transpose copy", lambda: tops.contiguous(x.T)),
        ("reshape copy", lambda: tops.reshape(x[::2].T, (-1,))),
        ("cat", lambda: tops.cat([x, x[::-1], x[:, :7]], dim=1)),
        ("stack", lambda: tops.stack([x.T, x.T], dim=1)),
        ("embedding", lambda: F.embedding(indices, weight)),
    ]


@pytest.mark.single_isa
def test_python_threads_calling_every_family_match_serial_results():
    workloads = [_workload(seed) for seed in range(6)]
    expected = [[fn() for _, fn in w] for w in workloads]
    mismatches = []
    stop = threading.Event()
    before_threads, before_cap = tops.get_num_threads(), _core.isa_cap()
    isas = ["generic", _core.detected_isa()]

    def caller(i):
        for _ in range(15):
            for (name, fn), want in zip(workloads[i], expected[i]):
                got = fn()
                if got.shape != want.shape or got.tobytes() != want.tobytes():
                    mismatches.append((i, name))

    def meddler():
        # Results must not depend on the thread count or the kernel set, even mid-flight.
        k = 0
        while not stop.is_set():
            tops.set_num_threads(1 + k % 2)
            _core.set_isa_cap(isas[k % len(isas)])
            k += 1

    try:
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(workloads))]
        chaos = threading.Thread(target=meddler)
        chaos.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        stop.set()
        chaos.join(TIMEOUT)
        assert not any(t.is_alive() for t in threads), "a thread hung"
    finally:
        tops.set_num_threads(before_threads)
        _core.set_isa_cap(before_cap)
    assert not mismatches, f"results differ from serial ones: {sorted(set(mismatches))}"


@pytest.mark.single_isa
def test_dropout_from_many_threads_draws_disjoint_streams():
    # Each call takes its own stretch of the generator under a lock: with the same seed, the
    # set of masks drawn by N concurrent calls is the set drawn by N serial calls.
    x = np.ones((64, 257), np.float32)
    tops.manual_seed(1234)
    serial = sorted(F.dropout(x, 0.5).tobytes() for _ in range(8))
    tops.manual_seed(1234)
    results = []
    threads = [threading.Thread(target=lambda: results.append(F.dropout(x, 0.5).tobytes())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(results) == serial


_THREAD_COUNTS = """
import os, sys, numpy as np
first = sys.argv[1]
if first == "torch":
    import torch
    torch_default = torch.get_num_threads()
    import tensorops as tops
else:
    import tensorops as tops
    import torch
    torch_default = torch.get_num_threads()
cores = len(os.sched_getaffinity(0))
expected = int(os.environ.get("OMP_NUM_THREADS", cores))
assert tops.get_num_threads() == expected, (tops.get_num_threads(), expected)
x = np.random.default_rng(0).standard_normal((1 << 20,)).astype(np.float32)
t = torch.from_numpy(x)
for _ in range(3):  # both runtimes busy in turn, in one process
    assert np.array_equal(tops.relu(x), torch.relu(t).numpy())
    assert np.array_equal(tops.contiguous(x.reshape(1024, 1024).T), t.reshape(1024, 1024).T.contiguous().numpy())
assert torch.get_num_threads() == torch_default, (torch.get_num_threads(), torch_default)
assert tops.get_num_threads() == expected
tops.set_num_threads(1)
assert torch.get_num_threads() == torch_default
torch.set_num_threads(1)
tops.set_num_threads(2)
assert torch.get_num_threads() == 1 and tops.get_num_threads() == 2
assert np.array_equal(tops.relu(x), torch.relu(t).numpy())
print("ok", torch_default, expected)
"""


@pytest.mark.single_isa
@pytest.mark.parametrize("first", ["torch", "tensorops"])
@pytest.mark.parametrize("omp", [None, "1"])
def test_torch_and_tensorops_keep_their_own_thread_counts(first, omp):
    r = subprocess.run([sys.executable, "-c", _THREAD_COUNTS, first], capture_output=True, text=True, timeout=TIMEOUT,
                       env={**{k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"},
                            **({"OMP_NUM_THREADS": omp} if omp else {})})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")


@pytest.mark.single_isa
def test_multiprocessing_fork_pool_after_parallel_work():
    r = run_script("""
        import multiprocessing as mp, numpy as np, tensorops as tops
        import tensorops.nn.functional as F

        def work(seed):
            x = np.random.default_rng(seed).standard_normal((512, 1031)).astype(np.float32)
            idx = np.arange(300) % 7
            w = np.arange(21, dtype=np.float64).reshape(7, 3)
            return (tops.relu(x).sum(), tops.contiguous(x.T).sum(), F.embedding(idx, w).sum(),
                    tops.get_num_threads())

        if __name__ == "__main__":
            tops.set_num_threads(2)
            expected = [work(s)[:3] for s in range(6)]  # the parent's OpenMP pool is now running
            with mp.get_context("fork").Pool(2) as pool:
                got = pool.map_async(work, range(6)).get(timeout=60)
            assert [g[:3] for g in got] == expected, (got, expected)
            # The parent still runs its kernels on its threads after the children are gone.
            assert work(0)[:3] == expected[0]
            print("ok")
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "ok"


@pytest.mark.single_isa
def test_fork_while_another_thread_is_inside_a_kernel():
    r = run_script("""
        import os, sys, threading, numpy as np, tensorops as tops
        tops.set_num_threads(2)
        x = np.random.default_rng(0).standard_normal((2048, 2049)).astype(np.float32)
        expected = np.maximum(x, 0)
        tops.relu(x)
        busy = threading.Event()
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                busy.set()
                tops.contiguous(x.T)

        t = threading.Thread(target=spin)
        t.start()
        busy.wait()
        statuses = []
        for _ in range(5):  # forks land at random points of the other thread's kernels
            pid = os.fork()
            if pid == 0:
                ok = np.array_equal(tops.relu(x), expected) and np.array_equal(tops.contiguous(x.T), x.T)
                os._exit(0 if ok else 3)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        stop.set()
        t.join()
        print(statuses)
        sys.exit(max(statuses))
    """)
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])


@pytest.mark.single_isa
@pytest.mark.parametrize("first", ["torch", "tensorops"])
def test_fork_after_torch_started_the_shared_openmp_pool(first):
    """torch loads a libgomp of the same soname, so one OpenMP pool serves both: once a torch
    op has started it, a forked child's first parallel tensorops op had waited forever for
    pool threads the child does not have."""
    r = run_script(f"""
        import os, sys, signal
        import {first}
        import numpy as np, torch, tensorops as tops
        torch.set_num_threads(2)
        torch.randn(1000, 1000).exp()
        x = np.random.default_rng(2).standard_normal(1 << 22).astype(np.float32)
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)
            os._exit(0 if np.array_equal(tops.relu(x), np.maximum(x, 0)) else 3)
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])


@pytest.mark.single_isa
def test_grandchild_of_a_fork_still_works():
    r = run_script("""
        import os, sys, numpy as np, tensorops as tops
        tops.set_num_threads(2)
        x = np.random.default_rng(1).standard_normal(1 << 20).astype(np.float32)
        want = np.maximum(x, 0)
        assert np.array_equal(tops.relu(x), want)
        pid = os.fork()
        if pid == 0:
            tops.set_num_threads(2)  # accepted; the child still runs kernels on the calling thread
            inner = os.fork()
            if inner == 0:
                os._exit(0 if np.array_equal(tops.relu(x), want) else 3)
            code = os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1])
            os._exit(code or (0 if np.array_equal(tops.relu(x), want) else 4))
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    assert r.returncode == 0, r.stderr[-3000:]


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.single_isa
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(bool(os.environ.get("TENSOROPS_SANITIZED")),
                    reason="ASan keeps freed memory in quarantine on purpose")
def test_repeated_calls_and_errors_do_not_grow_memory():
    # A reference kept or an exception object leaked per call in the bindings shows up here as
    # megabytes after thousands of calls.
    import gc
    x = randn((64, 65), np.float32)
    weight = randn((10, 8), np.float64)
    indices = np.arange(30) % 10
    calls = [lambda: tops.relu(x), lambda: tops.contiguous(x.T), lambda: tops.cat([x, x]),
             lambda: tops.stack([x, x]), lambda: F.embedding(indices, weight), lambda: F.dropout(x),
             lambda: F.embedding(indices + 20, weight), lambda: tops.cat([x, x[:, :3]]),
             lambda: tops.relu(np.zeros(3, np.int64)), lambda: _core.embedding(indices, weight, np.zeros(3))]
    for call in calls:
        def repeat(n):
            for _ in range(n):
                try:
                    call()
                except (ValueError, TypeError, IndexError, RuntimeError):
                    pass
            gc.collect()
        repeat(500)
        before = _resident_mib()
        repeat(3000)
        assert _resident_mib() - before < 8, "memory grew with repeated calls"
