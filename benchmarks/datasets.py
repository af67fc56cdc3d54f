"""Public benchmark data fetched through PyPI only: UEA/UCR ``.ts`` archives.

The ``aeon`` wheel on PyPI carries a few UEA/UCR problems inside it (e.g.
``BasicMotions``: smartwatch accelerometer + gyroscope, 4 activities, 6 dims;
``JapaneseVowels``: 12 dims, variable length; ``PickupGestureWiimoteZ``:
Wii remote gestures, variable length). We download that wheel with
``pip download --no-deps`` (nothing is installed) and extract the ``.ts`` files
into a cache folder, so benchmarks can run ``ucr:<folder>`` without any other
network access.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from edge.errors import DataError

AEON_VERSION = "1.6.0"
_PREFIX = "aeon/datasets/data/"


def cache_dir() -> Path:
    """``$HYBRID_EDGE_CACHE`` or ``~/.cache/hybrid-edge``."""
    return Path(os.environ.get("HYBRID_EDGE_CACHE", Path.home() / ".cache" / "hybrid-edge"))


def _wheel(cache: Path) -> Path:
    wheels = cache / "wheels"
    found = sorted(wheels.glob(f"aeon-{AEON_VERSION}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", f"aeon=={AEON_VERSION}", "--no-deps", "--only-binary=:all:", "-d", str(wheels)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(f"aeon-{AEON_VERSION}-*.whl"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DataError(f"could not download the aeon {AEON_VERSION} wheel from PyPI: {tail[-1] if tail else proc.returncode}")
    return found[0]


def available(cache: Path | None = None) -> list[str]:
    """Problem names shipped in the wheel (downloads it on first use)."""
    with zipfile.ZipFile(_wheel(cache or cache_dir())) as zf:
        return sorted({n[len(_PREFIX):].split("/")[0] for n in zf.namelist() if n.startswith(_PREFIX) and n.endswith("_TRAIN.ts")})


def ucr_archive(name: str, cache: Path | None = None) -> Path:
    """Folder holding ``NAME_TRAIN.ts`` and ``NAME_TEST.ts`` (use as ``ucr:<folder>``).

    Raises:
        DataError: the wheel cannot be fetched or does not ship ``name``.
    """
    cache = cache or cache_dir()
    out = cache / "ucr" / name
    files = [f"{name}_TRAIN.ts", f"{name}_TEST.ts"]
    if all((out / f).is_file() for f in files):
        return out
    wheel = _wheel(cache)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for f in files:
            # problems live in their own folder, except a few variants sharing one (JapaneseVowels_eq)
            member = next((m for m in names if m.startswith(_PREFIX) and m.endswith("/" + f)), None)
            if member is None:
                raise DataError(f"{wheel.name} has no {f}; available: {', '.join(available(cache))}")
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / (f + ".part")
            tmp.write_bytes(zf.read(member))
            tmp.replace(out / f)
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["BasicMotions"]:
        print(ucr_archive(arg))
