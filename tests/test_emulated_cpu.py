"""Every family on CPUs below this machine's, under QEMU's user-mode emulator.

TENSOROPS_ISA caps the kernel set on the machine the tests run on, but it cannot show what
happens on a CPU that lacks the better ISAs: code of the AVX-512 translation units that runs
whatever the cap (a kernel table being built, say) executes there and dies of an illegal
instruction. `qemu-x86_64 -cpu <model>` runs the interpreter on an emulated CPU whose CPUID
offers only that model's features: Haswell (AVX2 and FMA, no AVX-512) and Nehalem (SSE4.2,
no AVX: the generic kernels). Each child calls one op of every family, with shapes that take
the main paths of GEMM and convolution, and its results must match this process's under the
same ISA cap. Skipped where qemu-user is not installed (`apt-get install qemu-user`) or the
machine is not x86-64."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorops as tops

QEMU = shutil.which("qemu-x86_64")
TIMEOUT = 600

pytestmark = [
    pytest.mark.single_isa,
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 emulation of an x86-64 host"),
    pytest.mark.skipif(QEMU is None, reason="qemu-user is not installed (apt-get install qemu-user)"),
    pytest.mark.skipif(bool(os.environ.get("TENSOROPS_SANITIZED")), reason="ASan's shadow memory under QEMU"),
]

# Runs in the emulated child and in this process; writes every result to the .npz it is given.
WORKLOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorops as tops
    import tensorops.nn.functional as F

    def workload():
        rng = np.random.default_rng(7)
        def r(*shape):
            return rng.standard_normal(shape).astype(np.float32)
        x, w3, w1 = r(2, 24, 9, 11), r(32, 24, 3, 3), r(160, 24, 1, 1)
        a, b = r(37, 70), r(70, 45)
        tops.manual_seed(3)
        return {
            "mm_blocked": tops.mm(r(70, 300), r(300, 90)),
            "mm_small_m": tops.mm(r(5, 70), b),
            "mm_one_row": tops.mm(r(1, 70), b),
            "linear": F.linear(a, r(45, 70), r(45)),
            "bmm": tops.bmm(r(3, 16, 8), r(3, 8, 16)),
            "conv3x3": F.conv2d(x, w3, r(32), padding=1),
            "conv1x1_small_plane": F.conv2d(r(2, 64, 2, 2), r(128, 64, 1, 1)),
            "conv1x1": F.conv2d(x, w1),
            "depthwise": F.conv2d(x, r(24, 1, 3, 3), padding=1, groups=24),
            "conv_transpose": F.conv_transpose2d(x, r(24, 16, 3, 3), stride=2),
            "batch_norm_train": F.batch_norm(x, np.zeros(24, np.float32), np.ones(24, np.float32), training=True),
            "layer_norm": F.layer_norm(x, (11,)),
            "group_norm": F.group_norm(x, 4),
            "max_pool": F.max_pool2d(x, 3, 2),
            "avg_pool": F.avg_pool2d(x, 2),
            "sum": tops.sum(x, dim=1),
            "var": tops.var(x, dim=(2, 3)),
            "max_indices": tops.max(x, dim=3)[1],
            "softmax": F.softmax(x, dim=-1),
            "gelu": F.gelu(x),
            "sigmoid": F.sigmoid(x),
            "add_broadcast": tops.add(x, r(24, 1, 1)),
            "embedding": F.embedding(np.arange(9).reshape(3, 3), r(10, 6)),
            "dropout": F.dropout(x, 0.5, training=True),
            "transpose_copy": tops.contiguous(np.swapaxes(x, 1, 3)),
            "cat": tops.cat([x, x[:, :3]], dim=1),
        }

    if __name__ == "__main__":
        results = workload()
        results["isa"] = np.array(tops.cpu_info()["detected_isa"])
        np.savez(sys.argv[1], **results)
""")


@pytest.mark.parametrize("cpu,kernels", [("Haswell", "avx2"), ("Nehalem", "scalar")])
def test_every_family_runs_on_an_emulated_cpu(tmp_path, cpu, kernels):
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    emulated = tmp_path / "emulated.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("TENSOROPS_ISA", None)
    child = subprocess.run([QEMU, "-cpu", cpu, sys.executable, str(script), str(emulated)], capture_output=True,
                           text=True, env=env, timeout=TIMEOUT)
    assert child.returncode == 0, f"{cpu}: exit {child.returncode}\n{child.stderr[-3000:]}"
    got = dict(np.load(emulated))
    assert str(got.pop("isa")) == kernels

    namespace: dict = {}
    exec(compile(WORKLOAD, str(script), "exec"), namespace)
    before = tops.cpu_info()["isa_cap"]
    tops._core.set_isa_cap(kernels)
    try:
        want = namespace["workload"]()
    finally:
        tops._core.set_isa_cap(before)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=f"{cpu}: {name}")
