"""``hybrid-edge eval``: stream labelled data through bundles exactly as ``run`` does."""

from __future__ import annotations

import argparse

from edge.commands import add_delegate_option, add_meter_option

EXAMPLE = "hybrid-edge eval bundles/float32 bundles/int8 --dataset ucr:data/BasicMotions --json eval.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+", help="bundle directories; a float32 one is the agreement reference")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset spec, e.g. ucr:DIR, video-folder:DIR, image-folder:DIR")
    src.add_argument("--clips", help=".npz clip set (clips, labels, label_names[, reference_probs, lengths])")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split of --dataset (default: test)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items")
    p.add_argument("--reference", metavar="RUN_DIR", help="agreement against this run's float Keras model (computed in a subprocess)")
    p.add_argument("--threads", type=int, default=1)
    add_delegate_option(p)
    add_meter_option(p)
    p.add_argument("--json", help="write the full report here")


def run(args: argparse.Namespace) -> int:
    from edge.evaluate import evaluate_bundles, load_clipset, load_dataset_split, write_json
    from edge.metrics import describe_disagreements

    data = load_clipset(args.clips) if args.clips else load_dataset_split(args.dataset, args.split)
    result = evaluate_bundles(args.bundles, data.subset(args.limit), num_threads=args.threads,
                              delegate=args.delegate, meter=args.meter, reference_run=args.reference)
    print(f"{result['items']} items from {result['data']}; reference: {result['reference'] or 'none'}")
    for r in result["bundles"]:
        agree = r.get("agreement_with_float")
        extra = ""
        if agree is not None:
            differ = describe_disagreements(r["disagreements"])
            extra = (f" agreement {agree:.3f} ({differ + '; ' if differ else ''}prob err mean {r['prob_error']['mean']:.4f} "
                     f"max {r['prob_error']['max']:.4f})")
        print(f"{r['path']}: {r['precision']} {r['mode']} accuracy {r['accuracy']:.3f} macro-F1 {r['macro_f1']:.3f}{extra}; "
              f"p50 {r['latency_ms'].get('p50', float('nan')):.3f} ms/step, {r['energy_mj_per_frame']:.3f} mJ/step ({r['energy_source']})")
    if args.json:
        write_json(args.json, result)
    return 0
