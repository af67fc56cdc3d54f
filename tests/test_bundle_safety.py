"""Corrupt bundles are refused by the reader and by the CLI with one line, exit != 0."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bundle import read_bundle
from edge.errors import BundleError


@pytest.fixture
def bundle_copy(tiny_bundles: dict[str, Path], tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundles["int8"], dst)
    return dst


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120)


def _assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("hybrid-edge")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_truncated_model_rejected_by_cli(bundle_copy: Path, tiny_clips: Path) -> None:
    model = bundle_copy / "model.tflite"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    _assert_one_line_error(_cli("eval", str(bundle_copy), "--clips", str(tiny_clips)), "truncated or replaced")


def test_flipped_byte_rejected_by_cli(bundle_copy: Path) -> None:
    model = bundle_copy / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0xFF
    model.write_bytes(bytes(data))
    _assert_one_line_error(_cli("inspect", str(bundle_copy)), "sha256 mismatch")


def test_corrupt_model_with_matching_manifest_rejected(bundle_copy: Path) -> None:
    """Even a re-hashed garbage file is caught by the flatbuffer identifier check."""
    model = bundle_copy / "model.tflite"
    model.write_bytes(b"\x00" * 64)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    from edge.bundle import sha256_file

    manifest["files"]["model.tflite"] = {"sha256": sha256_file(model), "size": 64}
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a TFLite flatbuffer"):
        read_bundle(bundle_copy)


def test_missing_manifest_and_bad_json(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(bundle_copy)
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="no manifest.json"):
        read_bundle(bundle_copy)


def test_manifest_spec_mismatch_detected(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["states"][0]["shape"] = [1, 999]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="shape"):
        read_bundle(bundle_copy)


def test_inspect_runs_golden_self_test(tiny_bundles: dict[str, Path]) -> None:
    proc = _cli("inspect", str(tiny_bundles["int8"]))
    assert proc.returncode == 0, proc.stderr
    assert "self-test passed" in proc.stdout
    assert "state_0_h <- output_1" in proc.stdout


def _edit_manifest(bundle: Path, edit) -> None:
    """Change the raw JSON as a hand edit or a foreign writer would (files stay hashed)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m.update(mode="streamin"), "mode: unknown value 'streamin'"),
    (lambda m: m.update(runtime={"delegate": "gpu"}), "runtime.delegate 'gpu'"),
    (lambda m: m["preprocessing"].pop("scale"), "no 'scale'"),
    (lambda m: m.update(input_kind="audio"), "input_kind: unknown value 'audio'"),
    (lambda m: m["states"][0].update(initial="random"), "initial 'random'"),
    (lambda m: m.update(release={"seq": "7"}), "release.seq '7'"),
])
def test_manifest_values_are_checked_at_read_time(bundle_copy: Path, edit, needle: str) -> None:
    _edit_manifest(bundle_copy, edit)
    with pytest.raises(BundleError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        read_bundle(bundle_copy)
    _assert_one_line_error(_cli("inspect", str(bundle_copy)), needle)


def test_unlisted_file_refused_when_strict(bundle_copy: Path) -> None:
    read_bundle(bundle_copy, strict_files=True)
    (bundle_copy / "extra.bin").write_bytes(b"not in the manifest")
    read_bundle(bundle_copy)  # a laptop may keep notes beside a bundle ...
    with pytest.raises(BundleError, match="extra.bin is not listed"):
        read_bundle(bundle_copy, strict_files=True)  # ... a board accepts only what the manifest pins


def test_manifest_round_trips_and_carries_no_host_path(tiny_bundles: dict[str, Path]) -> None:
    from edge.bundle import Manifest, load_manifest

    raw = json.loads((tiny_bundles["int8"] / "manifest.json").read_text())
    assert Manifest.from_manifest(raw).to_manifest() == raw  # every key written is a key read
    text = json.dumps(raw)
    assert str(Path.home()) not in text and "/tmp/" not in text
    assert load_manifest(tiny_bundles["int8"]).preprocessing.channels == 3
