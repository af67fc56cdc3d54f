"""``hybrid-edge train`` end to end: run dir contents, determinism, atomic failure, every input kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import recomputed_test_accuracy
from edge.errors import HybridEdgeError
from test_datasets import write_ts, write_video
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
QUIET = lambda msg: None  # noqa: E731


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "edge", "train", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ts(tmp_path_factory.mktemp("ts") / "Walk", "Walk", dims=3, lengths={"TRAIN": [14, 20, 9, 20] * 6, "TEST": [20, 11, 16] * 3})


def test_cli_writes_a_complete_run_dir(ts_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "rnn"
    proc = _cli("--model", "test_rnn", "--dataset", f"ucr:{ts_dir}", "--epochs", "3", "--seed", "4", "--set", "units=8x8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout and "test accuracy" in proc.stdout and f"wrote {out}" in proc.stdout
    assert {p.name for p in out.iterdir()} == {"model.keras", "config.json", "model_card.json", "history.json", "tensorboard"}
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"] == "test_rnn" and card["labels"] == ["walk", "run", "rest"] and card["seed"] == 4
    assert card["input"]["kind"] == "sequence" and card["input"]["shape"] == [20, 3] and card["input"]["variable_length"]
    assert card["input"]["model_shape"] == [None, 3]
    assert card["metrics"]["test_accuracy"] == pytest.approx(recomputed_test_accuracy(out), abs=1e-6) and card["streamable"] is True
    assert card["dataset"].startswith("ucr:") and len(card["preprocessing"]["mean"]) == 3
    assert "keras" in card["versions"]
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["units"] == [8, 8] and config["train"]["epochs"] == 3
    assert config["train"]["patience"] == 30  # the rnn family's fit defaults fill what the CLI left out
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3


def test_same_seed_same_metrics(ts_dir: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=3, batch_size=8, seed=7)
    runs = [train("test_rnn", f"ucr:{ts_dir}", tmp_path / f"r{i}", cfg, progress=QUIET) for i in range(2)]
    cards = [json.loads((r / "model_card.json").read_text())["metrics"] for r in runs]
    hist = [json.loads((r / "history.json").read_text()) for r in runs]
    assert cards[0]["test_accuracy"] == cards[1]["test_accuracy"] and cards[0]["test_loss"] == cards[1]["test_loss"]
    assert hist[0] == hist[1]
    other = train("test_rnn", f"ucr:{ts_dir}", tmp_path / "r_other", TrainConfig(epochs=3, batch_size=8, seed=8), progress=QUIET)
    assert json.loads((other / "history.json").read_text())["loss"] != hist[0]["loss"]


@pytest.mark.parametrize("problem", ["malformed-ts", "empty-class", "corrupt-video"])
def test_bad_input_is_one_line_exit_2_and_no_run_dir(problem: str, tmp_path: Path) -> None:
    if problem == "malformed-ts":
        folder = write_ts(tmp_path / "Bad", "Bad")
        (folder / "Bad_TRAIN.ts").write_text((folder / "Bad_TRAIN.ts").read_text().replace("@dimensions 2", "@dimensions"))
        model, spec = "test_rnn", f"ucr:{folder}"
    elif problem == "empty-class":
        for cls in ("a", "b"):
            (tmp_path / "img" / cls).mkdir(parents=True)
        model, spec = "test_cnn", f"image-folder:{tmp_path / 'img'}"
    else:
        (tmp_path / "vid" / "a").mkdir(parents=True)
        write_video(tmp_path / "vid" / "a" / "ok.avi", "MJPG", 8, 0)
        (tmp_path / "vid" / "a" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
        model, spec = "test_cnn_lstm", f"video-folder:{tmp_path / 'vid'},frames=4,size=24"
    out = tmp_path / "runs" / "x"
    proc = _cli("--model", model, "--dataset", spec, "--epochs", "1", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("hybrid-edge")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert {"malformed-ts": "malformed header", "empty-class": "empty class folder", "corrupt-video": "broken.mp4: unreadable"}[problem] in lines[0]
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))


def test_failure_mid_training_leaves_nothing(ts_dir: Path, tmp_path: Path) -> None:
    def explode(msg: str) -> None:
        if msg.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("test_rnn_gru", f"ucr:{ts_dir}", tmp_path / "run", TrainConfig(epochs=5), progress=explode)
    assert list(tmp_path.iterdir()) == []  # neither the run dir nor its temporary sibling


def test_model_and_dataset_kinds_must_match(ts_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(HybridEdgeError, match="takes image inputs but dataset .* gives sequence samples"):
        train("test_cnn", f"ucr:{ts_dir}", tmp_path / "run", TrainConfig(epochs=1), progress=QUIET)
    with pytest.raises(HybridEdgeError, match="not a valid int"):
        train("test_rnn", f"ucr:{ts_dir}", tmp_path / "run", TrainConfig(epochs=1, overrides={"conv_kernel": "three"}), progress=QUIET)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, spec", [
    ("test_cnn", "synthetic-shapes:classes=4,size=32,images=8,seed=1"),
    ("test_cnn_gru", "synthetic-actions:classes=4,frames=6,size=24,clips=6,seed=2"),
])
def test_image_and_clip_models_train(model: str, spec: str, tmp_path: Path) -> None:
    run = train(model, spec, tmp_path / "run", TrainConfig(epochs=2, batch_size=8), progress=QUIET)
    card = json.loads((run / "model_card.json").read_text())
    assert card["input"]["kind"] == ("image" if model == "test_cnn" else "clip")
    assert card["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert np.isfinite(card["metrics"]["test_loss"])


def test_tensorflow_logs_stay_out_of_the_terminal_unless_verbose(ts_dir: Path, tmp_path: Path) -> None:
    """TensorFlow's native log lines (absl pre-init notes, oneDNN, cpu_feature_guard) only show with --verbose."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(ROOT)
    native = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "I0000 ", "E0000 ")
    runs = {}
    for verbose in (False, True):
        args = ["--model", "test_rnn", "--dataset", f"ucr:{ts_dir}", "--epochs", "1", "--out", str(tmp_path / f"v{verbose}")]
        proc = subprocess.run([sys.executable, "-m", "edge", "train", *args, *(["--verbose"] if verbose else [])],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "epoch 1/1" in proc.stdout
        runs[verbose] = [line for line in proc.stderr.splitlines() if any(n in line for n in native)]
    assert runs[False] == [] and runs[True]
