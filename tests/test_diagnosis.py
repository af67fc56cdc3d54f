"""A model that does not learn says why, in its model card and on the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.rundir import RunDir
from test_datasets import write_ts
from training.diagnosis import diagnose
from training.train import TrainConfig, train


@pytest.mark.parametrize("train_acc, test_acc, start", [
    (0.40, 0.35, "training accuracy 0.40 after 85 epochs (chance 0.33): the model did not fit"),
    (0.98, 0.36, "test accuracy 0.36 is near chance (0.33)"),
    (1.00, 0.62, "training accuracy 1.00 but test accuracy 0.62: the model overfits its 50"),
])
def test_each_failure_has_its_sentence(train_acc: float, test_acc: float, start: str) -> None:
    assert diagnose(train_acc, test_acc, classes=3, epochs=85, train_items=50).startswith(start)


def test_batchnorm_statistics_that_did_not_settle_are_named() -> None:
    text = diagnose(0.50, 0.48, classes=2, epochs=100, train_items=40, fit_accuracy=1.0)
    assert text.startswith("training accuracy 1.00 during the fit but 0.50 on the same data at inference: BatchNormalization")


def test_a_model_that_learned_gets_no_diagnosis() -> None:
    assert diagnose(0.97, 0.93, classes=3, epochs=40, train_items=50) is None
    assert diagnose(0.55, 0.52, classes=20, epochs=40, train_items=500) is None  # far above a 0.05 chance


def test_a_run_that_did_not_fit_says_so(tmp_path: Path) -> None:
    ts = write_ts(tmp_path / "ts" / "Walk", "Walk", dims=3, lengths={"TRAIN": [14, 20, 9, 20] * 6, "TEST": [20, 11, 16] * 3})
    lines: list[str] = []
    run = train("test_rnn", f"ucr:{ts}", tmp_path / "run", TrainConfig(epochs=2, batch_size=8, learning_rate=1e-7, seed=0),
                progress=lines.append)
    metrics = RunDir(run).card().metrics
    assert metrics.train_accuracy is not None and metrics.train_accuracy < 0.6
    assert metrics.diagnosis is not None and "did not fit" in metrics.diagnosis
    assert any(line.startswith("WARNING: training accuracy") for line in lines)
