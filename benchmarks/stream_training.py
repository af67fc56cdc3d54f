"""Clip fit alone vs clip fit + stream training, for the CNN+RNN acceptance cases.

Each clip case of :mod:`benchmarks.convert_acceptance` is trained twice with
the same seed — ``--stream-epochs 0`` (``clip``) and the model's default stream
phase (``stream``) — converted to int8 and verified. Prints per-clip test
accuracy, the float model's per-step accuracy on the no-reset test stream
(model card), and the int8 bundle's sequence agreement, accuracy and 1000-step
no-reset stream agreement (``verify.json``). Existing runs and bundles under
``--out`` are reused. Run with ``nice``; it trains two models per case.

    python -m benchmarks.stream_training --out runs/stream --only cnn_lstm cnn_gru
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from edge.bundle import VERIFY_REPORT
from edge.bundle.verify_report import read_verify_report
from edge.rundir import RunDir


def run_variant(case: Any, variant: str, out: Path, seed: int) -> dict[str, Any]:
    """Train (or reuse) one variant of ``case``, convert it to int8 (or reuse), collect the numbers."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from training.train import TrainConfig, train

    run = out / "runs" / f"{case.name}-{variant}"
    if not RunDir(run).card_path.is_file():
        cfg = TrainConfig(epochs=case.epochs, patience=case.patience, seed=seed, overrides=case.overrides,
                          stream_epochs=0 if variant == "clip" else None)
        train(case.model, case.dataset, run, cfg, progress=lambda m: print(f"  {case.name}-{variant}: {m}", flush=True))
    bundle = out / "bundles" / f"{case.name}-{variant}-int8"
    if not (bundle / VERIFY_REPORT).is_file():
        convert_run(run, bundle, ConvertOptions("int8", seed=seed))
    card = RunDir(run).card().metrics
    v = read_verify_report(bundle)
    s = v.long_stream
    return {
        "case": case.name, "variant": variant, "stream_epochs": card.stream_epochs_run,
        "test_accuracy": card.test_accuracy,
        "card_stream_step_accuracy": (card.test_stream or {}).get("accuracy_per_step"),
        "int8_agreement": v.agreement, "int8_accuracy": v.accuracy_tflite, "keras_accuracy": v.accuracy_keras,
        "stream_steps": s.steps, "stream_agreement": s.step_agreement,
        "stream_step_accuracy_float": s.step_accuracy_reference, "stream_step_accuracy_int8": s.step_accuracy_converted,
        "state_max_abs": max(d["float_state_max_abs"] for d in s["state_drift"].values()),
    }


def _fmt(x: float | None) -> str:
    return "    -" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.convert_acceptance import cases
    from training.registry import get_entry

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="case names (default: every clip case)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  {platform.machine()}  load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    rows = [run_variant(c, variant, args.out, args.seed)
            for c in cases(args.seed, args.only) if get_entry(c.model).input_kind.value == "clip"
            for variant in ("clip", "stream")]
    print(f"{'case':10} {'variant':7} {'clip acc':>8} {'float step acc (card)':>21} {'int8 agree':>10} {'int8/keras acc':>14} "
          f"{'stream agree':>12} {'step acc float/int8':>19} {'max |state|':>11}")
    for r in rows:
        print(f"{r['case']:10} {r['variant']:7} {r['test_accuracy']:8.3f} {_fmt(r['card_stream_step_accuracy']):>21} "
              f"{r['int8_agreement']:10.3f} {r['int8_accuracy']:7.3f}/{r['keras_accuracy']:.3f} {r['stream_agreement']:12.3f} "
              f"{_fmt(r['stream_step_accuracy_float']):>11}/{_fmt(r['stream_step_accuracy_int8'])} {r['state_max_abs']:11.2f}")
    (args.out / "stream_training.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out / 'stream_training.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
