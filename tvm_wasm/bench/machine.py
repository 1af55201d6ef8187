"""What the numbers were measured on: CPU, caches, cores, memory, OS, package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("tvm-wasm", "wasmtime", "numpy", "rich", "matplotlib")


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False,
                             env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _cpuinfo_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    cpu = _lscpu()
    caches = {k: cpu[k] for k in ("L1d cache", "L1i cache", "L2 cache", "L3 cache") if k in cpu}
    return {
        "cpu_model": cpu.get("Model name") or _cpuinfo_model() or platform.processor() or "unknown",
        "cpu_vendor": cpu.get("Vendor ID"),
        "cpu_family_model_stepping": "/".join(cpu.get(k, "?") for k in ("CPU family", "Model", "Stepping")),
        "cpu_simd": [f for f in ("sse4_2", "avx", "avx2", "avx512f", "bmi2") if f in cpu.get("Flags", "").split()],
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "cores_per_socket": cpu.get("Core(s) per socket"),
        "threads_per_core": cpu.get("Thread(s) per core"),
        "caches": caches,
        "hypervisor": cpu.get("Hypervisor vendor"),
        "memory_bytes": _memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    from .native_c import compiler_version

    out["cc"] = compiler_version()
    return out
