"""Where a run ran: the fingerprint every results.json carries (docs/results.md names each table's machine)."""

import os
from typing import Any


def describe() -> dict[str, Any]:
    """Where a run ran, for results.json and the results tables (docs/results.md)."""
    import platform

    import jax

    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
            "device_count": len(devices), "host_cpus": os.cpu_count(), "cpu_model": _cpu_model(),
            "processor": platform.processor() or platform.machine(), "jax": jax.__version__}


def _cpu_model() -> str:
    """The CPU's name and its widest vector extension: machines of the same name differ (AVX2, AVX-512)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({widest}{', AMX' if 'amx_tile' in flags else ''})"
