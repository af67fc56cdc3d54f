"""``hybrid-edge quickstart``: the whole path on an embedded default, in minutes.

Synthetic action videos -> CNN+LSTM trained in Keras -> streaming step model as
float32 and full-int8 bundles -> every held-out clip streamed frame by frame
through the ``edge`` runtime in a separate process (no TensorFlow there) ->
table + ``report.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import HybridEdgeError
from edge.rundir import RunDir


@dataclass(frozen=True)
class QuickstartConfig:
    """Where to write, the seed, and the embedded defaults."""

    out: Path = Path("runs/quickstart")
    seed: int = 0
    epochs: int = 40
    model: str = "cnn_lstm"
    dataset: str = "synthetic-actions:clips=400"
    precisions: tuple[str, ...] = ("float32", "int8")
    threads: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)


OWNED = ("data", "run", "bundles", "report.json")


def _say(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)


def run_quickstart(cfg: QuickstartConfig) -> dict[str, Any]:
    """Run every stage and return the report (also written to ``out/report.json``)."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from training.data import load_dataset
    from training.train import TrainConfig, train

    t0 = time.perf_counter()
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:  # a re-run replaces what an earlier quickstart wrote, nothing else
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

    spec = f"{cfg.dataset},seed={cfg.seed}"
    _say(f"1/4 generating {spec}", t0)
    dataset = load_dataset(spec)
    _say(f"2/4 training {cfg.model} ({cfg.epochs} epochs max, early stopping)", t0)
    run_dir = train(cfg.model, dataset.spec, out / "run",
                    TrainConfig(epochs=cfg.epochs, seed=cfg.seed, patience=8, overrides=cfg.overrides),
                    progress=lambda m: _say(f"    {m}", t0), dataset=dataset)

    import keras

    model = keras.saving.load_model(RunDir(run_dir).model, safe_mode=True)
    x_test = dataset.preprocessing.normalize(dataset.test.x)
    reference = model.predict(x_test, batch_size=64, verbose=0)
    float_keras_acc = float(np.mean(reference.argmax(1) == dataset.test.y))
    clips_path = out / "data" / "test.npz"
    clips_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(clips_path, clips=dataset.test.x, labels=dataset.test.y,
                        label_names=np.array(dataset.label_names), reference_probs=reference)

    bundles = []
    for precision in cfg.precisions:
        _say(f"3/4 converting to {precision} streaming step model (isolated process)", t0)
        bundles.append(convert_run(run_dir, out / "bundles" / precision, ConvertOptions(precision, seed=cfg.seed)))

    _say(f"4/4 streaming {len(dataset.test.y)} test clips frame by frame through the edge runtime", t0)
    results = stream_bundles(bundles, clips_path, cfg.threads, out)
    report = {
        "seed": cfg.seed,
        "dataset": dataset.spec,
        "model": cfg.model,
        "keras_float_accuracy": float_keras_acc,
        "chance_accuracy": 1.0 / dataset.num_classes,
        "bundles": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    _say(f"wrote {out / 'report.json'}", t0)
    return report


def stream_bundles(bundles: list[Path], clips_path: Path, threads: int, out: Path) -> list[dict[str, Any]]:
    """Evaluate bundles with ``python -m edge eval`` in a fresh process without TensorFlow."""
    json_path = out / "data" / "eval.json"
    cmd = [sys.executable, "-m", "edge", "eval", *map(str, bundles), "--clips", str(clips_path),
           "--threads", str(threads), "--json", str(json_path)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise HybridEdgeError(f"edge evaluation failed: {lines[-1] if lines else proc.returncode}")
    results = json.loads(json_path.read_text())["bundles"]
    keep = ("precision", "size_bytes", "accuracy", "agreement_with_float", "latency_ms", "energy_mj_per_frame",
            "energy_source", "fps", "backend", "threads", "frames", "prob_error", "tensorflow_imported", "path")
    return [{k: r[k] for k in keep if k in r} for r in results]


def format_table(report: dict[str, Any]) -> str:
    """A fixed-width table of the per-bundle results."""
    head = f"{'precision':<10} {'size KB':>8} {'ratio':>6} {'accuracy':>9} {'agree':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'mJ/frame':>9}  energy source"
    rows = [head, "-" * len(head)]
    base = next((b["size_bytes"] for b in report["bundles"] if b["precision"] == "float32"), None)
    for b in report["bundles"]:
        lat = b["latency_ms"]
        ratio = f"{b['size_bytes'] / base:.2f}" if base else "-"
        rows.append(
            f"{b['precision']:<10} {b['size_bytes'] / 1024:>8.1f} {ratio:>6} {b['accuracy']:>9.3f} "
            f"{b.get('agreement_with_float', float('nan')):>6.3f} {lat['p50']:>7.3f} {lat['p90']:>7.3f} {lat['p99']:>7.3f} "
            f"{b['energy_mj_per_frame']:>9.4f}  {b['energy_source']}"
        )
    rows.append(f"Keras float accuracy {report['keras_float_accuracy']:.3f} (chance {report['chance_accuracy']:.3f}); "
                f"latency per frame, streaming, {report['bundles'][0].get('threads', 1)} thread(s)")
    return "\n".join(rows)
