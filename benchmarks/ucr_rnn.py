"""Train ``rnn`` with its defaults on real UEA/UCR sensor archives; print test accuracy and wall time.

    python -m benchmarks.ucr_rnn [--problems BasicMotions JapaneseVowels] [--model rnn] [--seed 0] [--json out.json]

The archives come from :func:`benchmarks.datasets.ucr_archive` (PyPI only).
Every number printed is measured in this run: test accuracy on the archive's
own TEST file, wall time of the whole ``train`` call (data loading, fit with
early stopping, test evaluation, saving), and the load average before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.datasets import ucr_archive
from edge.rundir import RunDir


def run_problem(name: str, model: str, seed: int, out_root: Path, verbose: bool) -> dict[str, Any]:
    """Train one problem; return its measured row."""
    from training.data import load_dataset
    from training.train import TrainConfig, train

    folder = ucr_archive(name)
    dataset = load_dataset(f"ucr:{folder}")
    lengths = [int(v) for s in (dataset.train, dataset.val, dataset.test) for v in s.lengths]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    run = train(model, dataset.spec, out_root / name, TrainConfig(seed=seed), progress=print if verbose else (lambda m: None), dataset=dataset)
    wall = time.perf_counter() - t0
    card = RunDir(run).card()
    return {
        "problem": name,
        "model": model,
        "dims": int(dataset.train.x.shape[2]),
        "classes": dataset.num_classes,
        "train": len(dataset.train.y) + len(dataset.val.y),
        "test": len(dataset.test.y),
        "length": [min(lengths), max(lengths)],
        "epochs": card.metrics.epochs_run,
        "test_accuracy": card.metrics.test_accuracy,
        "wall_s": round(wall, 1),
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=["BasicMotions", "JapaneseVowels"])
    p.add_argument("--model", default="rnn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--verbose", action="store_true", help="print every epoch")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ucr-rnn-") as tmp:
        for name in args.problems:
            rows.append(run_problem(name, args.model, args.seed, Path(tmp), args.verbose))
            r = rows[-1]
            print(f"{r['problem']}: test accuracy {r['test_accuracy']:.3f} in {r['wall_s']:.1f} s ({r['epochs']} epochs)", flush=True)
    import tensorflow as tf

    print(f"\nmachine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}; tensorflow {tf.__version__}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}")
    header = f"{'problem':24s} {'model':6s} {'dims':>4s} {'cls':>3s} {'train':>5s} {'test':>5s} {'length':>9s} {'epochs':>6s} {'test acc':>8s} {'wall s':>7s} {'load 1m':>11s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        length = f"{r['length'][0]}-{r['length'][1]}" if r["length"][0] != r["length"][1] else str(r["length"][0])
        print(f"{r['problem']:24s} {r['model']:6s} {r['dims']:4d} {r['classes']:3d} {r['train']:5d} {r['test']:5d} {length:>9s} "
              f"{r['epochs']:6d} {r['test_accuracy']:8.3f} {r['wall_s']:7.1f} {r['load'][0]:5.2f}->{r['load'][1]:<5.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
