"""What a benchmark ran on: CPU, cores, board, governor, throttling, load, library versions.

Everything is read from ``/proc``, ``/sys`` and package metadata; fields that a
machine does not expose are ``None`` rather than guessed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from edge.measure.energy import PROC, SYSFS, board_model

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


def throttling() -> dict[str, Any] | None:
    """Raspberry Pi firmware throttle flags (``get_throttled``), when available."""
    raw = _read(SYSFS / "devices" / "platform" / "soc" / "soc:firmware" / "get_throttled")
    if raw is None and shutil.which("vcgencmd"):
        proc = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
        raw = proc.stdout.strip().partition("=")[2] or None
    if raw is None:
        return None
    value = int(raw, 16) if raw.startswith("0x") else int(raw, 16 if any(c in raw for c in "abcdef") else 10)
    return {"raw": hex(value), "throttled_now": bool(value & 0x4), "under_voltage_now": bool(value & 0x1),
            "throttled_since_boot": bool(value & 0x40000)}


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
        "governor": _read(cpu0 / "scaling_governor"),
        "cpu_mhz_now": int(cur) / 1000 if cur else None,
        "cpu_mhz_max": int(mx) / 1000 if mx else None,
        "soc_temp_c": int(temp) / 1000 if temp else None,
        "throttling": throttling(),
        "load_average": list(os.getloadavg()),
        "versions": versions(),
        "executable": sys.executable,
    }
