"""What a benchmark ran on: CPU, cores, board, governor, throttling, load, library versions.

Board, governor and throttling come from :mod:`edge.measure.board`; the rest
from ``/proc``, ``/sys`` and package metadata. Fields a machine does not expose
are ``None`` rather than guessed.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from edge.measure.board import board_model, cpu_governor, throttling
from edge.measure.energy import PROC, SYSFS

PACKAGES = ("hybrid-edge", "numpy", "ai-edge-litert", "tflite-runtime", "opencv-python-headless", "opencv-python")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def cpu_model() -> str | None:
    """``model name`` (x86) or ``Model``/``Hardware`` (ARM) from /proc/cpuinfo."""
    text = _read(PROC / "cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name") or fields.get("Model") or fields.get("Hardware") or platform.processor() or None


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine, taken now."""
    cpu0 = SYSFS / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    cur = _read(cpu0 / "scaling_cur_freq")
    mx = _read(cpu0 / "cpuinfo_max_freq")
    temp = _read(SYSFS / "class" / "thermal" / "thermal_zone0" / "temp")
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "board_model": board_model(),
        "governor": cpu_governor(),
        "cpu_mhz_now": int(cur) / 1000 if cur else None,
        "cpu_mhz_max": int(mx) / 1000 if mx else None,
        "soc_temp_c": int(temp) / 1000 if temp else None,
        "throttling": throttling(),
        "load_average": list(os.getloadavg()),
        "versions": versions(),
        "executable": sys.executable,
    }
