"""Stream labelled clips through a bundle exactly as ``run`` does, and score it.

Clip sets are ``.npz`` files with ``clips`` (N, T, H, W, C uint8, RGB),
``labels`` (N,), ``label_names`` and optionally ``reference_probs`` (N, K): the
float Keras model's probabilities at the last frame, for agreement.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import read_bundle
from edge.errors import DataError
from edge.measure.energy import make_meter
from edge.measure.latency import LatencyRecorder
from edge.streaming import StreamingSession


@dataclass(frozen=True)
class ClipSet:
    """Labelled clips and, optionally, reference probabilities from the float model."""

    clips: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    reference_probs: np.ndarray | None = None


def load_clipset(path: str | Path) -> ClipSet:
    """Read a clip-set ``.npz``; one clear error for anything missing or inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: clip set not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            clips, labels = data["clips"], data["labels"]
            names = tuple(str(v) for v in data["label_names"])
            ref = data["reference_probs"] if "reference_probs" in data.files else None
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a clip set ({exc})") from None
    if clips.ndim not in (4, 5) or len(clips) != len(labels):
        raise DataError(f"{path}: clips {clips.shape} and labels {labels.shape} do not match")
    return ClipSet(clips, labels.astype(np.int64), names, ref)


def evaluate_bundle(
    bundle_path: str | Path,
    clipset: ClipSet,
    num_threads: int = 1,
    delegate: str = "xnnpack",
    meter: str = "auto",
    warmup: int = 5,
) -> dict[str, Any]:
    """Stream every clip frame by frame (state reset per clip); predict at the last frame.

    Returns accuracy, agreement with the reference (float) predictions, per-frame
    latency percentiles per stage and energy per frame from ``meter``.
    """
    bundle = read_bundle(bundle_path)
    session = StreamingSession(bundle, num_threads=num_threads, delegate=delegate)
    if clipset.label_names and bundle.labels and tuple(bundle.labels) != clipset.label_names:
        raise DataError(f"{bundle.path}: bundle labels {list(bundle.labels)} differ from the clip set's")
    recorder = LatencyRecorder(warmup=warmup)
    energy = make_meter(meter)
    preds, last_probs = [], []
    frames = 0
    energy.start()
    t_start = time.perf_counter()
    for clip in clipset.clips:
        session.reset()
        frames_of_clip = clip if clip.ndim == 4 else clip[None]
        for frame in frames_of_clip:
            t0 = time.perf_counter()
            result = session.step(frame)
            recorder.record(
                preprocess=result.preprocess_ms,
                invoke=result.invoke_ms,
                postprocess=result.postprocess_ms,
                end_to_end=(time.perf_counter() - t0) * 1e3,
            )
            frames += 1
        preds.append(result.index)
        last_probs.append(result.probabilities)
    wall = time.perf_counter() - t_start
    reading = energy.stop()
    preds_a = np.asarray(preds)
    probs_a = np.stack(last_probs)
    report: dict[str, Any] = {
        "path": str(bundle.path),
        "precision": bundle.precision,
        "mode": session.mode.value,
        "backend": session.backend,
        "threads": num_threads,
        "size_bytes": bundle.size_bytes(),
        "clips": int(len(preds_a)),
        "frames": frames,
        "accuracy": float(np.mean(preds_a == clipset.labels)),
        "latency_ms": recorder.summary()["end_to_end"],
        "stages_ms": recorder.summary(),
        "fps": frames / wall if wall > 0 else 0.0,
        "energy_mj_per_frame": reading.joules * 1e3 / max(frames, 1),
        "average_watts": reading.watts,
        "energy_source": reading.source,
        "machine": platform.machine(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }
    if clipset.reference_probs is not None:
        ref = clipset.reference_probs
        report["agreement_with_float"] = float(np.mean(preds_a == ref.argmax(axis=1)))
        err = np.abs(probs_a - ref)
        report["prob_error"] = {"max": float(err.max()), "mean": float(err.mean())}
    return report
