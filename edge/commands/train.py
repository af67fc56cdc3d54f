"""``hybrid-edge train``: train a registered model on a dataset spec (imports TensorFlow lazily)."""

from __future__ import annotations

import argparse

NAME = "train"
ORDER = 10
HELP = "train a registered model on a dataset spec"
EXAMPLE = "hybrid-edge train --model rnn --dataset ucr:data/BasicMotions --out runs/rnn"

DATASETS = (
    "synthetic-actions[:classes=8,frames=16,size=48,clips=300,seed=0] | synthetic-shapes[:classes=6,size=32,images=100] | "
    "ucr:DIR[/NAME][,val=0.2] | video-folder:DIR[,frames=16,stride=2,size=64] | image-folder:DIR[,size=64]"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.distribute import Distribution
    from training.registry import SCHEDULES, list_models  # neither imports TensorFlow

    p.add_argument("--model", required=True, choices=list_models(), metavar="NAME", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--dataset", required=True, metavar="SPEC", help=DATASETS)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the model's")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (default: the model's)")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning rate: constant, or cosine decay to 0 over the epochs (default: the model's)")
    p.add_argument("--stream-epochs", type=int, default=None, metavar="N",
                   help="after the fit, fine-tune recurrent models on clip streams with the state carried across clips "
                        "(no reset) for N epochs; 0 = off (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override, e.g. units=64x64, cell=gru")
    p.add_argument("--distribute", choices=[d.value for d in Distribution], default="none",
                   help="tf.distribute strategy; multi-worker reads TF_CONFIG, the chief writes --out")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (default: discarded)")


def run(args: argparse.Namespace) -> int:
    from edge.errors import HybridEdgeError
    from training.quiet import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)
    from training.distribute import Distribution
    from training.train import TrainConfig, train

    bad = [kv for kv in args.set if "=" not in kv]
    if bad:
        raise HybridEdgeError(f"--set expects KEY=VALUE, got {bad[0]!r}")
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, patience=args.patience, schedule=args.schedule,
        stream_epochs=args.stream_epochs, seed=args.seed, distribute=Distribution(args.distribute), overrides=dict(kv.split("=", 1) for kv in args.set),
    )
    out = train(args.model, args.dataset, args.out, cfg)
    if out is not None:  # None: a non-chief multi-worker process, which writes nothing
        print(f"wrote {out}")
    return 0
