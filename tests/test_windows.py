"""Long recordings cut into windows (``ucr:DIR,window=N,hop=M,group=FILE``): no straddling, held-out groups, per-recording scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataError
from training.data import load_dataset

LABELS = ("walk", "run", "rest")


def write_recordings(path: Path, n: int, seed: int, lengths: tuple[int, int] = (300, 700)) -> None:
    """Long 2-dimension recordings in the UEA ``.ts`` format: dim 0 is the recording's number, dim 1 its activity."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName long", "@timeStamps false", "@missing false", "@univariate false", "@dimensions 2",
             "@equalLength false", f"@classLabel true {' '.join(LABELS)}", "@data"]
    for i in range(n):
        label = i % 3
        t = np.arange(rng.integers(*lengths))
        signal = (np.sin(0.2 * t), np.sin(0.9 * t) * 2, 0.05 * np.ones(len(t)))[label] + 0.1 * rng.normal(size=len(t))
        dims = [np.full(len(t), float(i)), signal]
        lines.append(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{LABELS[label]}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("long") / "long"
    d.mkdir()
    write_recordings(d / "long_TRAIN.ts", 12, 0)
    write_recordings(d / "long_TEST.ts", 6, 1)
    (d / "subjects.txt").write_text("\n".join(f"s{i // 2}" for i in range(12)) + "\n")  # two recordings per subject
    return d


def test_windows_never_straddle_and_validation_holds_out_whole_subjects(long_dir: Path) -> None:
    ds = load_dataset(f"ucr:{long_dir},window=64,hop=32,group={long_dir / 'subjects.txt'},val=0.34")
    assert ds.train.x.shape[1:] == (64, 2) and ds.test.x.shape[1:] == (64, 2)
    for split in (ds.train, ds.val, ds.test):
        rec = split.x[:, :, 0]
        assert np.all(rec == rec[:, :1]), "a window mixes two recordings"
    train_rec = {int(v) for v in ds.train.x[:, 0, 0]}
    val_rec = {int(v) for v in ds.val.x[:, 0, 0]}
    assert train_rec and val_rec and not train_rec & val_rec
    assert not {r // 2 for r in train_rec} & {r // 2 for r in val_rec}  # no subject on both sides
    # every recording of 300-700 steps gives ceil((len - 64) / 32) + 1 windows, the last ending at its last step
    assert ds.recordings is not None and len(ds.recordings.y) == 6
    lengths = ds.recordings.lengths
    assert len(ds.test.y) == sum(int(np.ceil((n - 64) / 32)) + 1 for n in lengths)
    assert ",window=64,hop=32,group=" in ds.spec and load_dataset(ds.spec).spec == ds.spec


@pytest.mark.parametrize("spec, message", [
    ("hop=8", "hop and group need window=N"),
    ("window=-4", "window and hop must be positive"),
    ("window=32,group=/nonexistent/groups.txt", "cannot read the group file"),
])
def test_bad_window_options_are_one_line_errors(long_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(f"ucr:{long_dir},{spec}")


def test_train_on_windows_scores_whole_recordings(long_dir: Path, tmp_path: Path) -> None:
    from training.train import TrainConfig, train

    lines = []
    run = train("test_tcn", f"ucr:{long_dir},window=48,hop=48", tmp_path / "run", TrainConfig(epochs=4, seed=0), progress=lines.append)
    history = json.loads((run / "history.json").read_text())
    rec = history["test_recordings"]
    assert rec["recordings"] == 6 and rec["steps"] == int(load_dataset(f"ucr:{long_dir}").test.lengths.sum())
    assert any(line.startswith("test recordings (6,") for line in lines)
    card = json.loads((run / "model_card.json").read_text())
    assert card["input"]["shape"][0] == 48  # trained on windows
