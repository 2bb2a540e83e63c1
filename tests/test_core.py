"""The foundation: CPU detection and the ISA cap, threads, interop with array-likes and
torch tensors, the error classes, and the shared argument helpers."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import tensorops as tops
from tensorops import _core, _validate
from reference import assert_close, randn

ENV = dict(os.environ)


def run_python(code: str, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, **env}, timeout=120)


# ---- cpu_info and the ISA cap ----------------------------------------------------------------

@pytest.mark.single_isa
def test_cpu_info_keys():
    info = tops.cpu_info()
    assert info["isa"] in ("scalar", "avx2", "avx512")
    assert info["num_threads"] == tops.get_num_threads()
    assert isinstance(info["features"], list)
    assert info["detected_isa"] in ("scalar", "avx2", "avx512")
    # 0 where the C library cannot tell; otherwise a plausible per-core L2 (64 KiB .. 64 MiB).
    l2 = info["l2_cache_bytes"]
    assert l2 == 0 or (1 << 16) <= l2 <= (1 << 26)


def test_cap_follows_fixture(isa):
    assert _core.active_isa() == isa
    assert tops.cpu_info()["isa_token"] == isa


@pytest.mark.single_isa
@pytest.mark.parametrize("value,expected", [("scalar", "scalar"), ("generic", "scalar"), ("avx2", "avx2"),
                                            ("x86_avx2", "avx2"), ("AVX512", "avx512")])
def test_isa_environment_caps_kernels(value, expected):
    order = ["scalar", "avx2", "avx512"]
    detected = tops.cpu_info()["detected_isa"]
    want = order[min(order.index(expected), order.index(detected))]
    r = run_python("import tensorops; print(tensorops.cpu_info()['isa'])", TENSOROPS_ISA=value)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want


@pytest.mark.single_isa
def test_l2_cache_environment():
    detected = tops._core.detected_l2_cache_bytes()
    assert tops.cpu_info()["l2_cache_bytes"] == detected
    r = run_python("import tensorops; print(tensorops.cpu_info()['l2_cache_bytes'])", TENSOROPS_L2_CACHE_BYTES="1536000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1536000"
    r = run_python("import tensorops; print(tensorops.cpu_info()['l2_cache_bytes'])", TENSOROPS_L2_CACHE_BYTES="0")
    assert r.stdout.strip() == str(detected)
    for bad in ("-1", "512K", "x", "1_000", "99999999999999999999"):
        r = run_python("import tensorops", TENSOROPS_L2_CACHE_BYTES=bad)
        assert r.returncode != 0
        assert f"TENSOROPS_L2_CACHE_BYTES: expected a number of bytes from 0 to {2**63 - 1}, got '{bad}'" in r.stderr
    with pytest.raises(ValueError, match="expected a number of bytes >= 0, got -5"):
        tops._core.set_l2_cache_bytes(-5)


@pytest.mark.single_isa
def test_unknown_isa_is_an_import_error():
    r = run_python("import tensorops", TENSOROPS_ISA="sse9")
    assert r.returncode != 0
    assert "TENSOROPS_ISA: unknown ISA 'sse9'" in r.stderr


# ---- threads -----------------------------------------------------------------------------

@pytest.mark.single_isa
def test_set_and_get_num_threads():
    before = tops.get_num_threads()
    try:
        tops.set_num_threads(1)
        assert tops.get_num_threads() == 1
        tops.set_num_threads(3)
        assert tops.get_num_threads() == 3
    finally:
        tops.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads: expected a positive number of threads, got 0"):
        tops.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads: expected an int, got float"):
        tops.set_num_threads(2.0)
    with pytest.raises(TypeError, match="set_num_threads: expected an int, got bool"):
        tops.set_num_threads(True)
    with pytest.raises(ValueError, match="more than a process can start"):
        tops.set_num_threads(2**40)
    try:
        tops.set_num_threads(np.int64(2))  # NumPy integers are ints to torch too
        assert tops.get_num_threads() == 2
    finally:
        tops.set_num_threads(before)


@pytest.mark.single_isa
def test_tensors_numpy_cannot_hold_are_refused_naming_the_op():
    """A bfloat16 tensor or a conjugate view: a TypeError naming the op and the dtype."""
    for x in (torch.ones(3, dtype=torch.bfloat16), torch.ones(3, dtype=torch.complex64).conj()):
        with pytest.raises(TypeError, match=f"relu: cannot read argument 'input' of type Tensor of dtype {x.dtype}"):
            tops.relu(x)


@pytest.mark.single_isa
def test_default_threads_respect_omp_num_threads():
    r = run_python("import tensorops; print(tensorops.get_num_threads())", OMP_NUM_THREADS="3")
    assert r.stdout.strip() == "3", r.stderr
    env = {k: v for k, v in ENV.items() if k != "OMP_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", "import os, tensorops; print(tensorops.get_num_threads(), len(os.sched_getaffinity(0)))"],
                       capture_output=True, text=True, env=env, timeout=120)
    ours, cores = r.stdout.split()
    assert ours == cores


@pytest.mark.single_isa
def test_threadpoolctl_sees_and_limits_tensorops():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = tops.get_num_threads()
    info = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "tensorops"]
    assert len(info) == 1 and info[0]["num_threads"] == before
    with threadpoolctl.threadpool_limits(1):
        assert tops.get_num_threads() == 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="tensorops"):
        assert tops.get_num_threads() == 1
    assert tops.get_num_threads() == before


def test_results_identical_for_any_thread_count():
    x = randn((3, 1 << 16), np.float32)
    before = tops.get_num_threads()
    try:
        tops.set_num_threads(1)
        one = tops.relu(x)
        tops.set_num_threads(2)
        two = tops.relu(x)
    finally:
        tops.set_num_threads(before)
    assert one.tobytes() == two.tobytes()


def test_concurrent_python_threads_give_serial_results():
    inputs = [randn((257, 129), np.float32, seed=i) for i in range(8)]
    expected = [tops.relu(x) for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            results[i] = tops.relu(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert np.array_equal(got, want)


# ---- interop -------------------------------------------------------------------------------

def test_torch_tensors_are_read_zero_copy():
    t = torch.randn(5, 7)
    a = _validate.as_array(t, "op")
    assert np.shares_memory(a, t.numpy())
    assert_close(tops.relu(t), torch.relu(t))


def test_torch_tensor_that_requires_grad_and_views():
    t = torch.randn(4, 6, requires_grad=True)
    assert_close(tops.relu(t), torch.relu(t.detach()))
    v = torch.randn(6, 4).t()  # non-contiguous torch view
    assert_close(tops.relu(v), torch.relu(v))


def test_torch_tensor_with_the_negative_bit_is_read_with_its_sign():
    """z.conj().imag is a lazily negated view: its memory holds the values' negatives."""
    y = torch.tensor([1 + 2j, 3 - 4j, -5 + 0.5j]).conj().imag
    assert y.is_neg()
    assert_close(tops.add(y, 0.0), y.resolve_neg())
    assert_close(tops.sum(y), torch.sum(y))
    assert_close(tops.relu(y), torch.relu(y))


