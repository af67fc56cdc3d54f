"""``hybrid-edge models``: the registered models, their input kinds and whether they stream."""

from __future__ import annotations

import argparse

EXAMPLE = "hybrid-edge models --tests"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tests", action="store_true", help="include the tiny test_* variants")


def run(args: argparse.Namespace) -> int:
    from training.registry import get_entry, list_models  # imports no TensorFlow

    print(f"{'model':24s} {'input':9s} {'streams':7s} {'epochs':>6s}  description")
    for name in list_models(include_tests=args.tests):
        entry = get_entry(name)
        doc = (entry.config_cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:24s} {entry.input_kind.value:9s} {'yes' if entry.streamable else 'no':7s} {entry.fit.epochs:6d}  {doc}")
    return 0
