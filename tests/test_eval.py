"""``hybrid-edge eval`` on dataset specs and clip sets: metrics, JSON shape, references."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataError
from edge.evalsets import real_steps
from edge.metrics import agreement, confusion_matrix, describe_disagreements, macro_f1

from conftest import TINY_SPEC

BLOCK_TF = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; from edge.cli import main; sys.exit(main(sys.argv[1:]))"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process where importing TensorFlow or Keras fails."""
    return subprocess.run([sys.executable, "-c", BLOCK_TF, *args], capture_output=True, text=True, timeout=300)


def test_macro_f1_and_confusion_by_hand() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    # class 0: p=1/2 r=1/2 f=1/2; class 1: p=2/3 r=1 f=0.8; class 2: f=0; class 3 absent
    assert macro_f1(cm) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_disagreements_give_the_references_lead_where_top1_differs() -> None:
    reference = np.array([[0.90, 0.05, 0.05], [0.51, 0.49, 0.00], [0.2, 0.3, 0.5], [0.40, 0.35, 0.25]])
    converted = np.array([[0.30, 0.60, 0.10], [0.49, 0.51, 0.00], [0.2, 0.3, 0.5], [0.40, 0.35, 0.25]])
    r = agreement(converted, reference)
    assert r["agreement_with_float"] == 0.5
    assert r["disagreements"] == {"count": 2, "reference_leads": [0.85, 0.02]}  # a sure decision changed, and a tie
    assert describe_disagreements(r["disagreements"], "Keras") == "2 differ: Keras led by 0.850, 0.020"
    assert describe_disagreements(agreement(reference, reference)["disagreements"]) == ""


def test_real_steps_drops_front_padding_or_uses_lengths() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    x[:2] = np.nan  # front padding, as training.data writes it
    assert real_steps(x, None).tolist() == x[2:].tolist()
    assert real_steps(x, 3).tolist() == x[3:].tolist()
    with pytest.raises(DataError):
        real_steps(np.full((3, 2), np.nan, np.float32), None)


