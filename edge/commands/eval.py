"""``hybrid-edge eval``: stream labelled clips through bundles exactly as ``run`` does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "eval"
ORDER = 30
HELP = "stream a clip set through bundles; accuracy, agreement, latency, energy"
EXAMPLE = "hybrid-edge eval bundles/cnn_lstm-int8 --clips runs/quickstart/data/test.npz --json eval.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+")
    p.add_argument("--clips", required=True, help=".npz clip set (clips, labels, label_names[, reference_probs])")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--meter", default="auto", help="auto, rapl, hwmon, ina219, pi5-pmic, csv:FILE or estimate:PROFILE")
    p.add_argument("--json")


def run(args: argparse.Namespace) -> int:
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
