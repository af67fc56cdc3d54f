"""``hybrid-edge convert``: run dir -> bundle, in a worker process (imports TensorFlow lazily).

``--precision auto`` converts every applicable precision and keeps the fastest
(or smallest) one that holds an accuracy budget (:mod:`converters.search`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from edge.bundle import SEARCH_REPORT, VERIFY_REPORT

if TYPE_CHECKING:
    from converters.convert import ConvertOptions

EXAMPLE = "hybrid-edge convert runs/cnn_lstm --precision int8 --out bundles/cnn_lstm-int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from converters.convert import ConvertOptions  # the defaults live there, once
    from converters.formats import FORMATS
    from converters.search import AUTO, SearchConfig
    from edge.bundle.search_report import Objective

    d, s = ConvertOptions(), SearchConfig()
    p.add_argument("run_dir", help="a run directory written by `hybrid-edge train`")
    p.add_argument("--precision", default=d.precision, metavar="PRECISION",
                   help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
                   + f"; {AUTO}: try them all, keep the fastest that holds the budget, with {SEARCH_REPORT} (default: {d.precision})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--streaming", dest="mode", action="store_const", const="streaming",
                      help="one step + external state per frame (default for recurrent models)")
    mode.add_argument("--window", dest="mode", action="store_const", const="window",
                      help="the whole fixed-length clip per inference, batch 1 (recurrent layers unrolled)")
    p.set_defaults(mode="auto")
    p.add_argument("--calibration-samples", type=int, default=d.calibration_samples, help="steps of real data (with real states) for int8 ranges")
    p.add_argument("--calibration-stream", type=float, default=d.calibration_stream,
                   help="fraction of calibration steps taken from a long no-reset stream (long-stream state ranges)")
    p.add_argument("--cell-range-percentile", type=_percentile, default=d.cell_range_percentile, metavar="P|search|auto",
                   help="int8 range of LSTM cell states: this percentile of |c| seen in calibration (100: the full range); "
                        "search: the percentile whose bundle streams validation sequences closest to Keras; "
                        "auto (default): search for sensor sequences, 99.5 for video clips")
    p.add_argument("--recurrent-state", choices=("float", "int8"), default=d.recurrent_state,
                   help="int8 bundles: keep each LSTM cell state / GRU state and its element-wise update float32 "
                        "(float, default: the state keeps its resolution over long streams) or quantize them too "
                        "(int8: all-integer, for accelerators that run nothing else)")
    p.add_argument("--first-layer", choices=("auto", "float", "int8"), default=d.first_layer,
                   help="int8 sensor models that start with a causal convolution: keep the samples, that convolution "
                        "and its input buffer float32 (float: an int8 sample's rounding does not average out over a "
                        "slowly varying signal), quantize them too (int8: all-integer), or auto (default): float for "
                        "convolutional models such as tcn, int8 for recurrent ones such as rnn (measured worse there)")
    p.add_argument("--gate-range", choices=("search", "full"), default=d.gate_range,
                   help="int8 recurrent models: the range of the gate pre-activations (x·W + b, and the gate sum where it is int8), "
                        "narrowed by the factor whose bundle streams validation sequences closest to Keras (search, "
                        "default) or as calibrated (full)")
    p.add_argument("--verify-sequences", type=int, default=d.verify_sequences, help="test sequences to verify on (0: the whole test split)")
    p.add_argument("--stream-steps", type=int, default=d.stream_steps, help="length of the no-reset verification stream")
    p.add_argument("--no-verify", dest="verify", action="store_false", help=f"skip {VERIFY_REPORT}")
    p.add_argument("--strict", action="store_true",
                   help="exit 2 when the bundle misses the converter's targets (the verify warnings; with auto: the budget)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", help="bundle directory (default: RUN_DIR-PRECISION next to the run)")
    auto = p.add_argument_group(f"--precision {AUTO}")
    auto.add_argument("--max-drop", type=float, default=s.budget.max_drop, metavar="POINTS",
                      help=f"accuracy may fall this many points below Keras (default: {s.budget.max_drop:g})")
    auto.add_argument("--min-stream-agreement", type=float, default=s.budget.min_stream_agreement, metavar="X",
                      help=f"long no-reset stream step agreement to hold (default: {s.budget.min_stream_agreement:g})")
    auto.add_argument("--objective", choices=[o.value for o in Objective], default=s.objective.value,
                      help=f"what to minimise among the bundles that hold the budget (default: {s.objective.value})")
    auto.add_argument("--threads", type=int, default=s.threads, metavar="N", help="conversions at once (default: min(2, cores))")
    auto.add_argument("--candidates", default="", help=argparse.SUPPRESS)  # a comma list: try only these precisions


def run(args: argparse.Namespace) -> int:
    from edge.commands import require_extra

    require_extra("train")
    from converters.convert import ConvertOptions, check_options
    from converters.isolate import convert_run
    from converters.search import AUTO
    from converters.verify import require_targets, summary
    from edge.bundle.verify_report import read_verify_report
    from edge.errors import ConversionError

    out = args.out or str(Path(args.run_dir).with_name(f"{Path(args.run_dir).name}-{args.precision}"))
    options = ConvertOptions(
        precision=args.precision, calibration_samples=args.calibration_samples, calibration_stream=args.calibration_stream,
        cell_range_percentile=args.cell_range_percentile,
        recurrent_state=args.recurrent_state,
        first_layer=args.first_layer, gate_range=args.gate_range,
        seed=args.seed, mode=args.mode, verify=args.verify, verify_sequences=args.verify_sequences, stream_steps=args.stream_steps,
    )
    if args.strict and not args.verify:
        raise ConversionError("--strict checks the verify numbers; drop --no-verify")
    if args.precision == AUTO:
        return _run_auto(args, options, out)
    check_options(options)  # an unknown precision or a bad option: one line before any work
    bundle = convert_run(args.run_dir, out, options)
    print(f"wrote {bundle}")
    report = read_verify_report(bundle)
    if report is not None:
        print(summary(report))
        if args.strict:
            require_targets(report, bundle)
    return 0


def _run_auto(args: argparse.Namespace, options: "ConvertOptions", out: str) -> int:
    from converters.search import SearchConfig, search_precision
    from edge.bundle.search_report import Budget, Objective, choice_line, format_search_report
    from edge.errors import ConversionError

    config = SearchConfig(
        budget=Budget(args.max_drop, args.min_stream_agreement), objective=Objective(args.objective), threads=args.threads,
        candidates=tuple(c.strip() for c in args.candidates.split(",") if c.strip()), seed=args.seed,
    )
    bundle, report = search_precision(args.run_dir, out, options, config)
    print(format_search_report(report))
    print(f"wrote {bundle} ({report.chosen})")
    if args.strict and not report.chosen_candidate.meets_budget:
        raise ConversionError(f"--strict: {choice_line(report)}; the bundle was written to {bundle}")
    return 0


def _percentile(text: str) -> float | str:
    """``--cell-range-percentile``: a number, ``search`` or ``auto`` (checked against the range by the converter)."""
    if text in ("search", "auto"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, search or auto, got {text!r}") from None
