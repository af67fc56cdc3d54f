"""What machine a measurement ran on: CPU, cores, board model, governor, clocks, throttling.

:func:`machine_facts` is the one description of a machine, with one set of keys,
that run summaries and benchmark results both record. Every path is read through
the env-overridable roots of :mod:`edge.measure.energy` (``HYBRID_EDGE_SYSFS``,
``HYBRID_EDGE_PROC``) so tests use fake trees; ``vcgencmd`` is looked up on
``PATH``. Facts a machine does not expose are ``None`` rather than guessed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from edge.measure import energy


def board_model() -> str | None:
    """The device-tree model string (Raspberry Pi, Coral), if any."""
    return energy.board_model()


def cpu_governor() -> str | None:
    """The cpufreq scaling governor of cpu0 (``ondemand``, ``performance``...)."""
    return _read(energy.SYSFS / "devices" / "system" / "cpu" / "cpu0" / "cpufreq" / "scaling_governor")


def vcgencmd(*args: str, timeout_s: float = 2.0) -> str | None:
    """Output of ``vcgencmd ARGS`` (Raspberry Pi firmware tool), or None when absent/failing."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


# bit -> meaning of ``vcgencmd get_throttled`` (Raspberry Pi documentation)
THROTTLE_BITS = {
    0: "under-voltage", 1: "arm frequency capped", 2: "throttled", 3: "soft temperature limit",
    16: "under-voltage occurred", 17: "arm frequency capping occurred", 18: "throttling occurred",
    19: "soft temperature limit occurred",
}


def throttling() -> dict[str, Any] | None:
    """``vcgencmd get_throttled`` (``throttled=0x50000``) decoded, or None off a Pi."""
    out = vcgencmd("get_throttled")
    if not out or "=" not in out:
        return None
    raw = out.strip().split("=", 1)[1]
    try:
        value = int(raw, 16)
    except ValueError:
        return None
    return {"raw": raw, "flags": [name for bit, name in THROTTLE_BITS.items() if value >> bit & 1]}


def _read(path: Any) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def cpu_model() -> str | None:
    """``model name`` (x86) or ``Model``/``Hardware`` (ARM) from /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in (_read(energy.PROC / "cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name") or fields.get("Model") or fields.get("Hardware") or platform.processor() or None


def machine_facts() -> dict[str, Any]:
    """A JSON-ready description of this machine, taken now."""
    cpu0 = energy.SYSFS / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    cur, mx = _read(cpu0 / "scaling_cur_freq"), _read(cpu0 / "cpuinfo_max_freq")
    temp = _read(energy.SYSFS / "class" / "thermal" / "thermal_zone0" / "temp")
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
    }


def format_facts(facts: dict[str, Any]) -> str:
    """``machine x86_64, cpus 2`` plus board, governor and throttling flags where known."""
    parts = [f"machine {facts['machine']}", f"cpus {facts['cores']}"]
    parts += [f"{label} {facts[key]}" for key, label in (("board_model", "board"), ("governor", "governor")) if facts.get(key)]
    if facts.get("throttling"):
        parts.append(f"throttled {facts['throttling']['raw']}")
    return ", ".join(parts)