def test_buffer_protocol_array_interface_and_lists():
    class HasArray:
        def __array__(self, dtype=None, copy=None):
            return np.arange(6, dtype=np.float64).reshape(2, 3) - 2

    assert_close(tops.relu(HasArray()), torch.relu(torch.arange(6, dtype=torch.float64).reshape(2, 3) - 2))
    assert_close(tops.relu(memoryview(np.array([-1.0, 2.0], np.float32))), torch.tensor([0.0, 2.0]))
    assert_close(tops.relu([-1.5, 2.5]), torch.relu(torch.tensor([-1.5, 2.5], dtype=torch.float64)))


def test_subclass_and_misaligned_strides():
    class Sub(np.ndarray):
        pass

    x = randn((4, 4), np.float32).view(Sub)
    out = tops.relu(x)
    assert type(out) is np.ndarray
    raw = np.zeros(8 * 4 + 1, np.uint8)[1:].view(np.float32)  # unaligned data, aligned strides
    raw[:] = np.arange(8) - 4
    assert_close(tops.relu(raw), torch.relu(torch.from_numpy(raw.copy())))
    rec = np.zeros(5, dtype=[("a", np.float32), ("b", np.int8)])  # stride 5 bytes: copied first
    rec["a"] = [-1, 2, -3, 4, -5]
    assert_close(tops.relu(rec["a"]), torch.relu(torch.tensor([-1.0, 2, -3, 4, -5])))


