"""``hybrid-edge report``: re-render report.md and report.html from a bench results.json."""

from __future__ import annotations

import argparse

EXAMPLE = "hybrid-edge report bench/results.json --out bench/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results.json written by `hybrid-edge bench --out`")
    p.add_argument("--out", help="output directory (default: the results file's directory)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from benchmarks.report import write_report
    from edge.errors import DataError

    path = Path(args.results)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read bench results ({exc})") from None
    if doc.get("format") != "hybrid-edge-bench":
        raise DataError(f"{path}: not a hybrid-edge bench results file")
    paths = write_report(doc, args.out or path.parent)
    print("wrote " + ", ".join(str(p) for p in paths[1:]))
    return 0
