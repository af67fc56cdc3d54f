"""The ``hybrid-edge`` command (also ``python -m edge``).

Each subcommand is a few lines over a library function. Training and
conversion import their (TensorFlow) packages lazily, so ``run``/``eval`` on a
board never pay for — or need — TensorFlow. Expected failures print one line
and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from edge.errors import HybridEdgeError

EXAMPLES = {
    "quickstart": "hybrid-edge quickstart --out runs/quickstart --seed 0",
    "train": "hybrid-edge train --model cnn_lstm --dataset synthetic-actions:clips=300 --out runs/cnn_lstm",
    "convert": "hybrid-edge convert runs/cnn_lstm --precision int8 --out bundles/cnn_lstm-int8",
    "eval": "hybrid-edge eval bundles/cnn_lstm-int8 --clips runs/quickstart/data/test.npz --json eval.json",
    "inspect": "hybrid-edge inspect bundles/cnn_lstm-int8",
}


def _add(sub: Any, name: str, help_text: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=f"example:\n  {EXAMPLES[name]}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=fn)
    return p


def cmd_quickstart(args: argparse.Namespace) -> int:
    from benchmarks.quickstart import QuickstartConfig, run_quickstart

    run_quickstart(QuickstartConfig(out=Path(args.out), seed=args.seed, epochs=args.epochs))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    overrides = dict(kv.split("=", 1) for kv in args.set)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, overrides=overrides)
    out = train(args.model, args.dataset, args.out, cfg)
    print(f"wrote {out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    out = args.out or str(Path(args.run_dir).with_name(f"{Path(args.run_dir).name}-{args.precision}"))
    bundle = convert_run(args.run_dir, out, ConvertOptions(args.precision, args.calibration_samples, args.seed))
    print(f"wrote {bundle}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from edge.evaluate import evaluate_bundle, load_clipset

    clips = load_clipset(args.clips)
    reports = [evaluate_bundle(b, clips, num_threads=args.threads, meter=args.meter) for b in args.bundles]
    for r in reports:
        agree = r.get("agreement_with_float")
        print(f"{r['path']}: {r['precision']} accuracy {r['accuracy']:.3f}"
              + (f" agreement {agree:.3f}" if agree is not None else "")
              + f" p50 {r['latency_ms']['p50']:.3f} ms, {r['energy_mj_per_frame']:.3f} mJ/frame ({r['energy_source']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"bundles": reports}, indent=2) + "\n")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from edge.inspect import describe_bundle

    print(describe_bundle(args.bundle))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid-edge", description="Hybrid CNN-RNN models from Keras to int8 TFLite to edge boards.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = _add(sub, "quickstart", "generate data, train a CNN+LSTM, convert float32+int8, stream and report", cmd_quickstart)
    p.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=40)

    p = _add(sub, "train", "train a registered model on a dataset spec", cmd_train)
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, help="e.g. synthetic-actions:clips=300,seed=1")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--out", required=True)

    p = _add(sub, "convert", "convert a run directory to a bundle (streaming step model)", cmd_convert)
    p.add_argument("run_dir")
    p.add_argument("--precision", default="int8")
    p.add_argument("--calibration-samples", type=int, default=3200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")

    p = _add(sub, "eval", "stream a clip set through bundles; accuracy, agreement, latency, energy", cmd_eval)
    p.add_argument("bundles", nargs="+")
    p.add_argument("--clips", required=True, help=".npz clip set (clips, labels, label_names[, reference_probs])")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--meter", default="auto", help="auto, rapl or estimate:PROFILE")
    p.add_argument("--json")

    p = _add(sub, "inspect", "verify a bundle, summarise its manifest and run its golden self-test", cmd_inspect)
    p.add_argument("bundle")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HybridEdgeError as exc:
        print(f"hybrid-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hybrid-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