def test_inputs_are_never_modified():
    x = randn((33, 17), np.float32)
    keep = x.copy()
    tops.relu(x)
    assert np.array_equal(x, keep)


def test_read_only_inputs_are_accepted():
    x = randn((9,), np.float64)
    x.flags.writeable = False
    assert_close(tops.relu(x), torch.relu(torch.from_numpy(x.copy())))


# ---- errors ------------------------------------------------------------------------------

@pytest.mark.single_isa
def test_shape_error_is_value_and_runtime_error():
    assert issubclass(tops.ShapeError, ValueError)
    assert issubclass(tops.ShapeError, RuntimeError)
    assert tops.ShapeError.__module__ == "tensorops"


def test_unsupported_dtype_is_type_error():
    with pytest.raises(TypeError, match='relu: "input" has unsupported dtype int64'):
        tops.relu(np.arange(3))
    with pytest.raises(TypeError, match='relu: "input" has unsupported dtype float16'):
        tops.relu(np.zeros(3, np.float16))
    with pytest.raises(TypeError, match="relu: argument 'input' must be an array-like of numbers, got dict"):
        tops.relu({"a": 1})


def test_out_argument_checks():
    x = randn((4, 5), np.float32)
    out = np.empty((4, 5), np.float32)
    assert tops.relu(x, out=out) is out
    with pytest.raises(tops.ShapeError, match=r"relu: out has shape \[5, 4\], expected \[4, 5\]"):
        tops.relu(x, out=np.empty((5, 4), np.float32))
    with pytest.raises(TypeError, match="relu: out has dtype float64, expected float32"):
        tops.relu(x, out=np.empty((4, 5), np.float64))
    with pytest.raises(tops.ShapeError, match="relu: out must be C-contiguous"):
        tops.relu(x, out=np.empty((5, 4), np.float32).T)
    ro = np.empty((4, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="relu: out is read-only"):
        tops.relu(x, out=ro)


def test_core_refuses_what_python_should_have_caught():
    relu = _core.UNARY_OPS["relu"]
    f32 = np.zeros(3, np.float32)
    with pytest.raises(tops.ShapeError, match="relu: output shape does not match the input shape"):
        _core.unary(relu, f32, np.zeros(4, np.float32), 0.0, 0.0, 0.0)
    with pytest.raises(TypeError, match="relu: operands must share the output dtype float64, got float32"):
        _core.unary(relu, f32, np.zeros(3, np.float64), 0.0, 0.0, 0.0)
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(tops.ShapeError, match="relu: output 'out' is read-only"):
        _core.unary(relu, f32, ro, 0.0, 0.0, 0.0)
    with pytest.raises(tops.ShapeError, match="unary: unknown op"):
        _core.unary(10_000, f32, f32.copy(), 0.0, 0.0, 0.0)


@pytest.mark.single_isa
def test_normalize_dim_matches_torch_wording():
    assert _validate.normalize_dim(-1, 3) == 2
    assert _validate.normalize_dim(0, 0) == 0
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        _validate.normalize_dim(2, 2)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-1, 0\], but got 1"):
        _validate.normalize_dim(1, 0)
    with pytest.raises(tops.ShapeError, match="dim 1 appears multiple times in the list of dims"):
        _validate.normalize_dims((1, -1), 2, "sum")


