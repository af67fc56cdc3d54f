"""Train a registered model on a dataset spec and write a run directory.

A run directory holds ``model.keras``, ``config.json`` (model + training
settings), ``model_card.json`` (labels, input spec, preprocessing, metrics,
dataset spec, seed, versions) and ``history.json``. It is written to a temporary
sibling and renamed at the end, so a failed run never looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.errors import HybridEdgeError
from training.data import Dataset, load_dataset
from training.registry import create_model, get_entry, make_config
from training.versions import library_versions


@dataclass(frozen=True)
class TrainConfig:
    """Training-loop settings, saved as JSON beside the model."""

    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 2e-3
    patience: int = 5
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TF ops deterministic."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def to_float(x: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """uint8 frames -> float32 model input, the same arithmetic the runtime uses."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(preprocessing.get("scale", 1.0 / 255.0))
    return x.astype(np.float32)


def _shape_overrides(name: str, dataset: Dataset) -> dict[str, Any]:
    """Fit the model's input/output sizes to the dataset."""
    cfg = get_entry(name).config_cls()
    fields = {f.name for f in dataclasses.fields(cfg)}
    shape = dataset.train.x.shape[1:]
    out: dict[str, Any] = {"num_classes": dataset.num_classes} if "num_classes" in fields else {}
    if {"frames", "height", "width", "channels"} <= fields and len(shape) == 4:
        out.update(frames=shape[0], height=shape[1], width=shape[2], channels=shape[3])
    return out


def train(
    model_name: str,
    dataset_spec: str,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] = print,
    dataset: Dataset | None = None,
) -> Path:
    """Train ``model_name`` on ``dataset_spec``; return the finished run directory."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HybridEdgeError(f"{out}: run directory exists and is not empty")
    seed_everything(config.seed)
    import keras

    t0 = time.perf_counter()
    dataset = dataset or load_dataset(dataset_spec)
    progress(f"dataset {dataset.spec}: train {len(dataset.train.y)}, val {len(dataset.val.y)}, test {len(dataset.test.y)} ({time.perf_counter() - t0:.1f}s)")
    model_cfg = make_config(model_name, {**_shape_overrides(model_name, dataset), **config.overrides})
    model = create_model(model_name, model_cfg)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    pre = dataset.preprocessing
    x_train, x_val, x_test = (to_float(s.x, pre) for s in (dataset.train, dataset.val, dataset.test))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        callbacks = [
            keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience, restore_best_weights=True, mode="max"),
            _ProgressCallback(progress, config.epochs),
        ]
        history = model.fit(
            x_train, dataset.train.y, validation_data=(x_val, dataset.val.y),
            epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=0, callbacks=callbacks,
        )
        test_loss, test_acc = model.evaluate(x_test, dataset.test.y, verbose=0, batch_size=64)
        progress(f"test accuracy {test_acc:.3f} ({time.perf_counter() - t0:.1f}s)")
        model.save(tmp / "model.keras")
        _write_json(tmp / "config.json", {"model": model_name, "model_config": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(config), "dataset": dataset.spec})
        _write_json(tmp / "history.json", {k: [float(v) for v in vals] for k, vals in history.history.items()})
        _write_json(tmp / "model_card.json", {
            "model": model_name,
            "labels": list(dataset.label_names),
            "input": {"shape": list(dataset.train.x.shape[1:]), "dtype": str(dataset.train.x.dtype), "kind": dataset.kind},
            "preprocessing": pre,
            "metrics": {"test_accuracy": float(test_acc), "test_loss": float(test_loss), "epochs_run": len(history.history["loss"])},
            "dataset": dataset.spec,
            "seed": config.seed,
            "streamable": get_entry(model_name).streamable,
            "versions": library_versions(),
        })
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


class _ProgressCallback:
    """One line per epoch; built lazily so importing this module needs no Keras."""

    def __new__(cls, progress: Callable[[str], None], epochs: int):
        import keras

        class Progress(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                progress(
                    f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', 0):.3f} acc {logs.get('accuracy', 0):.3f} "
                    f"val_acc {logs.get('val_accuracy', 0):.3f} ({time.perf_counter() - self._t:.1f}s)"
                )

        return Progress()
