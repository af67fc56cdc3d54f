"""Regenerate the published results table in docs/benchmarks.md from real bench runs.

``python -m benchmarks.results_table RESULTS.json [RESULTS.json ...] [--readme docs/benchmarks.md]``
replaces the text between ``<!-- results:start -->`` and ``<!-- results:end -->``
with a table built from the given ``hybrid-edge bench`` results (plus the
machine and load they were measured under). Nothing outside the markers changes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from edge.errors import DataError

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _cell(v: Any, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _local(text: str) -> str:
    """Drop the directories of absolute paths: the table names data, not one machine's folders."""
    return re.sub(r"(?<![\w.])/(?:[^/\s,]+/)+", "", text)


def table(docs: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per measured bundle and thread count, then where it ran."""
    lines = ["| bundle | model | precision | mode | threads | size KB | p50 ms | p99 ms | speedup vs float32 | size vs float32 | accuracy | agreement | mJ/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for doc in docs:
        prec = {(p["path"], p["threads"]): p for p in doc["precisions"]}
        for r in doc["results"]:
            p = prec.get((r["path"], r["threads"]), {})
            energy = f"{r['energy_mj_per_inference']:.3f}" + (" (est.)" if r["energy_estimated"] else "")
            lines.append(f"| {Path(r['path']).name} | {r.get('name')} | {r['precision']} | {r['mode']} | {r['threads']} | {r['size_bytes'] / 1024:.1f} | "
                         f"{r['latency_ms']['p50']:.3f} | {r['latency_ms']['p99']:.3f} | {_cell(p.get('speedup_vs_float32'), '.2f')} | "
                         f"{_cell(p.get('size_ratio_vs_float32'), '.2f')} | {_cell(r.get('accuracy'))} | {_cell(r.get('agreement_with_float'))} | {energy} |")
        for pair in doc.get("streaming_vs_window", []):
            notes.append(f"streaming vs window recompute ({pair['precision']}, T={pair['window_frames']}, {pair['threads']} thread): "
                         f"{pair['streaming_p50_ms']:.3f} vs {pair['window_p50_ms']:.3f} ms per frame = {pair['speedup']:.1f}x")
        m = doc["machine"]
        data = _local(doc["data"]["source"]) if doc.get("data") else "seeded random inputs"
        notes.append(f"{doc['started_utc']}: {m['cpu_model']}, {m['cores']} cores, board {m['board_model'] or '-'}, "
                     f"load {m['load_average'][0]:.2f}; data: {data}; energy source {', '.join(sorted({r['energy_source'] for r in doc['results']}))}")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def update_readme(readme: Path, docs: list[dict[str, Any]]) -> None:
    text = readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise DataError(f"{readme}: needs the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table(docs)}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.results_table", description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="results.json files written by `hybrid-edge bench --out`")
    p.add_argument("--readme", default="docs/benchmarks.md", help="the Markdown file holding the markers (default: docs/benchmarks.md)")
    args = p.parse_args(argv)
    docs = []
    for path in args.results:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != "hybrid-edge-bench":
            raise SystemExit(f"{path}: not a hybrid-edge bench results file")
        docs.append(doc)
    update_readme(Path(args.readme), docs)
    print(f"updated {args.readme} from {len(docs)} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
