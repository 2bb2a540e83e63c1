"""What the machine and the libraries are: ``python -m tensorops info`` and the
``machine`` block of the benchmark JSON."""
from __future__ import annotations

import os
import platform

from .peers import default_thread_counts, optional_import

_VERSIONED = ("numpy", "torch", "onnxruntime", "onnx", "threadpoolctl", "matplotlib")
# Variables that choose a kernel set: tensorops' own, and the peers' caps (torch's ATen
# kernels, MKL, oneDNN, NumPy's OpenBLAS), with which a TENSOROPS_ISA=avx2 run can compare
# like with like (onnxruntime has no such cap and keeps its best kernels).
_ENVIRONMENT = ("OMP_NUM_THREADS", "TENSOROPS_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def machine_info() -> dict:
    import tensorops

    versions = {"tensorops": tensorops.__version__, "python": platform.python_version()}
    for name in _VERSIONED:
        module = optional_import(name)
        versions[name] = getattr(module, "__version__", "unknown") if module is not None else None
    threadpoolctl = optional_import("threadpoolctl")
    pools = threadpoolctl.threadpool_info() if threadpoolctl is not None else None
    return {
        "cpu_info": tensorops.cpu_info(),
        "peer_kernels": peer_kernels(pools),
        "versions": versions,
        "platform": platform.platform(),
        "processor": _cpu_model_name(),
        "cores_available": default_thread_counts()[-1],
        "load_average": load_average(),
        "threadpool_info": pools,
        "environment": {k: os.environ[k] for k in _ENVIRONMENT if k in os.environ},
    }


def peer_kernels(pools) -> dict:
    """The kernel set each peer runs, where it says: torch's ATen CPU capability and the
    core type of NumPy's OpenBLAS (from threadpoolctl), None where unknown."""
    kernels = {"torch": None, "numpy": None}
    torch = optional_import("torch")
    capability = getattr(getattr(getattr(torch, "backends", None), "cpu", None), "get_cpu_capability", None)
    if capability is not None:
        kernels["torch"] = capability()
    for pool in pools or ():
        if pool.get("internal_api") == "openblas" and "numpy" in str(pool.get("filepath", "")):
            kernels["numpy"] = pool.get("architecture")
    return kernels


def format_peer_kernels(kernels: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in kernels.items() if value)


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_info(info: dict) -> str:
    cpu = info["cpu_info"]
    versions = info["versions"]
    lines = [
        f"tensorops {versions['tensorops']} (Python {versions['python']}, {info['platform']})",
        f"CPU:        {info['processor']} ({cpu.get('vendor', '?')}), {info['cores_available']} cores available",
        f"ISA:        in use {cpu['isa']} ({cpu['isa_token']}), detected {cpu['detected_isa']}, cap {cpu['isa_cap']}",
        f"features:   {' '.join(cpu['features']) or '(none)'}",
        f"threads:    {cpu['num_threads']}",
        f"peers:      {format_peer_kernels(info['peer_kernels']) or 'unknown'}",
        f"load:       {info['load_average']}",
    ]
    for key, value in info["environment"].items():
        lines.append(f"env:        {key}={value}")
    lines.append("libraries:  " + ", ".join(f"{name} {version or 'not importable'}" for name, version in versions.items() if name not in ("tensorops", "python")))
    pools = info["threadpool_info"]
    if pools is None:
        lines.append("thread pools: threadpoolctl is not importable")
    else:
        lines.append(f"thread pools (threadpoolctl): {len(pools)}")
        for pool in pools:
            extras = " ".join(f"{k}={v}" for k, v in pool.items() if k not in ("user_api", "internal_api", "num_threads", "version", "filepath"))
            lines.append(
                f"  {pool.get('user_api')}/{pool.get('internal_api')}: {pool.get('num_threads')} threads, "
                f"version {pool.get('version')}{' ' + extras if extras else ''}\n    {pool.get('filepath')}"
            )
    return "\n".join(lines)
