"""Preprocessing is one function: the training input path and every runtime path of a bundle agree.

Sequence bundles are checked the same way end to end in ``test_eval`` (standardised sensor series,
Keras on the training input vs the streamed bundle).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_manifest, read_bundle, write_manifest
from edge.preprocess import Preprocessing
from edge.streaming import StreamingSession

from conftest import TINY_SPEC

MEAN, STD = (0.45, 0.5, 0.55), (0.22, 0.25, 0.3)


@pytest.fixture(scope="module")
def standardised_bundle(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny float32 bundle with non-trivial per-channel mean/std in its manifest."""
    path = tmp_path_factory.mktemp("std") / "f32"
    shutil.copytree(tiny_bundles["float32"], path)
    m = load_manifest(path)
    write_manifest(path, replace(m, preprocessing=replace(m.preprocessing, mean=MEAN, std=STD)))
    return path


def _frame_input(session: StreamingSession) -> np.ndarray:
    runner = session.runners[0]
    name = session.frame_spec.name
    return runner.interpreter.get_tensor(runner._in_index[name])[0]


def test_runtime_paths_equal_the_training_input(standardised_bundle: Path) -> None:
    bundle = read_bundle(standardised_bundle)
    pre = bundle.preprocessing
    assert pre.mean == MEAN and pre.std == STD
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, *pre.size, 3), dtype=np.uint8)
    train_x = pre.normalize(frames)  # what training.train feeds Keras
    assert abs(float(train_x.mean())) < 0.5 and float(train_x.std()) > 1.0  # really standardised, not just scaled
    general = StreamingSession(bundle, fast_path=False)
    fast = StreamingSession(bundle)
    for i, frame in enumerate(frames):
        np.testing.assert_allclose(np.asarray(general.encode(frame)).reshape(train_x[i].shape), train_x[i], atol=1e-6)
        fast.step(frame)
        np.testing.assert_allclose(_frame_input(fast), train_x[i], atol=1e-6)
        fast.step(frame[..., ::-1].copy(), source_color="bgr")  # a BGR source is put back into RGB first
        np.testing.assert_allclose(_frame_input(fast), train_x[i], atol=1e-6)
    grey = frames[0, ..., 0]
    fast.step(grey)  # a grey frame fills every channel the model takes
    np.testing.assert_allclose(_frame_input(fast), pre.normalize(np.repeat(grey[..., None], 3, axis=2)), atol=1e-6)


def test_streamed_bundle_equals_keras_on_the_training_input(standardised_bundle: Path, tiny_run: Path) -> None:
    """End to end: Keras on the training path's input == the float32 bundle streamed on raw frames."""
    import keras

    from training.data import load_dataset


    bundle = read_bundle(standardised_bundle)
    model = keras.saving.load_model(tiny_run / "model.keras")
    clips = load_dataset(TINY_SPEC).test.x[:3]
    want = model.predict(bundle.preprocessing.normalize(clips), verbose=0)
    session = StreamingSession(bundle)
    for clip, expected in zip(clips, want):
        session.reset()
        for frame in clip:
            result = session.step(frame)
        np.testing.assert_allclose(result.probabilities, expected, atol=1e-4)


def test_manifest_preprocessing_is_strict() -> None:
    with pytest.raises(ValueError, match="scale"):
        Preprocessing.from_manifest({"size": [8, 8]})
    with pytest.raises(ValueError, match="std"):
        Preprocessing.from_manifest({"scale": 1.0, "mean": [0.5], "std": [0.0]})
    sensor = Preprocessing.from_manifest({"scale": 1.0, "mean": [5.0, 1.0], "std": [2.0, 0.5]})
    x = np.array([[np.nan, np.nan], [7.0, 1.5]], np.float32)
    np.testing.assert_array_equal(sensor.normalize(x), [[0.0, 0.0], [1.0, 1.0]])  # padding becomes pad_value
