"""``hybrid-edge convert``: run dir -> bundle, in a worker process (imports TensorFlow lazily)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.bundle import VERIFY_REPORT

EXAMPLE = "hybrid-edge convert runs/cnn_lstm --precision int8 --out bundles/cnn_lstm-int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from converters.convert import ConvertOptions  # the defaults live there, once
    from converters.formats import FORMATS

    d = ConvertOptions()
    p.add_argument("run_dir", help="a run directory written by `hybrid-edge train`")
    p.add_argument("--precision", default=d.precision, metavar="PRECISION",
                   help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()) + f" (default: {d.precision})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--streaming", dest="mode", action="store_const", const="streaming",
                      help="one step + external state per frame (default for recurrent models)")
    mode.add_argument("--window", dest="mode", action="store_const", const="window",
                      help="the whole fixed-length clip per inference, batch 1 (recurrent layers unrolled)")
    p.set_defaults(mode="auto")
    p.add_argument("--calibration-samples", type=int, default=d.calibration_samples, help="steps of real data (with real states) for int8 ranges")
    p.add_argument("--calibration-stream", type=float, default=d.calibration_stream,
                   help="fraction of calibration steps taken from a long no-reset stream (long-stream state ranges)")
    p.add_argument("--cell-range-percentile", type=float, default=d.cell_range_percentile,
                   help="int8 range of LSTM cell states: this percentile of |c| seen in calibration (100: the full range); "
                        "default: the percentile whose bundle streams validation sequences closest to Keras")
    p.add_argument("--verify-sequences", type=int, default=d.verify_sequences, help="test sequences to verify on (0: the whole test split)")
    p.add_argument("--stream-steps", type=int, default=d.stream_steps, help="length of the no-reset verification stream")
    p.add_argument("--no-verify", dest="verify", action="store_false", help=f"skip {VERIFY_REPORT}")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", help="bundle directory (default: RUN_DIR-PRECISION next to the run)")


def run(args: argparse.Namespace) -> int:
    from edge.commands import require_extra

    require_extra("train")
    from converters.convert import ConvertOptions, check_options
    from converters.isolate import convert_run
    from converters.verify import summary
    from edge.bundle.verify_report import read_verify_report

    out = args.out or str(Path(args.run_dir).with_name(f"{Path(args.run_dir).name}-{args.precision}"))
    options = ConvertOptions(
        precision=args.precision, calibration_samples=args.calibration_samples, calibration_stream=args.calibration_stream,
        cell_range_percentile=args.cell_range_percentile,
        seed=args.seed, mode=args.mode, verify=args.verify, verify_sequences=args.verify_sequences, stream_steps=args.stream_steps,
    )
    check_options(options)  # an unknown precision or a bad option: one line before any work
    bundle = convert_run(args.run_dir, out, options)
    print(f"wrote {bundle}")
    report = read_verify_report(bundle)
    if report is not None:
        print(summary(report))
    return 0
