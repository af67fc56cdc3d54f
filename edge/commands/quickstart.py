"""``hybrid-edge quickstart``: the whole pipeline on synthetic actions in a few minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "hybrid-edge quickstart --out runs/quickstart --seed 0"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="clip-fit epochs (default: the model's)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (default: OUT/tensorflow.log)")


def run(args: argparse.Namespace) -> int:
    from edge.commands import require_extra

    require_extra("train")
    from benchmarks.quickstart import QuickstartConfig, run_quickstart

    run_quickstart(QuickstartConfig(out=Path(args.out), seed=args.seed, epochs=args.epochs, verbose=args.verbose))
    return 0