def test_eval_dataset_spec_with_float_bundle_and_keras_reference(tiny_bundles: dict[str, Path], tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    proc = run_cli("eval", str(tiny_bundles["float32"]), str(tiny_bundles["int8"]), "--dataset", TINY_SPEC,
                   "--reference", str(tiny_run), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["reference"] == f"keras:{tiny_run}"
    f32, i8 = result["bundles"]
    n = result["items"]
    for b in (f32, i8):
        assert set(b) >= {"path", "precision", "accuracy", "macro_f1", "agreement_with_float", "confusion", "prob_error"}
        cm = np.array(b["confusion"])
        assert cm.shape == (4, 4) and cm.sum() == n == b["clips"]
        assert b["accuracy"] == pytest.approx(np.trace(cm) / n)
        assert b["frames"] == n * 6 and not b["tensorflow_imported"]
    # the float bundle streams the same function as the Keras model over the whole clip
    assert f32["agreement_with_float"] == 1.0 and f32["prob_error"]["max"] < 1e-4
    assert i8["precision"] == "int8" and i8["prob_error"]["mean"] < 0.03
    assert "agreement 1.000" in proc.stdout


def test_eval_float_bundle_in_same_call_is_the_reference(tiny_bundles: dict[str, Path], tiny_clips: Path, tmp_path: Path) -> None:
    from edge.bundle import read_bundle
    from edge.evaluate import evaluate_bundles, load_clipset, predict

    clips = load_clipset(tiny_clips)
    result = evaluate_bundles([tiny_bundles["int8"], tiny_bundles["float32"]], clips.subset(5))
    assert result["reference"] == f"bundle:{tiny_bundles['float32']}" and result["items"] == 5
    i8, f32 = result["bundles"]
    assert f32["agreement_with_float"] == 1.0 and f32["prob_error"]["max"] == 0.0
    assert i8["prob_error"]["max"] > 0.0
    probs = [predict(read_bundle(tiny_bundles[p]), clips.subset(5)).probs.argmax(1) for p in ("int8", "float32")]
    assert i8["agreement_with_float"] == pytest.approx(float(np.mean(probs[0] == probs[1])))


def test_eval_errors_are_one_line(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli("eval", str(tiny_bundles["int8"]), "--clips", str(tmp_path / "missing.npz"))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "clip set not found" in proc.stderr
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, clips=np.zeros((2, 6, 24, 24, 3), np.uint8), labels=np.zeros(2, np.int64), label_names=np.array(["a", "b"]))
    proc = run_cli("eval", str(tiny_bundles["int8"]), "--clips", str(wrong))
    assert proc.returncode == 2 and "labels" in proc.stderr


def write_ts(path: Path, cases: list[np.ndarray], labels: list[str], names: tuple[str, ...]) -> None:
    """A UEA ``.ts`` file in the archive's real format (multivariate, unequal length)."""
    lines = ["# tiny synthetic problem written by the test", "@problemName Tiny", "@timeStamps false", "@missing false",
             "@univariate false", f"@dimensions {cases[0].shape[1]}", "@equalLength false",
             "@classLabel true " + " ".join(names), "@data"]
    for case, label in zip(cases, labels):
        dims = [",".join(f"{v:.5f}" for v in case[:, d]) for d in range(case.shape[1])]
        lines.append(":".join(dims) + ":" + label)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 3-axis signals (frequency tells them apart), 9 to 16 steps long."""
    root = tmp_path_factory.mktemp("ucr") / "Tiny"
    root.mkdir()
    names = ("slow", "mid", "fast")
    rng = np.random.default_rng(11)
    for split, n in (("TRAIN", 36), ("TEST", 12)):
        cases, labels = [], []
        for i in range(n):
            k = i % 3
            t = np.arange(int(rng.integers(9, 17)))
            phase = rng.uniform(0, 2 * np.pi, size=3)
            case = np.stack([np.sin(t * (0.3 + 0.5 * k) + p) for p in phase], axis=1) * 2 + rng.normal(0, 0.1, (len(t), 3)) + 5
            cases.append(case)
            labels.append(names[k])
        write_ts(root / f"Tiny_{split}.ts", cases, labels, names)
    return root


def test_eval_ts_dataset_streams_only_real_steps(ts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from training.train import TrainConfig, train

    spec = f"ucr:{ts_dir}"
    root = tmp_path_factory.mktemp("ts_run")
    run_dir = train("test_rnn", spec, root / "run", TrainConfig(epochs=3, batch_size=8, seed=2), progress=lambda m: None)
    bundles = [convert_run(run_dir, root / p, ConvertOptions(p, calibration_samples=100, verify=False)) for p in ("float32", "int8")]
    out = tmp_path_factory.mktemp("ts_eval") / "eval.json"
    proc = run_cli("eval", *map(str, bundles), "--dataset", spec, "--reference", str(run_dir), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    f32, i8 = result["bundles"]
    assert result["items"] == 12 and f32["clips"] == 12
    from training.data import load_dataset

    lengths = load_dataset(spec).test.lengths
    assert lengths is not None and len(set(lengths.tolist())) > 1
    assert f32["frames"] == int(lengths.sum())  # only the real steps were streamed
    # streaming the real steps from zero state equals the Keras model on the front-padded batch
    assert f32["agreement_with_float"] == 1.0 and f32["prob_error"]["max"] < 1e-4, f32["prob_error"]
    assert i8["prob_error"]["mean"] < 0.05 and np.array(i8["confusion"]).sum() == 12


def test_labels_are_matched_by_name() -> None:
    from edge.evalsets import ClipSet, align_labels

    data = ClipSet(np.zeros((3, 2, 2)), np.array([0, 1, 2]), ("b", "c", "a"), np.eye(3, dtype=np.float32))
    aligned = align_labels(data, ("a", "b", "c"))
    assert aligned.labels.tolist() == [1, 2, 0] and aligned.label_names == ("a", "b", "c")
    assert aligned.reference_probs.argmax(1).tolist() == [1, 2, 0]
    with pytest.raises(DataError, match="differ"):
        align_labels(data, ("a", "b", "x"))


def test_eval_video_folder_of_real_video_files(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    """MJPG .avi files written by OpenCV, decoded by the video-folder loader, streamed through both bundles."""
    import cv2

    from training.data import load_dataset

    ds = load_dataset(TINY_SPEC)
    root = tmp_path / "videos"
    for i, (clip, label) in enumerate(zip(ds.train.x[:24], ds.train.y[:24])):
        folder = root / ds.label_names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(folder / f"clip_{i:02d}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (24, 24))
        assert writer.isOpened()
        for frame in clip:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    out = tmp_path / "eval.json"
    spec = f"video-folder:{root},frames=6,stride=1,size=24,test=0.5,seed=0"
    proc = run_cli("eval", str(tiny_bundles["float32"]), str(tiny_bundles["int8"]), "--dataset", spec, "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    f32, i8 = result["bundles"]
    n = result["items"]
    assert n >= 8 and f32["frames"] == 6 * n and np.array(i8["confusion"]).sum() == n
    assert result["reference"] == f"bundle:{tiny_bundles['float32']}" and f32["agreement_with_float"] == 1.0
    # folder names sort differently from the bundle's class order; labels are matched by name
    assert f32["labels"] == ["move_left", "move_right", "move_up", "move_down"]


def test_eval_image_bundle_is_single_frame(tmp_path_factory: pytest.TempPathFactory) -> None:
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from training.train import TrainConfig, train

    spec = "synthetic-shapes:classes=4,size=32,images=12,seed=1"
    root = tmp_path_factory.mktemp("image")
    run_dir = train("test_cnn", spec, root / "run", TrainConfig(epochs=1, batch_size=8, seed=0), progress=lambda m: None)
    bundle = convert_run(run_dir, root / "int8", ConvertOptions("int8", calibration_samples=20, verify=False))
    out = root / "eval.json"
    proc = run_cli("eval", str(bundle), "--dataset", spec, "--reference", str(run_dir), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    (b,) = json.loads(out.read_text())["bundles"]
    assert b["mode"] == "single" and b["frames"] == b["clips"]
    agreeing = b["agreement_with_float"] * b["clips"]  # a count of images whose top-1 matches the Keras model's
    assert agreeing == pytest.approx(round(agreeing)) and agreeing >= b["clips"] / 2
    assert b["prob_error"]["mean"] < 0.1
