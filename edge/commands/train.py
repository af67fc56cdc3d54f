"""``hybrid-edge train``: train a registered model on a dataset spec (imports TensorFlow lazily)."""

from __future__ import annotations

import argparse

NAME = "train"
ORDER = 10
HELP = "train a registered model on a dataset spec"
EXAMPLE = "hybrid-edge train --model cnn_lstm --dataset synthetic-actions:clips=300 --out runs/cnn_lstm"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True, help="e.g. synthetic-actions:clips=300,seed=1")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    overrides = dict(kv.split("=", 1) for kv in args.set)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, overrides=overrides)
    out = train(args.model, args.dataset, args.out, cfg)
    print(f"wrote {out}")
    return 0
