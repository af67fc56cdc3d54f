"""Shared fixtures: one tiny trained run and its bundles, built once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_SPEC = "synthetic-actions:classes=4,frames=6,size=24,clips=12,seed=3"


def run_test_split(run_dir: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """A run's saved model and its dataset's test split as model input: recompute what the card reports."""
    from edge.rundir import RunDir
    from training.data import load_dataset
    from training.registry import load_keras_model

    card = RunDir(run_dir).card()
    test = load_dataset(card.dataset).test
    return load_keras_model(run_dir / "model.keras"), card.preprocessing.normalize(test.x), np.asarray(test.y)


def recomputed_test_accuracy(run_dir: Path) -> float:
    """Top-1 accuracy of a run's saved model on its test split, computed here."""
    model, x, y = run_test_split(run_dir)
    return float(np.mean(model.predict(x, verbose=0).argmax(1) == y))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``test_cnn_lstm`` trained for two epochs on a tiny synthetic set."""
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "run"
    return train("test_cnn_lstm", TINY_SPEC, out, TrainConfig(epochs=2, batch_size=8, seed=1), progress=lambda m: None)


@pytest.fixture(scope="session")
def tiny_bundles(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """float32 and int8 bundles of the tiny run, converted in worker processes."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    root = tmp_path_factory.mktemp("bundles")
    return {p: convert_run(tiny_run, root / p, ConvertOptions(p, calibration_samples=60)) for p in ("float32", "int8")}


@pytest.fixture(scope="session")
def tiny_clips(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test split as a clip set with the Keras model's reference probabilities."""
    from training.data import load_dataset
    from training.registry import load_keras_model

    ds = load_dataset(TINY_SPEC)
    model = load_keras_model(tiny_run / "model.keras")
    ref = model.predict(ds.preprocessing.normalize(ds.test.x), verbose=0)
    path = tmp_path_factory.mktemp("clips") / "test.npz"
    np.savez(path, clips=ds.test.x, labels=ds.test.y, label_names=np.array(ds.label_names), reference_probs=ref)
    return path
