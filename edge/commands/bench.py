"""``hybrid-edge bench``: latency, throughput, memory, energy and accuracy of bundles, by benchmark rules."""

from __future__ import annotations

import argparse

from edge.commands import add_delegate_option, add_meter_option

EXAMPLE = "hybrid-edge bench bundles/float32 bundles/int8 --threads 1,2 --dataset ucr:data/BasicMotions --out bench/"


def _threads(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads takes a list like 1,2 (got {text!r})") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmarks.bench import BenchConfig  # the run rules' defaults live there, once

    d = BenchConfig()
    p.add_argument("bundles", nargs="+")
    p.add_argument("--threads", type=_threads, default=d.threads, help=f"comma-separated thread counts (default: {','.join(map(str, d.threads))})")
    p.add_argument("--runs", type=int, default=d.runs, help=f"minimum measured steps per repeat (default: {d.runs})")
    p.add_argument("--min-seconds", type=float, default=d.min_seconds, help=f"minimum measured seconds per repeat (default: {d.min_seconds:g})")
    p.add_argument("--warmup", type=int, default=d.warmup, help=f"steps run before measuring, not counted (default: {d.warmup})")
    p.add_argument("--repeats", type=int, default=d.repeats, help=f"timed repeats; their p50 spread is reported (default: {d.repeats})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="dataset spec: real inputs and accuracy checked in the same run")
    src.add_argument("--clips", help=".npz clip set instead of --dataset")
    p.add_argument("--split", default=d.split, choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="use a seeded subset of N items")
    add_meter_option(p)
    add_delegate_option(p)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", help="directory for results.json, report.md and report.html")
    p.add_argument("--compare-to", metavar="REF.json", help="reference file; regressions beyond its tolerance are marked")
    p.add_argument("--save-reference", metavar="BOARD", help="also write OUT/reference-BOARD.json from this run")


def run(args: argparse.Namespace) -> int:
    from benchmarks.bench import BenchConfig, run_bench
    from benchmarks.compare import compare, load_reference, make_reference
    from benchmarks.report import write_report
    from edge.evaluate import write_json

    reference = load_reference(args.compare_to) if args.compare_to else None  # fail before measuring
    cfg = BenchConfig(threads=args.threads, runs=args.runs, min_seconds=args.min_seconds, warmup=args.warmup,
                      repeats=args.repeats, dataset=args.dataset, clips=args.clips, split=args.split, limit=args.limit,
                      meter=args.meter, delegate=args.delegate, seed=args.seed)
    results = run_bench(args.bundles, cfg)
    if reference is not None:
        results["comparison"] = compare(results, reference)
        for row in results["comparison"]["rows"]:
            if row["status"] == "regression":
                print(f"REGRESSION {row['name']} {row['precision']} {row['mode']} {row['threads']}t: {'; '.join(row['problems'])}")
        print(f"{results['comparison']['regressions']} regression(s) against {args.compare_to}")
    for pair in results["streaming_vs_window"]:
        print(f"streaming vs window ({pair['precision']}, T={pair['window_frames']}, {pair['threads']}t): "
              f"{pair['streaming_p50_ms']:.3f} vs {pair['window_p50_ms']:.3f} ms/frame = {pair['speedup']:.1f}x "
              f"(target {pair['target_speedup']:.1f}x)")
    m = results["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores, board {m['board_model']}, governor {m['governor']}, "
          f"load {m['load_average'][0]:.2f} -> {results['load_average_after'][0]:.2f}")
    if args.out:
        write_json(f"{args.out}/results.json", results)
        if args.save_reference:
            write_json(f"{args.out}/reference-{args.save_reference}.json", make_reference(results, args.save_reference))
        paths = write_report(results, args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if not results.get("comparison", {}).get("regressions") else 1
