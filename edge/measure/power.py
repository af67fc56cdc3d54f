"""Power-sampling energy meters: hwmon sensors (INA219/226/260...), the Raspberry Pi 5 PMIC,
and an external power log (CSV).

These sources give power, not energy: a sampler thread reads watts every
``interval_s`` and integrates them (trapezoid rule) in constant memory, so a
meter can run for days. All paths come from the env-overridable sysfs root of
:mod:`edge.measure.energy`; ``vcgencmd`` is found on ``PATH``.
"""

from __future__ import annotations

import csv
import re
import threading
import time
from pathlib import Path
from typing import Callable

from edge.errors import HybridEdgeError
from edge.measure import energy
from edge.measure.energy import EnergyReading

#: hwmon driver names of current/power monitor chips (what ``--meter ina219`` accepts)
INA_DRIVERS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina238", "ina260", "ina3221")


class SampledMeter:
    """Integrates a power reading (watts) sampled in a background thread."""

    def __init__(self, name: str, read_watts: Callable[[], float], interval_s: float = 0.05):
        self.name = name
        self.read_watts = read_watts
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0
        self._error: HybridEdgeError | None = None

    def _sample(self) -> None:
        now, watts = time.perf_counter(), self.read_watts()
        with self._lock:
            self._joules += 0.5 * (watts + self._last_w) * (now - self._last_t)
            self._last_t, self._last_w = now, watts
            self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample()
            except HybridEdgeError as exc:  # reported by stop(), not lost
                self._error = exc
                return

    def start(self) -> None:
        if self._thread is not None:  # restarting: end the previous region's sampler first
            self._stop.set()
            self._thread.join()
        self._error = None
        self._joules = 0.0
        self._last_w = self.read_watts()  # fails here, before the measured region, if unreadable
        self._t0 = self._last_t = time.perf_counter()
        self.samples = 1
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"meter:{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> EnergyReading:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        self._sample()
        return EnergyReading(self._joules, self._last_t - self._t0, self.name)