@pytest.mark.single_isa
def test_broadcast_shapes_matches_torch_wording():
    assert _validate.broadcast_shapes((8, 1, 5), (3, 1)) == (8, 3, 5)
    assert _validate.broadcast_shapes((0, 1), (1, 4)) == (0, 4)
    with pytest.raises(tops.ShapeError) as err:
        _validate.broadcast_shapes((2, 3), (2, 4))
    with pytest.raises(RuntimeError) as torch_err:
        torch.zeros(2, 3) + torch.zeros(2, 4)
    assert str(err.value) == str(torch_err.value)


@pytest.mark.single_isa
def test_forked_child_after_parallel_op_works_single_threaded():
    code = """
import os, sys, numpy as np, tensorops as t
t.set_num_threads(2)
x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
expected = np.maximum(x, 0)
assert np.array_equal(t.relu(x), expected)
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(t.relu(x), expected) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr


# ---- output buffer pool -------------------------------------------------------------------

@pytest.mark.single_isa
def test_large_outputs_come_from_the_pool_and_return_to_it():
    tops.empty_cache()
    assert _core.cache_idle_bytes() == 0
    x = randn((1024, 1024 + 7), np.float32)  # over the 4 MiB threshold
    y = tops.relu(x)
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.aligned
    assert y.ctypes.data % (2 << 20) == 0  # a 2 MiB aligned pool block
    address = y.ctypes.data
    del y
    assert _core.cache_idle_bytes() >= x.nbytes
    z = tops.sigmoid(x)  # same size: the warm block is reused
    assert z.ctypes.data == address
    assert_close(z, torch.sigmoid(torch.from_numpy(x)))
    w = tops.relu(x)  # z still alive: another block
    assert w.ctypes.data != z.ctypes.data
    tops.empty_cache()
    assert _core.cache_idle_bytes() == 0


@pytest.mark.single_isa
def test_small_outputs_and_views_of_pool_blocks():
    small = tops.relu(np.ones(10, np.float32))
    assert small.base is None  # NumPy's own allocation
    big = tops.relu(np.ones((2048, 1024), np.float32))
    view = big[::2]
    del big
    before = _core.cache_idle_bytes()
    view[...] = 3  # the block stays alive (and owned) while a view of it exists
    assert np.all(view == 3)
    del view
    assert _core.cache_idle_bytes() > before


@pytest.mark.single_isa
def test_pool_limit_and_environment():
    limit = _core.cache_limit()
    try:
        _core.set_cache_limit(0)
        y = tops.relu(np.ones((1024, 1024 + 1), np.float32))
        del y
        assert _core.cache_idle_bytes() == 0  # nothing kept with a zero limit
    finally:
        _core.set_cache_limit(limit)
    r = run_python("from tensorops import _core; print(_core.cache_limit())", TENSOROPS_CACHE_MB="64")
    assert r.stdout.strip() == str(64 << 20), r.stderr
    for bad in ("-5", "abc", "1.5", "99999999999999999999"):
        r = run_python("import tensorops", TENSOROPS_CACHE_MB=bad)
        assert r.returncode != 0 and f"TENSOROPS_CACHE_MB: expected a number of MiB from 0 to {2**43}, got '{bad}'" in r.stderr


@pytest.mark.single_isa
def test_output_size_overflow_is_refused_before_allocating():
    with pytest.raises(tops.ShapeError, match="array is too big"):
        _core.empty((1 << 40, 1 << 30), np.dtype(np.float32))
    with pytest.raises(tops.ShapeError, match="negative dimensions are not allowed"):
        _core.empty((-1, 5), np.dtype(np.float32))
