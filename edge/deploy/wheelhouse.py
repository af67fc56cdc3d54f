"""A wheelhouse for boards without internet: this project's wheel plus its runtime dependencies' wheels
for the board's platform and Python, with ``requirements.txt`` locking every file's sha256.

Built on the laptop with ``pip download --only-binary=:all:`` (never sdists: boards have no compilers);
installed on the board by ``board add --wheelhouse`` with ``pip install --no-index --require-hashes``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

from edge.errors import DeployError

#: the board runtime's requirements (setup.cfg install_requires), numpy capped on a line with 3.11 wheels
RUNTIME_REQUIREMENTS = ("numpy>=1.26,<2.4", "ai-edge-litert>=2.3", "opencv-python-headless>=4.8", "tqdm>=4.66")
PLATFORMS = {"linux_aarch64": "aarch64", "linux_x86_64": "x86_64"}
_GLIBC = tuple(range(17, 37))  # manylinux_2_17 ... 2_36: what a Debian bookworm board (glibc 2.36) accepts


def platform_tags(platform: str) -> list[str]:
    arch = PLATFORMS.get(platform)
    if arch is None:
        raise DeployError("E_RUNTIME", f"unknown platform {platform!r} (choose from {', '.join(PLATFORMS)})")
    return ["manylinux2014_" + arch] + [f"manylinux_2_{v}_{arch}" for v in _GLIBC]


def _pip(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DeployError("E_RUNTIME", f"pip {args[0]} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def _wheel_name(path: Path) -> tuple[str, str]:
    name, version = path.name.split("-")[:2]
    return re.sub(r"[-_.]+", "-", name).lower(), version


def lock(out: Path) -> Path:
    """Write ``out/requirements.txt``: one ``name==version --hash=sha256:...`` line per wheel in ``out``."""
    lines = []
    for wheel in sorted(out.glob("*.whl")):
        name, version = _wheel_name(wheel)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={version} --hash=sha256:{digest}\n")
    if not lines:
        raise DeployError("E_RUNTIME", f"{out}: no wheels")
    path = out / "requirements.txt"
    path.write_text("".join(lines))
    return path


def build_wheelhouse(out: Path, platform: str, python: str = "3.11", source: Path | None = None) -> Path:
    """Download the runtime wheels for ``platform``/``python``, build this project's wheel, lock the hashes."""
    out.mkdir(parents=True, exist_ok=True)
    source = source or Path(__file__).resolve().parents[2]
    if not (source / "setup.cfg").is_file():
        raise DeployError("E_RUNTIME", f"{source}: not a hybrid-edge source tree (no setup.cfg) to build the wheel from")
    with tempfile.TemporaryDirectory() as tmp:  # build from a clean copy: no stale build/ in the source tree
        clean = Path(tmp) / "src"
        shutil.copytree(source, clean, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache"))
        _pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(clean)])
    tags = [a for t in platform_tags(platform) for a in ("--platform", t)]
    _pip(["download", "--only-binary=:all:", "--quiet", "--dest", str(out), "--python-version", python,
          "--implementation", "cp", *tags, *RUNTIME_REQUIREMENTS])
    return lock(out)
