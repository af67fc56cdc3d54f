"""Energy meters on fake sysfs trees in the real file formats."""

from pathlib import Path

import pytest

from edge.errors import HybridEdgeError
from edge.measure import energy


def _rapl_tree(root: Path, uj: int, max_uj: int = 262143328850) -> Path:
    base = root / "class" / "powercap"
    pkg = base / "intel-rapl:0"
    sub = base / "intel-rapl:0:0"  # a sub-domain (core) must not be double counted
    for d in (pkg, sub):
        d.mkdir(parents=True)
        (d / "name").write_text("package-0\n" if d is pkg else "core\n")
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return base


def test_rapl_reads_package_delta(tmp_path: Path) -> None:
    base = _rapl_tree(tmp_path, 1_000_000)
    meter = energy.RaplMeter(base)
    meter.start()
    (base / "intel-rapl:0" / "energy_uj").write_text("3500000\n")
    reading = meter.stop()
    assert reading.joules == pytest.approx(2.5)
    assert reading.source == "rapl" and not reading.estimated


def test_rapl_handles_wraparound(tmp_path: Path) -> None:
    base = _rapl_tree(tmp_path, 262143000000, max_uj=262143328850)
    meter = energy.RaplMeter(base)
    meter.start()
    (base / "intel-rapl:0" / "energy_uj").write_text("671150\n")
    assert meter.stop().joules == pytest.approx((262143328850 - 262143000000 + 671150) / 1e6)


def test_no_rapl_means_labelled_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "SYSFS", tmp_path)
    with pytest.raises(HybridEdgeError):
        energy.RaplMeter(tmp_path / "class" / "powercap")
    meter = energy.make_meter("auto")
    assert meter.name.startswith("estimate:")
    meter.start()
    sum(i * i for i in range(200_000))  # burn some CPU
    reading = meter.stop()
    assert reading.estimated and reading.joules > 0


def test_board_model_picks_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dt = tmp_path / "device-tree"
    dt.mkdir()
    (dt / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    monkeypatch.setattr(energy, "PROC", tmp_path)
    assert energy.board_model() == "Raspberry Pi 4 Model B Rev 1.4"
    assert energy.default_profile() == "rpi4"
    (dt / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert energy.default_profile() == "rpi5"


def test_unknown_meter_and_profile_are_clear_errors() -> None:
    with pytest.raises(HybridEdgeError, match="unknown meter"):
        energy.make_meter("joulescope")
    with pytest.raises(HybridEdgeError, match="unknown power profile"):
        energy.make_meter("estimate:toaster")