def _read_number(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise HybridEdgeError(f"cannot read {path}: {exc}") from None


class HwmonSensor:
    """One hwmon device that can report power: ``power1_input`` (µW), or
    ``curr1_input`` (mA) × ``in1_input`` (mV) (bus voltage on INA2xx drivers)."""

    def __init__(self, path: Path):
        self.path = path
        self.name = (path / "name").read_text().strip() if (path / "name").is_file() else path.name
        if (path / "power1_input").is_file():
            self.kind = "power"
        elif (path / "curr1_input").is_file() and (path / "in1_input").is_file():
            self.kind = "current*voltage"
        else:
            raise HybridEdgeError(f"{path}: no power1_input or curr1_input + in1_input")

    def watts(self) -> float:
        if self.kind == "power":
            return _read_number(self.path / "power1_input") / 1e6
        return _read_number(self.path / "curr1_input") * _read_number(self.path / "in1_input") / 1e6


def hwmon_sensors(names: tuple[str, ...] | None = None, root: Path | None = None) -> list[HwmonSensor]:
    """hwmon devices that report power, optionally only those whose driver name is in ``names``."""
    root = root or energy.SYSFS / "class" / "hwmon"
    found = []
    for dev in sorted(root.glob("hwmon*")):
        try:
            sensor = HwmonSensor(dev)
        except (HybridEdgeError, OSError):
            continue
        if names is None or sensor.name in names:
            found.append(sensor)
    return found


def hwmon_meter(names: tuple[str, ...] | None = None, label: str = "hwmon", interval_s: float = 0.05) -> SampledMeter:
    """Sum of the power of matching hwmon sensors, sampled and integrated."""
    sensors = hwmon_sensors(names)
    if not sensors:
        which = f" named {', '.join(names)}" if names else ""
        raise HybridEdgeError(f"no hwmon power sensor{which} under {energy.SYSFS / 'class' / 'hwmon'}")
    desc = "+".join(s.name for s in sensors)
    return SampledMeter(f"{label}:{desc}", lambda: sum(s.watts() for s in sensors), interval_s)


_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> float:
    """Total watts from ``vcgencmd pmic_read_adc`` output.

    Lines look like ``VDD_CORE_A current(7)=2.50150000A`` and
    ``VDD_CORE_V volt(15)=0.87170000V``. The ADC channel numbers of a rail's
    current and voltage differ, so rails are paired by name (``VDD_CORE``);
    rails with only a voltage (``EXT5V_V``, ``BATT_V``) carry no power here.
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if not m:
            continue
        rail, unit, _, value = m.groups()
        (amps if unit == "A" else volts)[rail] = float(value)
    rails = amps.keys() & volts.keys()
    if not rails:
        raise HybridEdgeError("vcgencmd pmic_read_adc: no rail with both a current and a voltage (not a Raspberry Pi 5?)")
    return sum(amps[r] * volts[r] for r in rails)


def pmic_meter(interval_s: float = 0.1) -> SampledMeter:
    """Raspberry Pi 5 PMIC rails (sum of V×A), sampled through ``vcgencmd pmic_read_adc``."""
    from edge.measure.board import vcgencmd

    def read() -> float:
        out = vcgencmd("pmic_read_adc")
        if out is None:
            raise HybridEdgeError("vcgencmd pmic_read_adc is not available (Raspberry Pi 5 firmware tool)")
        return parse_pmic_adc(out)

    return SampledMeter("pi5-pmic", read, interval_s)


class CsvPowerLog:
    """An external power log (USB power meter, bench supply), aligned by timestamp.

    The CSV has a header row and one row per sample:

    * ``timestamp`` (or ``time``): Unix time in seconds (float), the same clock as
      this machine's ``time.time()``;
    * power as ``power_w`` (or ``watts``), or ``power_mw``, or ``voltage_v`` and
      ``current_a`` (multiplied).

    The log may still be growing while the run happens: it is read at ``stop``.
    Energy is the trapezoid integral over the measured window, with the power at
    the window edges interpolated; the log must cover the whole window.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"csv:{self.path.name}"
        if not self.path.is_file():
            raise HybridEdgeError(f"{self.path}: power log not found")

    def samples(self) -> list[tuple[float, float]]:
        with open(self.path, newline="") as fh:
            rows = csv.DictReader(fh)
            fields = set(rows.fieldnames or ())
            tkey = "timestamp" if "timestamp" in fields else "time" if "time" in fields else None
            if tkey is None:
                raise HybridEdgeError(f"{self.path}: no 'timestamp' column (have {sorted(fields)})")

            def watts(row: dict[str, str]) -> float:
                if "power_w" in row:
                    return float(row["power_w"])
                if "watts" in row:
                    return float(row["watts"])
                if "power_mw" in row:
                    return float(row["power_mw"]) / 1e3
                return float(row["voltage_v"]) * float(row["current_a"])

            if not fields & {"power_w", "watts", "power_mw"} and not {"voltage_v", "current_a"} <= fields:
                raise HybridEdgeError(f"{self.path}: need power_w, watts, power_mw or voltage_v + current_a columns")
            try:
                out = [(float(r[tkey]), watts(r)) for r in rows]
            except (TypeError, ValueError) as exc:
                raise HybridEdgeError(f"{self.path}: bad row ({exc})") from None
        out.sort()
        return out

    def start(self) -> None:
        self._t0 = time.time()

    def stop(self) -> EnergyReading:
        t0, t1 = self._t0, time.time()
        return EnergyReading(self.integrate(t0, t1), t1 - t0, self.name)

    def integrate(self, t0: float, t1: float) -> float:
        """Joules between Unix times ``t0`` and ``t1``."""
        s = self.samples()
        if len(s) < 2 or s[0][0] > t0 or s[-1][0] < t1:
            span = f"{s[0][0]:.3f}..{s[-1][0]:.3f}" if s else "nothing"
            raise HybridEdgeError(f"{self.path}: log covers {span}, not the run {t0:.3f}..{t1:.3f}")

        def at(t: float) -> float:
            for (ta, pa), (tb, pb) in zip(s, s[1:]):
                if ta <= t <= tb:
                    return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
            raise AssertionError("unreachable: t is inside the log")

        points = [(t0, at(t0))] + [p for p in s if t0 < p[0] < t1] + [(t1, at(t1))]
        return sum(0.5 * (pa + pb) * (tb - ta) for (ta, pa), (tb, pb) in zip(points, points[1:]))
