"""``hybrid-edge run`` end to end in a subprocess: real videos, image dirs, stdin, logs, resets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import read_bundle
from edge.run import RunOptions, open_session, run_stream
from edge.smoothing import EmaSmoothing, VoteSmoothing, make_smoother
from edge.errors import HybridEdgeError
from edge.sources import STDIN_HEADER, FrameSource, SourceOptions, make_reader
from test_sources import write_video


def _run(bundle: Path, *args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "run", str(bundle), *args], input=stdin,
                          capture_output=True, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.startswith("hybrid-edge")]
    assert len(lines) == 1 and needle in lines[0], err


@pytest.mark.parametrize("fourcc,suffix", [("MJPG", ".avi"), ("mp4v", ".mp4")])
def test_video_file_end_to_end(tiny_bundles: dict[str, Path], tmp_path: Path, fourcc: str, suffix: str) -> None:
    video = write_video(tmp_path / f"clip{suffix}", fourcc, frames=30, size=(36, 48))  # resized to 24x24 by the manifest
    log = tmp_path / "log.jsonl"
    summary = tmp_path / "summary.json"
    proc = _run(tiny_bundles["int8"], "--source", str(video), "--json-log", str(log), "--summary-json", str(summary),
                "--meter", "estimate:rpi4")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "frames 30 in" in out and "estimate:rpi4" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(30))
    first = records[0]
    assert set(first) == {"frame", "timestamp", "label", "index", "score", "reset", "latency_ms", "dropped"}
    assert set(first["latency_ms"]) == {"capture", "queue", "preprocess", "invoke", "postprocess", "end_to_end"}
    assert records[-1]["timestamp"] == pytest.approx(29 / 12.0, abs=1e-3)
    labels = read_bundle(tiny_bundles["int8"]).labels
    # the score is the top probability: at least 1/K (less one int8 step), at most 1
    assert all(r["label"] == labels[r["index"]] and 1 / len(labels) - 1 / 256 <= r["score"] <= 1.0 and r["dropped"] == 0
               for r in records)
    # one printed line per decision change
    changes = sum(1 for a, b in zip([None] + records, records) if a is None or a["index"] != b["index"])
    assert sum(1 for l in out.splitlines() if l.strip().endswith(")") and " frame " in l) == changes
    s = json.loads(summary.read_text())
    assert s["frames"] == 30 and s["latency_ms"]["invoke"]["count"] == 25  # 5 warm-up frames excluded
    assert s["energy"]["estimated"] and s["energy"]["mj_per_frame"] > 0


def test_corrupt_video_fails_cleanly(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", "MJPG", frames=30)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.8)])
    _one_line_error(_run(tiny_bundles["int8"], "--source", str(video), timeout=60), "truncated or corrupt")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 40)
    _one_line_error(_run(tiny_bundles["int8"], "--source", str(garbage), timeout=60), "cannot open video")


def test_image_dir_and_stdin_sources(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    import cv2

    for i in range(7):
        cv2.imwrite(str(tmp_path / f"{i:04d}.jpg"), np.full((30, 30, 3), 30 * i, np.uint8))
    proc = _run(tiny_bundles["int8"], "--source", str(tmp_path))
    assert proc.returncode == 0 and "frames 7 in" in proc.stdout.decode(), proc.stderr.decode()
    raw = np.random.default_rng(1).integers(0, 256, (9, 24, 24, 3), dtype=np.uint8).tobytes()
    proc = _run(tiny_bundles["int8"], "--source", "-", stdin=raw)
    assert proc.returncode == 0 and "frames 9 in" in proc.stdout.decode(), proc.stderr.decode()
    _one_line_error(_run(tiny_bundles["int8"], "--source", "-", stdin=raw[:-100]), "stream ended inside a frame")


def test_timestamp_gap_resets_state(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    frames = np.random.default_rng(2).integers(0, 256, (8, 24, 24, 3), dtype=np.uint8)
    stamps = [1.0, 1.04, 1.08, 1.12, 3.0, 3.04, 3.08, 3.12]  # a 1.9 s hole after frame 3
    payload = b"".join(STDIN_HEADER.pack(b"HEF1", 24, 24, 3, t) + f.tobytes() for t, f in zip(stamps, frames))
    log = tmp_path / "gap.jsonl"
    proc = _run(tiny_bundles["int8"], "--source", "stdin:framed", "--reset-gap-ms", "500", "--json-log", str(log), stdin=payload)
    assert proc.returncode == 0, proc.stderr.decode()
    records = [json.loads(l) for l in log.read_text().splitlines()]
    assert [r["reset"] for r in records] == [False] * 4 + [True] + [False] * 3
    assert "resets 1," in proc.stdout.decode()
    # after the reset the stream behaves like a fresh one: same decisions as frames 4.. alone
    fresh = tmp_path / "fresh.jsonl"
    payload2 = b"".join(STDIN_HEADER.pack(b"HEF1", 24, 24, 3, t) + f.tobytes() for t, f in zip(stamps[4:], frames[4:]))
    assert _run(tiny_bundles["int8"], "--source", "stdin:framed", "--json-log", str(fresh), stdin=payload2).returncode == 0
    tail = [(r["index"], r["score"]) for r in records[4:]]
    assert tail == [(r["index"], r["score"]) for r in map(json.loads, fresh.read_text().splitlines())]


def test_reconnect_resets_session(tiny_bundles: dict[str, Path]) -> None:
    session = open_session(tiny_bundles["int8"], RunOptions())
    opts = SourceOptions(policy="block", backoff_s=(0.01, 0.02))
    with FrameSource(make_reader("synthetic:frames=12,fail_every=4,size=24x24"), opts) as src:
        summary = run_stream(session, src, RunOptions(warmup=0, meter="estimate:rpi5"))
    assert summary["reconnects"] == 2 and summary["resets"] == 2 and summary["frames"] == 12


def test_smoothing() -> None:
    ema = EmaSmoothing(0.5)
    p = [np.array([0.9, 0.1], np.float32), np.array([0.2, 0.8], np.float32), np.array([0.2, 0.8], np.float32)]
    assert ema.update(p[0], 0, 0.9) == (0, pytest.approx(0.9))
    assert ema.update(p[1], 1, 0.8) == (0, pytest.approx(0.55))  # 0.5*0.9 + 0.5*0.2
    idx, score = ema.update(p[2], 1, 0.8)
    assert idx == 1 and score == pytest.approx(0.5 * 0.45 + 0.5 * 0.8)
    ema.reset()
    assert ema.update(p[1], 1, 0.8) == (1, pytest.approx(0.8))
    vote = VoteSmoothing(3)
    got = [vote.update(np.zeros(3), i, 1.0) for i in (0, 1, 1, 2, 2, 2)]
    assert [g[0] for g in got] == [0, 1, 1, 1, 2, 2]
    assert got[-1][1] == pytest.approx(1.0) and got[2][1] == pytest.approx(2 / 3)
    for bad in ("ema:1.5", "vote:0", "median:3", "ema:x"):
        with pytest.raises(HybridEdgeError):
            make_smoother(bad)


def test_smoothing_reduces_decision_flips(tiny_bundles: dict[str, Path]) -> None:
    """A voting window never changes its decision more often than the raw argmax does."""
    import io

    session = open_session(tiny_bundles["float32"], RunOptions())
    counts = {}
    for smooth in (None, "vote:5"):
        session.reset()
        buf = io.StringIO()
        with FrameSource(make_reader("synthetic:frames=200,size=24x24,seed=4"), SourceOptions(policy="block")) as src:
            run_stream(session, src, RunOptions(smooth=smooth, meter="estimate:rpi4"), out=buf)
        counts[smooth] = len(buf.getvalue().splitlines())
    assert 1 <= counts["vote:5"] <= counts[None]


def test_edgetpu_missing_and_required(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    proc = _run(tiny_bundles["int8"], "--source", "synthetic:frames=3,size=24x24", "--delegate", "edgetpu")
    _one_line_error(proc, "libedgetpu.so.1 not found")
    assert "apt-get install libedgetpu1-std" in proc.stderr.decode()
    marked = tmp_path / "tpu"
    shutil.copytree(tiny_bundles["int8"], marked)
    manifest = json.loads((marked / "manifest.json").read_text())
    manifest["edgetpu_compiled"] = True
    (marked / "manifest.json").write_text(json.dumps(manifest))
    _one_line_error(_run(marked, "--source", "synthetic:frames=3,size=24x24"), "compiled for the Edge TPU")


def test_isolated_first_load_and_max_frames(tiny_bundles: dict[str, Path]) -> None:
    proc = _run(tiny_bundles["int8"], "--source", "synthetic:frames=500,size=24x24", "--isolate", "--policy", "block",
                "--max-frames", "5")
    assert proc.returncode == 0 and "frames 5 in" in proc.stdout.decode(), proc.stderr.decode()


def test_unpaced_synthetic_source_streams_every_frame(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    """``synthetic:frames=50`` is unpaced, hence lossless: all 50 frames are streamed, none dropped."""
    summary = tmp_path / "summary.json"
    proc = _run(tiny_bundles["int8"], "--source", "synthetic:frames=50", "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr.decode()
    s = json.loads(summary.read_text())
    assert s["frames"] == 50 and s["dropped"] == 0
    assert s["latency_ms"]["invoke"]["count"] == 45  # 5 warm-up frames excluded
    assert "frames 50 in" in proc.stdout.decode()


def test_too_few_frames_for_latency_says_so(tiny_bundles: dict[str, Path]) -> None:
    proc = _run(tiny_bundles["int8"], "--source", "synthetic:frames=3,size=24x24")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "too few frames: 3 streamed, 3 of them warm-up" in out
    assert "end_to_end" not in out


def test_stalled_source_exits_with_camera_lost(tiny_bundles: dict[str, Path]) -> None:
    proc = _run(tiny_bundles["int8"], "--source", "synthetic:stall_after=4,size=24x24", "--stall-timeout", "0.5",
                timeout=30)
    _one_line_error(proc, "camera_lost")


def test_self_test_catches_damaged_weights(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    """Weights changed with a matching sha256 pass every structural check; the golden pair does not."""
    from edge.bundle import sha256_file
    from edge.flatbuffer import _Reader

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundles["int8"], bundle)
    model = bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    r = _Reader(bytes(data), "m")
    buffers = r.table(r.target(0, "root"), "Model").tables(4, "buffers")
    start, n = max((b.vector(0, 1) for b in buffers), key=lambda v: v[1])  # the largest weight buffer
    data[start:start + n] = bytes((v + 77) % 256 for v in data[start:start + n])
    model.write_bytes(bytes(data))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["model.tflite"] = {"sha256": sha256_file(model), "size": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert _run(bundle, "--source", "synthetic:frames=2,size=24x24").returncode == 0  # runs, silently wrong
    _one_line_error(_run(bundle, "--source", "synthetic:frames=2,size=24x24", "--self-test"), "golden self-test failed")
