"""Helpers shared by the deploy tests and benchmarks: signed bundle variants and the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SERVICE = "run --source synthetic:fps=2 --meter estimate:rpi4"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``hybrid-edge ARGS`` in a child process (the real CLI, exit status and one-line errors)."""
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def relist(bundle: Path, name: str) -> None:
    """Update ``name``'s size and sha256 in the manifest (a validly re-made bundle, not a tampered one)."""
    from edge.bundle import sha256_file

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256_file(bundle / name), "size": (bundle / name).stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def signed(src: Path, dest: Path, key: Path, seq: int, *, edit=None) -> Path:
    """A copy of ``src`` (optionally changed by ``edit(path)``) signed with ``key`` at ``seq``."""
    from edge.deploy.sign import sign_bundle

    shutil.copytree(src, dest)
    if edit is not None:
        edit(dest)
    sign_bundle(dest, key, seq)
    return dest


def break_golden(bundle: Path) -> None:
    """Change the golden outputs (the model no longer reproduces them) and re-list the file."""
    with np.load(bundle / "golden.npz") as g:
        arrays = {k: (g[k] + 7 if k.startswith("out_") else g[k]) for k in g.files}
    np.savez(bundle / "golden.npz", **arrays)
    relist(bundle, "golden.npz")


def crash_service(bundle: Path) -> None:
    """Mark the bundle Edge TPU-compiled: it self-tests on the CPU, but ``run`` refuses it without the delegate."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["edgetpu_compiled"] = True
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def stop_services(roots: list[Path]) -> None:
    """Stop every board's service (the supervisors are detached processes)."""
    from edge.board.layout import Layout
    from edge.board.service import BoardConfig, stop

    for root in roots:
        layout = Layout(root)
        stop(layout, BoardConfig.read(layout))


def board_state(root: Path) -> dict:
    """``board status`` as the board's agent computes it (signature and files re-verified now)."""
    from edge.board.agent import status
    from edge.board.layout import Layout

    return status(Layout(root))
