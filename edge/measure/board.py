"""What machine a measurement ran on: board model, CPU governor, throttling.

Every path is read through the env-overridable roots of :mod:`edge.measure.energy`
(``HYBRID_EDGE_SYSFS``, ``HYBRID_EDGE_PROC``) so tests use fake trees; ``vcgencmd``
is looked up on ``PATH``. Missing facts are simply absent from the result.
"""

from __future__ import annotations

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
    path = energy.SYSFS / "devices" / "system" / "cpu" / "cpu0" / "cpufreq" / "scaling_governor"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


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


def platform_info() -> dict[str, Any]:
    """Board, governor, throttling, machine and CPU count for a report."""
    import os

    info: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    for key, value in (("board", board_model()), ("governor", cpu_governor()), ("throttled", throttling())):
        if value is not None:
            info[key] = value
    return info
