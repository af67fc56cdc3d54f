"""``hybrid-edge quickstart``: the whole path on an embedded default, in minutes.

Synthetic action videos -> CNN+LSTM trained in Keras (clip fit, then carried-state
stream fine-tuning) -> streaming step model as float32 and full-int8 bundles,
converted side by side in two worker processes (each verifies its bundle against
the Keras model: ``verify.json``) -> both bundles benchmarked on every held-out
clip, frame by frame, through the ``edge`` runtime in fresh processes (no
TensorFlow there) -> ``report.html`` / ``report.md`` / ``results.json`` (the
``bench --out`` report) and a short summary with the time each step took.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import HybridEdgeError
from edge.bundle.verify_report import read_verify_report
from edge.rundir import RunDir


@dataclass(frozen=True)
class QuickstartConfig:
    """Where to write, the seed, and the embedded defaults (``None``: the model's fit defaults)."""

    out: Path = Path("runs/quickstart")
    seed: int = 0
    epochs: int | None = None
    model: str = "cnn_lstm"
    dataset: str = "synthetic-actions:clips=400"
    precisions: tuple[str, ...] = ("float32", "int8")
    threads: int = 1
    verbose: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


OWNED = ("data", "run", "bundles", "report.json", "results.json", "report.md", "report.html", "tensorflow.log", "summary.txt")


class _Clock:
    """Prints ``[  12.3s] message`` lines and keeps each step's duration."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.steps: dict[str, float] = {}
        self._step: tuple[str, float] | None = None

    def say(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    def step(self, name: str, msg: str) -> None:
        self.end()
        self._step = (name, time.perf_counter())
        self.say(msg)

    def end(self) -> None:
        if self._step is not None:
            name, start = self._step
            self.steps[name] = round(time.perf_counter() - start, 1)
            self._step = None


def _clean(out: Path) -> None:
    """A re-run replaces what an earlier quickstart wrote, nothing else."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def run_quickstart(cfg: QuickstartConfig) -> dict[str, Any]:
    """Run every step; write the report next to the run and return the summary (``report.json``)."""
    if importlib.util.find_spec("matplotlib") is None:  # the report needs it: say so before minutes of training
        raise HybridEdgeError("the quickstart's report needs matplotlib: pip install -e '.[train,dev]' (make quickstart does)")
    out = cfg.out
    _clean(out)
    from training.quiet import quiet_tensorflow

    tf_log = quiet_tensorflow(out / "tensorflow.log", cfg.verbose)
    from training.data import load_dataset
    from training.data.cache import ENV as DATA_CACHE
    from training.train import TrainConfig, train

    os.environ.setdefault(DATA_CACHE, str((out / "data").resolve()))  # generated once here, read back by the conversion workers
    clock = _Clock()
    spec = f"{cfg.dataset},seed={cfg.seed}"
    clock.step("data", f"1/5 generating {spec}")
    dataset = load_dataset(spec)
    clock.step("train", f"2/5 training {cfg.model} (clip fit, then stream fine-tuning with carried state)")
    run_dir = train(cfg.model, dataset.spec, out / "run", TrainConfig(epochs=cfg.epochs, seed=cfg.seed, overrides=cfg.overrides),
                    progress=lambda m: clock.say(f"    {m}"), dataset=dataset)
    card = RunDir(run_dir).card()
    clips_path = out / "data" / "test.npz"
    clips_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(clips_path, clips=dataset.test.x, labels=dataset.test.y, label_names=np.array(dataset.label_names))

    clock.step("convert", f"3/5 converting to {' and '.join(cfg.precisions)} streaming step models "
                          f"({len(cfg.precisions)} worker processes side by side, each verifies its bundle)")
    bundles = convert_all(run_dir, out / "bundles", cfg.precisions, cfg.seed, clock)

    clock.step("evaluate", f"4/5 streaming {len(dataset.test.y)} test clips frame by frame through the edge runtime "
                           "and timing it (bench rules, fresh process per bundle)")
    from benchmarks.bench import BenchConfig, run_bench

    bench_cfg = BenchConfig(threads=(cfg.threads,), runs=200, min_seconds=1.0, warmup=20, repeats=3, clips=str(clips_path), seed=cfg.seed)
    doc = run_bench(bundles, bench_cfg, progress=lambda line: clock.say("    " + _short_bench_line(line)))

    clock.step("report", "5/5 writing the report")
    from benchmarks.report import summary_sentence, write_report
    from edge.evaluate import write_json

    doc["title"] = f"Quickstart: {cfg.model} on {dataset.spec.split(':')[0]}"
    write_json(out / "results.json", doc)
    paths = write_report(doc, out)
    clock.end()
    report = {
        "seed": cfg.seed,
        "dataset": dataset.spec,
        "model": cfg.model,
        "keras_float_accuracy": card.metrics.test_accuracy,
        "keras_stream_accuracy_per_step": (card.metrics.test_stream or {}).get("accuracy_per_step"),
        "chance_accuracy": 1.0 / dataset.num_classes,
        "bundles": [_bundle_row(r) for r in doc["results"]],
        "steps_seconds": clock.steps,
        "seconds": round(time.perf_counter() - clock.t0, 1),
        "report": str(paths[-1]),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    page = Path(paths[-1]).resolve()
    lines = [format_table(report), "", summary_sentence(doc), "",
             "steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in clock.steps.items()) + f"; total {report['seconds']:.1f} s",
             *([f"TensorFlow's own log: {tf_log}"] if tf_log is not None else []),
             f"report: {paths[-1]}  ({page.as_uri()})"]
    text = "\n".join(lines)
    print(text, flush=True)
    (out / "summary.txt").write_text(text + "\n")
    return report


def convert_all(run_dir: Path, out: Path, precisions: tuple[str, ...], seed: int, clock: _Clock) -> list[Path]:
    """Convert ``run_dir`` to every precision at once, one isolated worker process each."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    def one(precision: str) -> Path:
        t = time.perf_counter()
        path = convert_run(run_dir, out / precision, ConvertOptions(precision, seed=seed))
        verify = read_verify_report(path)
        stream = verify.long_stream
        clock.say(f"    {precision}: agreement with Keras {verify.agreement:.3f}, long no-reset stream "
                  f"{stream.step_agreement if stream else float('nan'):.3f} over {stream.steps if stream else 0} steps "
                  f"({time.perf_counter() - t:.1f} s)")
        return path

    with ThreadPoolExecutor(max_workers=len(precisions)) as pool:  # each thread waits on its own worker process
        return list(pool.map(one, precisions))


def _short_bench_line(line: str) -> str:
    """The bench progress line, without the long path prefix."""
    path, _, rest = line.partition(": ")
    return f"{Path(path).name}: {rest.split(', init')[0]}"


def _bundle_row(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("precision", "size_bytes", "accuracy", "agreement_with_float", "latency_ms", "energy_mj_per_inference",
            "energy_source", "fps", "backend", "threads", "items", "path")
    row = {k: r[k] for k in keep if k in r}
    if r.get("verify"):
        row["verify"] = r["verify"]
    return row


def format_table(report: dict[str, Any]) -> str:
    """A fixed-width table of the per-bundle results."""
    head = (f"{'precision':<10} {'size KB':>8} {'ratio':>6} {'accuracy':>9} {'agree':>6} {'stream':>7} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'mJ/frame':>9}  energy source")
    rows = [head, "-" * len(head)]
    base = next((b["size_bytes"] for b in report["bundles"] if b["precision"] == "float32"), None)
    for b in report["bundles"]:
        lat = b["latency_ms"]
        ratio = f"{b['size_bytes'] / base:.2f}" if base else "-"
        stream = b.get("verify", {}).get("long_stream_agreement")
        rows.append(
            f"{b['precision']:<10} {b['size_bytes'] / 1024:>8.1f} {ratio:>6} {b['accuracy']:>9.3f} "
            f"{b.get('agreement_with_float', float('nan')):>6.3f} {stream if stream is None else f'{stream:.3f}':>7} "
            f"{lat['p50']:>7.3f} {lat['p99']:>7.3f} {b['energy_mj_per_inference']:>9.4f}  {b['energy_source']}"
        )
    rows.append(f"Keras float accuracy {report['keras_float_accuracy']:.3f} (chance {report['chance_accuracy']:.3f}); "
                "agree = same top-1 as the float32 bundle; stream = per-step agreement with the float Keras model "
                f"on a long no-reset stream; latency per frame, {report['bundles'][0].get('threads', 1)} thread(s)")
    return "\n".join(rows)

