"""``hybrid-edge convert``: run dir -> bundle, in a worker process (imports TensorFlow lazily)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "convert"
ORDER = 20
HELP = "convert a run directory to a bundle (streaming step model)"
EXAMPLE = "hybrid-edge convert runs/cnn_lstm --precision int8 --out bundles/cnn_lstm-int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--precision", default="int8")
    p.add_argument("--calibration-samples", type=int, default=3200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")


def run(args: argparse.Namespace) -> int:
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    out = args.out or str(Path(args.run_dir).with_name(f"{Path(args.run_dir).name}-{args.precision}"))
    bundle = convert_run(args.run_dir, out, ConvertOptions(args.precision, args.calibration_samples, args.seed))
    print(f"wrote {bundle}")
    return 0
