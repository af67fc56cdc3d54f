"""Per-board reference results and regression marking (``bench --compare-to``).

A reference file (``benchmarks/reference/BOARD.json``) holds, per (model name,
precision, mode, threads), the p50 latency and accuracy of a real run plus the
tolerances. A new run is compared entry by entry: slower than
``p50 * (1 + latency)`` or less accurate than ``accuracy - accuracy_drop`` is a
regression.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.errors import DataError

DEFAULT_TOLERANCE = {"latency": 0.15, "accuracy_drop": 0.02}


def _key(r: dict[str, Any]) -> tuple[str, str, str, int]:
    return (str(r.get("name")), str(r["precision"]), str(r["mode"]), int(r["threads"]))


def make_reference(results: dict[str, Any], board: str, tolerance: dict[str, float] | None = None) -> dict[str, Any]:
    """A reference document from a bench results document."""
    m = results["machine"]
    return {
        "format": "hybrid-edge-bench-reference",
        "board": board,
        "machine": {k: m.get(k) for k in ("cpu_model", "cores", "board_model", "machine", "governor")},
        "versions": m.get("versions", {}),
        "created_utc": results["started_utc"],
        "load_average": m.get("load_average"),
        "tolerance": dict(tolerance or DEFAULT_TOLERANCE),
        "entries": [
            {"name": r.get("name"), "precision": r["precision"], "mode": r["mode"], "threads": r["threads"],
             "p50_ms": r["latency_ms"]["p50"], "size_bytes": r["size_bytes"], "accuracy": r.get("accuracy")}
            for r in results["results"]
        ],
    }


def load_reference(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        ref = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read reference ({exc})") from None
    if ref.get("format") != "hybrid-edge-bench-reference" or not isinstance(ref.get("entries"), list):
        raise DataError(f"{path}: not a hybrid-edge bench reference file")
    return ref


def compare(results: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Entry-by-entry comparison; each row says ``ok``, ``regression`` or ``no reference``."""
    tol = {**DEFAULT_TOLERANCE, **reference.get("tolerance", {})}
    by_key = {_key(e): e for e in reference["entries"]}
    rows = []
    for r in results["results"]:
        ref = by_key.get(_key(r))
        row: dict[str, Any] = {"name": r.get("name"), "precision": r["precision"], "mode": r["mode"], "threads": r["threads"],
                               "p50_ms": r["latency_ms"]["p50"], "accuracy": r.get("accuracy")}
        if ref is None:
            rows.append({**row, "status": "no reference"})
            continue
        problems = []
        ratio = r["latency_ms"]["p50"] / ref["p50_ms"]
        row.update(ref_p50_ms=ref["p50_ms"], latency_ratio=ratio)
        if ratio > 1 + tol["latency"]:
            problems.append(f"p50 {ratio:.2f}x the reference (tolerance {1 + tol['latency']:.2f}x)")
        if ref.get("accuracy") is not None and r.get("accuracy") is not None:
            row["ref_accuracy"] = ref["accuracy"]
            if r["accuracy"] < ref["accuracy"] - tol["accuracy_drop"]:
                problems.append(f"accuracy {r['accuracy']:.3f} < reference {ref['accuracy']:.3f} - {tol['accuracy_drop']}")
        rows.append({**row, "status": "regression" if problems else "ok", "problems": problems})
    return {"reference_board": reference.get("board"), "tolerance": tol, "rows": rows,
            "regressions": sum(r["status"] == "regression" for r in rows)}
