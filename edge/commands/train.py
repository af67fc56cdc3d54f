"""``hybrid-edge train``: train a registered model on a dataset spec (imports TensorFlow lazily)."""

from __future__ import annotations

import argparse

EXAMPLE = "hybrid-edge train --model rnn --dataset ucr:data/BasicMotions --out runs/rnn"

DATASETS = (
    "synthetic-actions[:classes=8,frames=16,size=48,clips=300,seed=0] | synthetic-shapes[:classes=6,size=32,images=100] | "
    "ucr:DIR[/NAME][,val=0.2] | video-folder:DIR[,frames=16,stride=2,size=64] | image-folder:DIR[,size=64]"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="NAME", help="a registered model (`hybrid-edge models` lists them)")
    p.add_argument("--dataset", required=True, metavar="SPEC", help=DATASETS)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the model's")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (default: the model's)")
    p.add_argument("--schedule", default=None, metavar="{constant,cosine}",
                   help="learning rate: constant, or cosine decay to 0 over the epochs (default: the model's)")
    p.add_argument("--stream-epochs", type=int, default=None, metavar="N",
                   help="after the fit, fine-tune recurrent models on clip streams with the state carried across clips "
                        "(no reset) for N epochs; 0 = off (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override, e.g. units=64x64, cell=gru")
    p.add_argument("--distribute", default="none", metavar="{none,mirrored,multi-worker}",
                   help="tf.distribute strategy; multi-worker reads TF_CONFIG, the chief writes --out")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (default: discarded)")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` arguments as a model config override.

    Raises:
        HybridEdgeError: an argument without ``=``.
    """
    from edge.errors import HybridEdgeError

    bad = [kv for kv in pairs if "=" not in kv]
    if bad:
        raise HybridEdgeError(f"--set expects KEY=VALUE, got {bad[0]!r}")
    return dict(kv.split("=", 1) for kv in pairs)


def run(args: argparse.Namespace) -> int:
    from edge.commands import require_extra
    from edge.errors import HybridEdgeError

    require_extra("train")
    from training.quiet import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)
    from training.distribute import Distribution
    from training.registry import get_entry
    from training.train import TrainConfig, train

    from training.registry import SCHEDULES

    get_entry(args.model)  # an unknown name is one line listing the registered ones
    if args.schedule is not None and args.schedule not in SCHEDULES:
        raise HybridEdgeError(f"--schedule {args.schedule!r}: choose one of {', '.join(SCHEDULES)}")
    overrides = parse_overrides(args.set)
    if args.distribute not in {d.value for d in Distribution}:
        raise HybridEdgeError(f"--distribute {args.distribute!r}: choose one of {', '.join(d.value for d in Distribution)}")
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, patience=args.patience, schedule=args.schedule,
        stream_epochs=args.stream_epochs, seed=args.seed, distribute=Distribution(args.distribute), overrides=overrides,
    )
    out = train(args.model, args.dataset, args.out, cfg)
    if out is not None:  # None: a non-chief multi-worker process, which writes nothing
        print(f"wrote {out}")
    return 0
