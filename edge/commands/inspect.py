"""``hybrid-edge inspect``: verify a bundle, summarise it and run its golden self-test."""

from __future__ import annotations

import argparse

EXAMPLE = "hybrid-edge inspect bundles/cnn_lstm-int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle")


def run(args: argparse.Namespace) -> int:
    from edge.inspect import describe_bundle

    print(describe_bundle(args.bundle))
    return 0
