"""``hybrid-edge import``: a ``.tflite`` made by another tool -> a bundle every command serves (no TensorFlow)."""

from __future__ import annotations

import argparse

EXAMPLE = ("hybrid-edge import mobilenet_v2.tflite --out bundles/mobilenet --labels labels.txt "
           "--preprocess scale=1,mean=127.5,std=127.5")


def _state(text: str) -> tuple[str, str]:
    i, sep, o = text.partition(":")
    if not sep or not i or not o:
        raise argparse.ArgumentTypeError(f"--state takes INPUT:OUTPUT signature names (got {text!r})")
    return i, o


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .tflite file (float, int8, Edge TPU compiled, or a streaming model with state tensors)")
    p.add_argument("--out", required=True, help="the bundle directory to write (must not exist)")
    p.add_argument("--labels", help="a file with one label per line, or a,b,c (default: the file's TFLite metadata)")
    p.add_argument("--preprocess", default="", metavar="KEY=VALUE,...",
                   help="size=HxW,color=rgb|bgr,scale=X,mean=A/B/C,std=A/B/C,resize=area|linear "
                        "(default: the file's normalization metadata)")
    p.add_argument("--state", action="append", type=_state, default=[], metavar="INPUT:OUTPUT",
                   help="a recurrent state: the output fed back to the input next step (default: matched by name and shape)")
    p.add_argument("--mode", choices=("single", "streaming", "window"), help="default: from the input shape and states")
    p.add_argument("--signature", help="the signature to serve when the model has several")
    p.add_argument("--name", help="the bundle's model name (default: metadata name or file name)")
    p.add_argument("--seed", type=int, default=0, help="seed of the golden self-test input")


def run(args: argparse.Namespace) -> int:
    from edge.importer import ImportOptions, import_model, parse_labels, parse_preprocess
    from edge.inspect import describe_bundle

    options = ImportOptions(
        labels=parse_labels(args.labels) if args.labels else None, preprocess=parse_preprocess(args.preprocess),
        states=tuple(args.state), mode=args.mode, name=args.name, signature=args.signature, seed=args.seed,
    )
    out = import_model(args.model, args.out, options)
    print(f"wrote {out}")
    print(describe_bundle(out))
    return 0
