"""Train a registered model on a dataset spec and write a run directory.

A run directory (its files and schemas: :mod:`edge.rundir`) holds the model,
its config, model card, history and TensorBoard logs. It is written to a temporary sibling and renamed at the end, so a failed run never
looks complete. Under ``--distribute multi-worker`` only the chief writes it;
the other workers write to a temporary directory that is removed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.bundle.manifest import InputKind
from edge.errors import HybridEdgeError
from edge.rundir import TENSORBOARD, InputSpec, Metrics, ModelCard, RunDir
from training.data import Dataset, load_dataset
from training.diagnosis import diagnose
from training.distribute import Distribution, make_strategy, prepare_model
from training.registry import SCHEDULES, ModelEntry, create_model, get_entry, make_config
from edge.versions import library_versions


@dataclass(frozen=True)
class TrainConfig:
    """Training-loop settings, saved as JSON beside the model.

    ``None`` takes the model's registered :class:`~training.registry.FitDefaults`.
    """

    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    monitor: str | None = None
    min_epochs: int | None = None
    clipnorm: float | None = None
    stream_epochs: int | None = None
    schedule: str | None = None
    stream_learning_rate: float | None = None
    precise_bn: bool | None = None
    seed: int = 0
    distribute: Distribution = Distribution.NONE
    overrides: dict[str, Any] = field(default_factory=dict)

    def resolved(self, entry: ModelEntry) -> "TrainConfig":
        """This config with every ``None`` filled from the model's fit defaults."""
        fit = dataclasses.asdict(entry.fit)
        filled = {k: fit[k] for k in fit if getattr(self, k) is None}
        return dataclasses.replace(self, **filled, distribute=Distribution(self.distribute))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TF ops deterministic."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _learning_rate(config: TrainConfig, n_train: int) -> Any:
    """The optimizer's learning rate: a constant, or a cosine decay to 0 over all ``epochs``.

    A cosine schedule converges in fewer epochs than a constant rate at the same
    peak (large steps early, fine ones at the end); early stopping still applies.
    """
    import keras

    if config.schedule != "cosine":
        return float(config.learning_rate)
    steps = int(config.epochs) * max(1, -(-n_train // int(config.batch_size)))
    return keras.optimizers.schedules.CosineDecay(float(config.learning_rate), decay_steps=steps)


def _shape_overrides(entry: ModelEntry, dataset: Dataset) -> dict[str, Any]:
    """Fit the model's input/output sizes to the dataset (after checking the input kinds match)."""
    if entry.input_kind.value != dataset.kind:
        raise HybridEdgeError(
            f"model {entry.name!r} takes {entry.input_kind.value} inputs but dataset {dataset.spec!r} gives {dataset.kind} samples"
        )
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    shape = dataset.train.x.shape[1:]
    out: dict[str, Any] = {"num_classes": dataset.num_classes} if "num_classes" in fields else {}
    if {"frames", "height", "width", "channels"} <= fields and len(shape) == 4:
        out.update(frames=shape[0], height=shape[1], width=shape[2], channels=shape[3])
    elif {"height", "width", "channels"} <= fields and len(shape) == 3:
        out.update(height=shape[0], width=shape[1], channels=shape[2])
    elif "features" in fields and len(shape) == 2:
        out.update(features=shape[1])  # timesteps stay as configured: 0 = any length
    return out


def train(
    model_name: str,
    dataset_spec: str,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] = print,
    dataset: Dataset | None = None,
) -> Path | None:
    """Train ``model_name`` on ``dataset_spec``; return the finished run directory.

    Under ``multi-worker`` only the chief writes ``out``; other workers return ``None``.

    Raises:
        HybridEdgeError: bad model/dataset/settings, or ``out`` exists and is not empty.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HybridEdgeError(f"{out}: run directory exists and is not empty")
    entry = get_entry(model_name)
    if config.stream_epochs is not None and config.stream_epochs < 0:
        raise HybridEdgeError(f"stream_epochs must be >= 0, got {config.stream_epochs}")
    stream_asked = bool(config.stream_epochs)
    config = config.resolved(entry)
    if config.schedule not in SCHEDULES:
        raise HybridEdgeError(f"unknown learning-rate schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    t0 = time.perf_counter()
    dataset = dataset or load_dataset(dataset_spec)  # numpy/OpenCV only: bad data fails before TensorFlow loads
    progress(f"dataset {dataset.spec}: train {len(dataset.train.y)}, val {len(dataset.val.y)}, test {len(dataset.test.y)} ({time.perf_counter() - t0:.1f}s)")
    if len(dataset.train.y) == 0 or len(dataset.test.y) == 0:
        raise HybridEdgeError(f"dataset {dataset.spec!r} has an empty train or test split")
    model_cfg = make_config(model_name, {**_shape_overrides(entry, dataset), **config.overrides})
    strategy, is_chief = make_strategy(config.distribute)  # before any other TF work (multi-worker needs it)
    seed_everything(config.seed)
    import keras
    with strategy.scope():
        model = create_model(model_name, model_cfg)
        model.compile(
            optimizer=keras.optimizers.Adam(_learning_rate(config, len(dataset.train.y)), clipnorm=config.clipnorm or None),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    prepare_model(model, strategy)
    pre = dataset.preprocessing
    x_train, x_val, x_test = (pre.normalize(s.x) for s in (dataset.train, dataset.val, dataset.test))
    has_val = len(dataset.val.y) > 0
    monitor = config.monitor if has_val else str(config.monitor).removeprefix("val_")
    if is_chief:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="hybrid-edge-worker-"))
    try:
        callbacks = [
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.patience, restore_best_weights=True, mode="min" if monitor.endswith("loss") else "max",
                start_from_epoch=min(int(config.min_epochs), int(config.epochs) - 1),
            ),
            keras.callbacks.TensorBoard(log_dir=str(tmp / TENSORBOARD), histogram_freq=0, write_graph=False),
            _ProgressCallback(progress, int(config.epochs)),
        ]
        with strategy.scope():
            history = model.fit(
                x_train, dataset.train.y, validation_data=(x_val, dataset.val.y) if has_val else None,
                epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=0, callbacks=callbacks,
            )
            stream_history, before_stream = _stream_phase(model, entry, config, stream_asked, (x_train, x_val, x_test), dataset, progress)
            if config.precise_bn:
                from training.precise_bn import recalibrate

                n = recalibrate(model, x_train)
                if n:
                    progress(f"BatchNorm statistics of {n} layer(s) recomputed over the training set's real steps")
            test_loss, test_acc = model.evaluate(x_test, dataset.test.y, verbose=0, batch_size=64)
        progress(f"test accuracy {test_acc:.3f} ({time.perf_counter() - t0:.1f}s)")
        fit_acc = max(history.history.get("accuracy") or [float("nan")])
        _, train_acc = model.evaluate(x_train, dataset.train.y, verbose=0, batch_size=64)  # the final weights, as deployed
        diagnosis = diagnose(float(train_acc), float(test_acc), dataset.num_classes, len(history.history["loss"]), len(dataset.train.y),
                             fit_accuracy=float(fit_acc))
        if diagnosis:
            progress(f"WARNING: {diagnosis}")
        recordings = _recording_metrics(model, dataset)
        if recordings:
            progress(f"test recordings ({recordings['recordings']}, {recordings['steps']} steps; windows above): accuracy at the end "
                     f"{recordings['accuracy_at_end']:.3f}, per-step accuracy {recordings['accuracy_per_step']:.3f}")
        stream_metrics = _stream_metrics(model, entry, x_test, dataset.test.y)
        if stream_metrics:
            progress(f"test stream (no reset, {stream_metrics['steps']} steps): per-step accuracy {stream_metrics['accuracy_per_step']:.3f}")
        run = RunDir(tmp)
        model.save(run.model)
        run.write_config({
            "model": model_name,
            "model_config": dataclasses.asdict(model_cfg),
            "train": {**dataclasses.asdict(config), "distribute": config.distribute.value},
            **({"stream_fit": dataclasses.asdict(_stream_fit_config(config))} if stream_history else {}),
            "dataset": dataset.spec,
        })
        run.write_history({
            **{k: [float(v) for v in vals] for k, vals in history.history.items()},
            **({"stream": stream_history} if stream_history else {}),
            **({"test_recordings": recordings} if recordings else {}),
        })
        run.write_card(ModelCard(
            model=model_name,
            labels=tuple(dataset.label_names),
            input=InputSpec(
                shape=tuple(int(v) for v in dataset.train.x.shape[1:]),
                dtype=str(dataset.train.x.dtype),
                kind=InputKind(dataset.kind),
                model_shape=tuple(model.inputs[0].shape[1:]),
                variable_length=any(
                    s.lengths is not None and bool((s.lengths != s.x.shape[1]).any()) for s in (dataset.train, dataset.val, dataset.test)
                ),
            ),
            preprocessing=pre,
            metrics=Metrics(
                test_accuracy=float(test_acc),
                train_accuracy=float(train_acc),
                diagnosis=diagnosis,
                test_loss=float(test_loss),
                epochs_run=len(history.history["loss"]),
                stream_epochs_run=len(stream_history),
                test_stream=stream_metrics or None,
                before_stream_training=before_stream or None,
                train_seconds=round(time.perf_counter() - t0, 2),
            ),
            dataset=dataset.spec,
            seed=config.seed,
            streamable=entry.streamable,
            versions=library_versions(),
        ))
        if not is_chief:
            progress(f"worker done; the chief writes {out}")
            return None
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if not is_chief:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


RECORDING_POINTS = 20  # prefixes scored per test recording for its per-step accuracy


def _stream_trainable(entry: ModelEntry, model: Any) -> bool:
    from training.layers import carries_state

    return entry.streamable and entry.input_kind.value in ("clip", "sequence") and carries_state(model)


def _stream_phase(model: Any, entry: ModelEntry, config: TrainConfig, asked: bool, xs: tuple[np.ndarray, np.ndarray, np.ndarray],
                  dataset: Dataset, progress: Callable[[str], None]) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Carried-state stream fine-tuning (:mod:`training.streamfit`) when ``stream_epochs`` asks for it.

    Returns the per-epoch history and the test metrics measured just before it
    (so the model card shows what the phase changed).

    Its custom loop runs without a distribution strategy: asked for explicitly
    with one, it is an error; by a model's default, it is skipped and said so
    (the card's ``stream_epochs_run`` is 0).
    """
    epochs = int(config.stream_epochs or 0)
    if epochs <= 0:
        return [], {}
    if not _stream_trainable(entry, model):
        if asked:
            progress(f"stream training skipped: {entry.name} has no LSTM/GRU state to carry across clips")
        return [], {}
    if config.distribute is not Distribution.NONE:
        if asked:
            raise HybridEdgeError(f"stream training (--stream-epochs) does not run under --distribute {config.distribute.value}")
        progress(f"stream training skipped: it does not run under --distribute {config.distribute.value}")
        return [], {}
    from training.streamfit import stream_fit

    x_train, x_val, x_test = xs
    _, test_acc = model.evaluate(x_test, dataset.test.y, verbose=0, batch_size=64)
    before = {"test_accuracy": float(test_acc),
              "test_stream_accuracy_per_step": _stream_metrics(model, entry, x_test, dataset.test.y)["accuracy_per_step"]}
    progress(f"before stream training: test accuracy {before['test_accuracy']:.3f}, "
             f"test stream per-step accuracy {before['test_stream_accuracy_per_step']:.3f}")

    cfg = _stream_fit_config(config)
    progress(f"stream training: {epochs} epochs, {cfg.batch_size} streams, state carried across clips")
    return stream_fit(model, x_train, dataset.train.y, cfg, x_val, dataset.val.y, progress), before


def _stream_fit_config(config: TrainConfig) -> Any:
    """The stream phase's settings: its own defaults, with the run's epochs, batch size (streams), learning rate, schedule and seed."""
    from training.streamfit import StreamFitConfig

    return StreamFitConfig(epochs=int(config.stream_epochs or 0), batch_size=int(config.batch_size),
                           learning_rate=float(config.stream_learning_rate), cosine=config.schedule == "cosine", seed=config.seed)


def _recording_metrics(model: Any, dataset: Dataset, points: int = RECORDING_POINTS) -> dict[str, Any]:
    """Scores on whole test recordings when the splits are windows cut from them (``ucr:...,window=N``).

    ``accuracy_at_end``: the decision after each recording's last step.
    ``accuracy_per_step``: the decision after ``points`` evenly spaced steps of
    each recording (the model run on that prefix, as a stream from the
    recording's start would give it), averaged over all of them.
    """
    rec = dataset.recordings
    fixed = model.inputs[0].shape[1]
    if rec is None or not len(rec.y) or (fixed is not None and fixed != rec.x.shape[1]):
        return {}
    x = dataset.preprocessing.normalize(rec.x)
    total = x.shape[1]
    prefixes, labels = [], []
    for i in range(len(rec.y)):
        length = int(rec.lengths[i]) if rec.lengths is not None else total
        start = total - length
        for end in np.unique(np.linspace(1, length, num=min(points, length)).round().astype(int)):
            prefix = np.zeros_like(x[i])  # the mask value: front padding
            prefix[total - end:] = x[i, start:start + end]
            prefixes.append(prefix)
            labels.append(int(rec.y[i]))
    probs = model.predict(np.stack(prefixes), verbose=0, batch_size=32)
    right = probs.argmax(-1) == np.array(labels)
    hits, n = int(right.sum()), len(labels)
    end_x = np.stack([x[i] for i in range(len(rec.y))])
    at_end = float(np.mean(model.predict(end_x, verbose=0, batch_size=32).argmax(-1) == rec.y))
    steps = int(rec.lengths.sum()) if rec.lengths is not None else total * len(rec.y)
    return {"recordings": len(rec.y), "steps": steps, "accuracy_at_end": at_end, "accuracy_per_step": hits / n,
            "per_step_points": points}


def _stream_metrics(model: Any, entry: ModelEntry, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Per-step accuracy of the float model on the test clips played as one no-reset stream."""
    if not _stream_trainable(entry, model):
        return {}
    from training.streamfit import build_stream_model, stream_accuracy

    stream = build_stream_model(model)
    out = stream_accuracy(stream, x_test, np.asarray(y_test))
    out["order"] = "test split order, no state reset; each step scored against the label of the clip playing"
    if stream.has_conv_buffer:
        out["note"] = "causal Conv1D buffer zeroed at each clip start here (the streaming runtime carries it)"
    return out


class _ProgressCallback:
    """A bar over epochs on a terminal, else one line per epoch; built lazily so importing this module needs no Keras."""

    def __new__(cls, progress: Callable[[str], None], epochs: int):
        import keras

        from edge.progress import Progress, bars

        class EpochProgress(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self._bar = Progress(epochs, "training", unit="epochs") if bars() else None

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                val = f" val_loss {logs['val_loss']:.3f} val_acc {logs.get('val_accuracy', 0):.3f}" if "val_loss" in logs else ""
                line = (f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', 0):.3f} acc {logs.get('accuracy', 0):.3f}"
                        f"{val} ({time.perf_counter() - self._t:.1f}s)")
                if self._bar is None:
                    progress(line)
                else:
                    self._bar.update()
                    self._bar.note(line.split(": ", 1)[1])

            def on_train_end(self, logs=None):
                if self._bar is not None:
                    self._bar.close()

        return EpochProgress()
