"""Stream labelled items through bundles exactly as ``run`` does, and score them.

Every item goes through a :class:`~edge.streaming.StreamingSession`: recurrent
states are fed back step by step (reset per item), variable-length series
stream only their real steps, window bundles see the last T frames, image
bundles get one frame. The decision is the probabilities after the last step.

Agreement is measured against a float reference: the float32 bundle given in
the same call, the float Keras model of a run directory (computed in a separate
process, so TensorFlow never enters this one), or reference probabilities
stored in the clip set.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge import adapters
from edge.bundle import Bundle, Mode, read_bundle
from edge.errors import DataError, HybridEdgeError
from edge.evalsets import ClipSet, align_labels, load_clipset, load_dataset_split, real_steps
from edge.measure.energy import EnergyReading, make_meter
from edge.measure.latency import LatencyRecorder
from edge.metrics import agreement, classification_scores
from edge.rundir import RunDir
from edge.streaming import StreamingSession

__all__ = ["ClipSet", "evaluate_bundle", "evaluate_bundles", "load_clipset", "load_dataset_split", "predict"]


@dataclass(frozen=True)
class Predictions:
    """Last-step probabilities per item plus what it cost to get them."""

    probs: np.ndarray
    recorder: LatencyRecorder
    steps: int
    wall_s: float
    energy: EnergyReading
    session: StreamingSession


class ItemStepper:
    """Feeds one item (clip, image or series) to a session step by step.

    Frames go through :meth:`StreamingSession.step` (the bundle's preprocessing);
    float series samples are standardised with the manifest's mean/std, then
    quantized into the input encoding.
    """

    def __init__(self, session: StreamingSession):
        self.session = session
        bundle = session.bundle
        first = bundle.graphs[0]
        roles = {s.role for s in first.inputs}
        self.input_spec = first.input("frame") if "frame" in roles else first.input("sample")
        self.is_sample = self.input_spec.role == "sample"
        self.probs_spec = bundle.graphs[-1].output("probabilities").as_adapter_spec()
        self.pre = bundle.preprocessing
        extra_dims = 2 if session.mode is Mode.WINDOW else 1
        self.step_ndim = len(self.input_spec.shape) - extra_dims

    def steps_of(self, item: np.ndarray, length: int | None) -> np.ndarray:
        """The steps to feed: the item itself if it is one step, else its real steps."""
        if item.ndim == self.step_ndim:
            return item[None]
        if item.ndim == self.step_ndim + 1:
            if self.session.mode is Mode.SINGLE:
                raise DataError(f"{self.session.bundle.path}: a single-frame bundle cannot take sequences of shape {item.shape}")
            return real_steps(item, length)
        raise DataError(f"item of shape {item.shape} does not fit input {self.input_spec.name!r} {list(self.input_spec.shape)}")

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """A float series sample in model units, by the bundle's preprocessing."""
        return self.pre.normalize(x)

    def step(self, x: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """One step: (probabilities, preprocess ms, invoke ms, postprocess ms).

        Frames take :meth:`StreamingSession.step`, the very call ``run`` makes.
        """
        if not self.is_sample:
            r = self.session.step(x)
            return r.probabilities, r.preprocess_ms, r.invoke_ms, r.postprocess_ms
        t0 = time.perf_counter()
        encoded = adapters.quantize(self.standardise(x), self.input_spec.as_adapter_spec())
        t1 = time.perf_counter()
        raw = self.session.step_encoded(encoded)
        t2 = time.perf_counter()
        probs = adapters.get_scores(raw, self.probs_spec)
        t3 = time.perf_counter()
        return probs, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3


def predict(
    bundle: Bundle,
    clipset: ClipSet,
    num_threads: int = 1,
    delegate: str | None = None,
    meter: str = "auto",
    warmup: int = 5,
    session: StreamingSession | None = None,
) -> Predictions:
    """Stream every item (state reset per item) and keep the last step's probabilities."""
    session = session or StreamingSession(bundle, num_threads=num_threads, delegate=delegate)
    stepper = ItemStepper(session)
    recorder = LatencyRecorder(warmup=warmup)
    energy = make_meter(meter)
    out: list[np.ndarray] = []
    steps = 0
    energy.start()
    t_start = time.perf_counter()
    from edge.progress import progress

    for i, item in enumerate(progress(clipset.clips, f"streaming {bundle.path.name}", unit="clips")):
        session.reset()
        length = None if clipset.lengths is None else int(clipset.lengths[i])
        probs = None
        for x in stepper.steps_of(np.asarray(item), length):
            t0 = time.perf_counter()
            probs, pre, inv, post = stepper.step(x)
            recorder.record(preprocess=pre, invoke=inv, postprocess=post, end_to_end=(time.perf_counter() - t0) * 1e3)
            steps += 1
        out.append(probs)
    wall = time.perf_counter() - t_start
    reading = energy.stop()
    return Predictions(np.stack(out).astype(np.float32), recorder, steps, wall, reading, session)




def score(bundle: Bundle, clipset: ClipSet, pred: Predictions, num_threads: int,
          reference: np.ndarray | None = None, reference_name: str | None = None) -> dict[str, Any]:
    """The JSON report of one bundle's predictions."""
    num_classes = pred.probs.shape[1]
    if clipset.labels.size and int(clipset.labels.max()) >= num_classes:
        raise DataError(f"labels go up to {int(clipset.labels.max())} but {bundle.path} has {num_classes} classes")
    summary = pred.recorder.summary()
    report: dict[str, Any] = {
        "path": str(bundle.path),
        "name": bundle.name,
        "precision": bundle.precision,
        "mode": pred.session.mode.value,
        "backend": pred.session.backend,
        "threads": num_threads,
        "size_bytes": bundle.size_bytes(),
        "data": clipset.source,
        "clips": int(len(pred.probs)),
        "frames": pred.steps,
        **classification_scores(clipset.labels, pred.probs, num_classes),
        "labels": list(bundle.labels) or list(clipset.label_names),
        "latency_ms": summary.get("end_to_end", {}),
        "stages_ms": summary,
        "fps": pred.steps / pred.wall_s if pred.wall_s > 0 else 0.0,
        "energy_mj_per_frame": pred.energy.joules * 1e3 / max(pred.steps, 1),
        "average_watts": pred.energy.watts,
        "energy_source": pred.energy.source,
        "energy_estimated": pred.energy.estimated,
        "machine": platform.machine(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
    }
    if reference is not None:
        report.update(agreement(pred.probs, reference))
        report["reference"] = reference_name
    return report


def evaluate_bundle(
    bundle_path: str | Path,
    clipset: ClipSet,
    num_threads: int = 1,
    delegate: str | None = None,
    meter: str = "auto",
    warmup: int = 5,
) -> dict[str, Any]:
    """Score one bundle; agreement against the clip set's stored reference, if any."""
    bundle = read_bundle(bundle_path)
    clipset = align_labels(clipset, bundle.labels, str(bundle.path))
    pred = predict(bundle, clipset, num_threads, delegate, meter, warmup)
    return score(bundle, clipset, pred, num_threads, clipset.reference_probs,
                 "clip set reference_probs" if clipset.reference_probs is not None else None)


def evaluate_bundles(
    bundle_paths: list[str | Path],
    clipset: ClipSet,
    num_threads: int = 1,
    delegate: str | None = None,
    meter: str = "auto",
    reference_run: str | Path | None = None,
) -> dict[str, Any]:
    """Score several bundles on the same items against one float reference.

    The reference is, in order: the Keras model of ``reference_run``; the
    float32 bundle among ``bundle_paths``; the clip set's ``reference_probs``.
    """
    bundles = [read_bundle(p) for p in bundle_paths]
    if bundles:
        clipset = align_labels(clipset, bundles[0].labels, str(bundles[0].path))
    for b in bundles[1:]:
        if b.labels and tuple(b.labels) != clipset.label_names:
            raise DataError(f"{b.path}: labels {list(b.labels)} differ from {bundles[0].path}'s; compare bundles of one model")
    preds = [predict(b, clipset, num_threads, delegate, meter) for b in bundles]
    reference, name = None, None
    if reference_run is not None:
        reference, name = keras_reference_probs(reference_run, clipset), f"keras:{reference_run}"
    else:
        floats = [i for i, b in enumerate(bundles) if b.precision == "float32"]
        if floats:
            reference, name = preds[floats[0]].probs, f"bundle:{bundles[floats[0]].path}"
        elif clipset.reference_probs is not None:
            reference, name = clipset.reference_probs, "clip set reference_probs"
    reports = [score(b, clipset, p, num_threads, reference, name) for b, p in zip(bundles, preds)]
    return {"data": clipset.source, "items": len(clipset), "reference": name, "bundles": reports}


def keras_reference_probs(run_dir: str | Path, clipset: ClipSet, timeout: float = 1800) -> np.ndarray:
    """The float Keras model's last-step probabilities, computed in a separate process.

    The child (``python -m benchmarks.keras_reference``) imports TensorFlow; this
    process never does.
    """
    run_dir = RunDir(run_dir).check().path
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-ref-") as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays = {"clips": clipset.clips}
        if clipset.lengths is not None:
            arrays["lengths"] = clipset.lengths
        np.savez(inp, **arrays)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "benchmarks.keras_reference", str(run_dir), str(inp), str(out)]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=timeout)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
            raise HybridEdgeError(f"reference model failed: {lines[-1] if lines else proc.returncode}")
        with np.load(out) as data:
            probs = data["probs"]
    if len(probs) != len(clipset):
        raise HybridEdgeError(f"reference model returned {len(probs)} rows for {len(clipset)} items")
    return probs


def write_json(path: str | Path, obj: Any) -> None:
    """Write a report as indented JSON (creating parent directories)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")
