"""Power meters on fake sysfs trees and a fake ``vcgencmd`` printing the real formats."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from edge.errors import HybridEdgeError
from edge.measure import board, energy, power

# captured `vcgencmd pmic_read_adc` layout of a Raspberry Pi 5 (values shortened)
PMIC_OUTPUT = """\
 3V7_WL_SW_A current(0)=0.10000000A
   3V3_SYS_A current(1)=0.20000000A
  VDD_CORE_A current(7)=2.50150000A
 3V7_WL_SW_V volt(8)=3.70000000V
   3V3_SYS_V volt(9)=3.30000000V
  VDD_CORE_V volt(15)=0.87170000V
     EXT5V_V volt(24)=5.10000000V
      BATT_V volt(25)=0.00000000V
"""
PMIC_WATTS = 0.1 * 3.7 + 0.2 * 3.3 + 2.5015 * 0.8717


def _hwmon(root: Path, index: int, name: str, **files: int) -> Path:
    dev = root / "class" / "hwmon" / f"hwmon{index}"
    dev.mkdir(parents=True)
    (dev / "name").write_text(name + "\n")
    for fname, value in files.items():
        (dev / fname).write_text(f"{value}\n")
    return dev


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(energy, "SYSFS", tmp_path)
    _hwmon(tmp_path, 0, "coretemp", temp1_input=45000)  # no power: ignored
    return tmp_path


@pytest.fixture
def fake_vcgencmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "vcgencmd"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  pmic_read_adc) cat <<'EOF'\n{PMIC_OUTPUT}EOF\n;;\n"
        "  get_throttled) echo throttled=0x50005 ;;\n"
        '  *) echo "error=1 error_msg=\\"Command not registered\\""; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return script


def test_hwmon_power_input_in_microwatts(sysfs: Path) -> None:
    _hwmon(sysfs, 1, "ina260", power1_input=2_500_000)
    meter = energy.make_meter("hwmon")
    assert meter.name == "hwmon:ina260"
    meter.start()
    time.sleep(0.15)
    reading = meter.stop()
    assert reading.watts == pytest.approx(2.5)
    assert reading.joules == pytest.approx(2.5 * reading.seconds)
    assert not reading.estimated


def test_ina219_current_times_voltage_and_changing_power(sysfs: Path) -> None:
    _hwmon(sysfs, 1, "acpi_power", power1_input=9_000_000)  # hwmon but not an INA: excluded by ina219
    dev = _hwmon(sysfs, 2, "ina219", curr1_input=500, in1_input=5000, in0_input=12)  # 0.5 A x 5 V
    meter = energy.make_meter("ina219")
    assert meter.name == "ina219:ina219"
    meter.interval_s = 0.01
    meter.start()
    time.sleep(0.2)
    # a sysfs attribute changes atomically (a reader never sees it half written): rename a new file over it
    (dev / "curr1_input.new").write_text("1000\n")  # 5 W now
    os.replace(dev / "curr1_input.new", dev / "curr1_input")
    time.sleep(0.2)
    reading = meter.stop()
    assert 2.5 < reading.watts < 5.0
    assert meter.samples > 10
    assert energy.make_meter("hwmon").name == "hwmon:acpi_power+ina219"


def test_no_power_sensor_is_a_clear_error(sysfs: Path) -> None:
    with pytest.raises(HybridEdgeError, match="no hwmon power sensor named"):
        energy.make_meter("ina219")


def test_pmic_parser_pairs_rails_by_name() -> None:
    assert power.parse_pmic_adc(PMIC_OUTPUT) == pytest.approx(PMIC_WATTS)
    with pytest.raises(HybridEdgeError, match="no rail"):
        power.parse_pmic_adc('error=1 error_msg="Command not registered"\n')


def test_pi5_pmic_meter_with_fake_vcgencmd(fake_vcgencmd: Path) -> None:
    meter = energy.make_meter("pi5-pmic")
    meter.start()
    time.sleep(0.25)
    reading = meter.stop()
    assert reading.source == "pi5-pmic"
    assert reading.watts == pytest.approx(PMIC_WATTS)


def test_throttling_and_board_facts(fake_vcgencmd: Path, sysfs: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    t = board.throttling()
    assert t == {"raw": "0x50005", "flags": ["under-voltage", "throttled", "under-voltage occurred", "throttling occurred"]}
    gov = sysfs / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    gov.mkdir(parents=True)
    (gov / "scaling_governor").write_text("ondemand\n")
    proc = tmp_path / "proc"
    (proc / "device-tree").mkdir(parents=True)
    (proc / "device-tree" / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    monkeypatch.setattr(energy, "PROC", proc)
    (proc / "cpuinfo").write_text("processor\t: 0\nHardware\t: BCM2712\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n")
    info = board.machine_facts()
    assert info["board_model"] == "Raspberry Pi 5 Model B Rev 1.0" and info["cpu_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert info["governor"] == "ondemand" and info["throttling"]["raw"] == "0x50005"
    assert board.format_facts(info).endswith("cpus %d, board Raspberry Pi 5 Model B Rev 1.0, governor ondemand, throttled 0x50005"
                                             % info["cores"])


def test_csv_power_log_aligned_by_timestamp(tmp_path: Path) -> None:
    log = tmp_path / "power.csv"
    t0 = time.time()
    # a ramp 2 W -> 4 W over the window, sampled every 10 ms, starting before and ending after it
    rows = ["timestamp,voltage_v,current_a"]
    for k in range(-20, 80):
        t = t0 + k * 0.01
        watts = 2.0 + 2.0 * min(max(k, 0), 50) / 50
        rows.append(f"{t:.6f},5.0,{watts / 5.0:.6f}")
    log.write_text("\n".join(rows) + "\n")
    assert energy.make_meter(f"csv:{log}").name == "csv:power.csv"
    meter = power.CsvPowerLog(log)
    joules = meter.integrate(t0, t0 + 0.5)
    assert joules == pytest.approx(0.5 * 3.0, rel=1e-3)  # mean of the ramp is 3 W
    with pytest.raises(HybridEdgeError, match="log covers"):
        meter.integrate(t0, t0 + 5.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("when,watts\n1,2\n")
    with pytest.raises(HybridEdgeError, match="timestamp"):
        power.CsvPowerLog(bad).samples()


def test_auto_prefers_a_real_meter(sysfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert energy.make_meter("auto").name.startswith("estimate:")
    _hwmon(sysfs, 3, "ina226", power1_input=1_000_000)
    meter = energy.make_meter("auto")
    assert meter.name == "ina219:ina226"
