"""Energy meters behind one protocol.

A meter is started and stopped around a measured region and returns joules plus
its own name (``source``). Real meters read hardware counters (Linux powercap
RAPL here; hwmon/INA2xx sensors, the Raspberry Pi 5 PMIC and external CSV logs in
:mod:`edge.measure.power`); when none exists the estimate meter multiplies this
process's CPU time by a per-board power profile and always names itself
``estimate:<profile>``, so an estimate is never mistaken for a measurement.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.errors import HybridEdgeError

SYSFS = Path(os.environ.get("HYBRID_EDGE_SYSFS", "/sys"))
PROC = Path(os.environ.get("HYBRID_EDGE_PROC", "/proc"))


@dataclass(frozen=True)
class EnergyReading:
    """Energy over a measured region."""

    joules: float
    seconds: float
    source: str

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0

    @property
    def estimated(self) -> bool:
        return self.source.startswith("estimate:")


class Meter(Protocol):
    """Start/stop energy measurement. ``name`` says where numbers come from."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...


@dataclass(frozen=True)
class PowerProfile:
    """Incremental power of one fully busy CPU core, per board (an estimate)."""

    name: str
    watts_per_busy_core: float
    note: str


# Per-core increments from published idle vs all-core-load measurements.
PROFILES: dict[str, PowerProfile] = {
    "rpi4": PowerProfile("rpi4", 0.95, "Raspberry Pi 4B: ~2.7 W idle, ~6.4 W with 4 cores busy"),
    "rpi5": PowerProfile("rpi5", 1.25, "Raspberry Pi 5: ~2.7 W idle, ~7.7 W with 4 cores busy"),
    "coral-devboard": PowerProfile("coral-devboard", 0.6, "Coral Dev Board (i.MX 8M, 4x A53): ~2.4 W over idle at full CPU load"),
    "x86-tdp": PowerProfile("x86-tdp", 10.0, "x86 desktop/server core: ~10 W per busy core (TDP share)"),
}


class EstimateMeter:
    """Process CPU time x a board's per-core power: an estimate, labelled as one."""

    def __init__(self, profile: str):
        if profile not in PROFILES:
            raise HybridEdgeError(f"unknown power profile {profile!r}; choose one of {', '.join(PROFILES)}")
        self.profile = PROFILES[profile]
        self.name = f"estimate:{profile}"

    def start(self) -> None:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        cpu = time.process_time() - self._cpu0
        wall = time.perf_counter() - self._wall0
        return EnergyReading(cpu * self.profile.watts_per_busy_core, wall, self.name)


class RaplMeter:
    """Linux powercap RAPL package domains (``energy_uj``), wrap-around handled."""

    name = "rapl"

    def __init__(self, root: Path | None = None):
        root = root or SYSFS / "class" / "powercap"
        self.domains = sorted(
            p for p in root.glob("intel-rapl:*") if ":" in p.name and p.name.count(":") == 1 and (p / "energy_uj").exists()
        )
        if not self.domains:
            raise HybridEdgeError(f"no RAPL package domains under {root}")

    @staticmethod
    def _read(path: Path) -> int:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise HybridEdgeError(f"cannot read {path}: {exc}") from None

    def start(self) -> None:
        self._e0 = [self._read(d / "energy_uj") for d in self.domains]
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        total_uj = 0
        for d, e0 in zip(self.domains, self._e0):
            e1 = self._read(d / "energy_uj")
            if e1 < e0:  # counter wrapped
                e1 += self._read(d / "max_energy_range_uj")
            total_uj += e1 - e0
        return EnergyReading(total_uj / 1e6, time.perf_counter() - self._t0, self.name)


def board_model() -> str | None:
    """The device-tree board model (Raspberry Pi, Coral), if any."""
    path = PROC / "device-tree" / "model"
    try:
        return path.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def default_profile() -> str:
    """Pick the estimate profile that matches this board."""
    model = (board_model() or "").lower()
    if "raspberry pi 5" in model:
        return "rpi5"
    if "raspberry pi" in model:
        return "rpi4"
    if "coral" in model or "phanbell" in model:
        return "coral-devboard"
    machine = platform.machine().lower()
    return "rpi4" if machine in ("aarch64", "armv7l") else "x86-tdp"


METER_SPECS = f"auto, rapl, hwmon, ina219, pi5-pmic, csv:FILE or estimate:PROFILE (PROFILE: {', '.join(PROFILES)})"


def make_meter(spec: str = "auto") -> Meter:
    """Build a meter from its ``--meter`` spec.

    * ``rapl`` — Linux powercap package counters (x86);
    * ``hwmon`` — every hwmon device reporting power (``power1_input``, or current × voltage);
    * ``ina219`` — only INA2xx/INA3221 current monitors among them;
    * ``pi5-pmic`` — Raspberry Pi 5 PMIC rails via ``vcgencmd pmic_read_adc``;
    * ``csv:FILE`` — an external power log aligned by timestamp;
    * ``estimate:PROFILE`` — CPU time × a board profile, labelled ``estimate:``;
    * ``auto`` — the first real meter that reads (rapl, INA2xx, other hwmon power,
      PMIC), else the estimate for this board.

    Real meters are read once here, so a broken one fails before measuring.
    """
    from edge.measure import power

    if spec == "rapl":
        meter: Meter = RaplMeter()
    elif spec == "hwmon":
        meter = power.hwmon_meter()
    elif spec == "ina219":
        meter = power.hwmon_meter(power.INA_DRIVERS, label="ina219")
    elif spec == "pi5-pmic":
        meter = power.pmic_meter()
    elif spec.startswith("csv:"):
        return power.CsvPowerLog(spec[4:])
    elif spec.startswith("estimate:"):
        return EstimateMeter(spec.split(":", 1)[1])
    elif spec == "auto":
        for candidate in ("rapl", "ina219", "hwmon", "pi5-pmic"):
            try:
                return make_meter(candidate)
            except HybridEdgeError:
                continue
        return EstimateMeter(default_profile())
    else:
        raise HybridEdgeError(f"unknown meter {spec!r}; use {METER_SPECS}")
    # fail now, not mid-benchmark, if the counter is unreadable
    meter.read_watts() if isinstance(meter, power.SampledMeter) else meter.start()
    return meter
