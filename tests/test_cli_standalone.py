"""The runtime CLI stands alone: with TensorFlow, Keras and the host-only packages blocked,
``--help``, ``run``, ``inspect`` and ``eval`` work for real; the host-only commands say which extra
to install in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HOST_ONLY = ("tensorflow", "keras", "training", "converters", "benchmarks")


def _cli(*args: str, blocked: tuple[str, ...] = HOST_ONLY) -> subprocess.CompletedProcess:
    """``hybrid-edge ARGS`` in a fresh interpreter where ``blocked`` modules cannot be imported."""
    code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
            "from edge.cli import main\ncode = main(sys.argv[1:])\n"
            f"loaded = sorted(m for m in {blocked!r} if sys.modules.get(m) is not None)\n"
            "assert not loaded, loaded\nsys.exit(code)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_without_importing_them() -> None:
    from edge.commands import COMMANDS

    proc = _cli("--help")
    assert proc.returncode == 0, proc.stderr
    for name, (_, summary) in COMMANDS.items():
        assert f"  {name}" in proc.stdout and summary in proc.stdout


def test_run_inspect_eval_with_host_packages_blocked(tiny_bundles: dict[str, Path], tiny_clips: Path, tmp_path: Path) -> None:
    bundle = str(tiny_bundles["int8"])
    summary = tmp_path / "summary.json"
    run = _cli("run", bundle, "--source", "synthetic:frames=12", "--policy", "block", "--meter", "estimate:rpi4",
               "--summary-json", str(summary))
    assert run.returncode == 0, run.stderr
    s = json.loads(summary.read_text())
    assert s["frames"] == 12 and s["dropped"] == 0 and s["tensorflow_imported"] is False
    inspect = _cli("inspect", bundle)
    assert inspect.returncode == 0, inspect.stderr
    assert "self-test passed" in inspect.stdout and "sha256 verified" in inspect.stdout
    report = tmp_path / "eval.json"
    ev = _cli("eval", str(tiny_bundles["float32"]), "--clips", str(tiny_clips), "--meter", "estimate:rpi4", "--json", str(report))
    assert ev.returncode == 0, ev.stderr
    r = json.loads(report.read_text())["bundles"][0]
    with np.load(tiny_clips) as data:
        assert r["clips"] == len(data["labels"])  # every test clip was streamed
    # the float32 bundle, streamed frame by frame, decides as the Keras model did on whole clips
    assert r["agreement_with_float"] == 1.0 and r["prob_error"]["max"] < 1e-4


@pytest.mark.parametrize("argv", [
    ["train", "--model", "cnn_lstm", "--dataset", "synthetic-actions", "--out", "x"],
    ["convert", "runs/x", "--precision", "int8"],
    ["quickstart", "--out", "x"],
])
def test_host_commands_without_tensorflow_name_the_extra(argv: list[str]) -> None:
    proc = _cli(*argv, blocked=("tensorflow", "keras"))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'hybrid-edge[train]'" in lines[0] and "Traceback" not in proc.stderr


def test_unknown_command_and_precision_are_one_line() -> None:
    proc = _cli("flash")
    assert proc.returncode == 2 and "unknown command 'flash'" in proc.stderr
    proc = _cli("train", "--model", "nope", "--dataset", "synthetic-actions", "--out", "x", blocked=())
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "nope" in proc.stderr


def test_cli_reference_has_every_command() -> None:
    from benchmarks.docs import cli_reference
    from edge.commands import COMMANDS

    text = cli_reference()
    for name in COMMANDS:
        assert f"## `hybrid-edge {name}`" in text and f"usage: hybrid-edge {name}" in text
