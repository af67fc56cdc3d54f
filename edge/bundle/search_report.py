"""``search.json``: how ``convert --precision auto`` chose a bundle's precision (written once, read here).

The search (:mod:`converters.search`) converts every applicable precision, keeps
the fastest (or smallest) one that holds the accuracy budget and writes a
:class:`SearchReport` into the chosen bundle; ``convert``, ``inspect``, ``bench``
and the report read it with :func:`read_search_report` and show it with
:func:`search_table`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.bundle.files import SEARCH_REPORT
from edge.bundle.verify_report import RATIO_TOLERANCE
from edge.errors import BundleError


class Objective(str, enum.Enum):
    """What the search minimises among the candidates that hold the budget."""

    LATENCY = "latency"  # median per-frame step time
    SIZE = "size"  # bytes of the model flatbuffers


@dataclass(frozen=True)
class Budget:
    """What a candidate must hold: accuracy within ``max_drop`` points of Keras, and long-stream agreement."""

    max_drop: float = 1.0  # percentage points of held-out accuracy below the Keras model
    min_stream_agreement: float = 0.98  # per-step agreement over the long no-reset stream (streaming bundles)

    def shortfall(self, accuracy: float, keras_accuracy: float, stream_agreement: float | None) -> float:
        """How far a candidate is from the budget (0: it holds it); accuracy and agreement miss add up.

        A bundle without a long stream (window or single-frame) holds the stream part.
        """
        acc_miss = max(0.0, keras_accuracy - self.max_drop / 100.0 - accuracy)
        stream_miss = 0.0 if stream_agreement is None else max(0.0, self.min_stream_agreement - stream_agreement)
        miss = acc_miss + stream_miss
        return 0.0 if miss < RATIO_TOLERANCE else miss


@dataclass(frozen=True)
class Candidate:
    """One precision tried: its verify numbers, latency and size, or the one-line error that ended it."""

    precision: str
    accuracy: float | None = None  # held-out accuracy of the bundle (its verify.json)
    agreement: float | None = None  # top-1 agreement with Keras on the same sequences
    stream_agreement: float | None = None  # long no-reset stream step agreement (None: not a streaming bundle)
    latency_ms: float | None = None  # median StreamingSession step, 1 thread
    size_bytes: int | None = None
    meets_budget: bool = False
    error: str | None = None
    shortfall: float | None = None  # Budget.shortfall (0 when it meets the budget)


@dataclass(frozen=True)
class SearchReport:
    """The keys of ``search.json``."""

    budget: Budget
    objective: Objective
    candidates: tuple[Candidate, ...]
    chosen: str
    cpu: str | None = None
    keras_accuracy: float | None = None
    latency_frames: int = 0  # steps per candidate behind latency_ms
    latency_threads: int = 1
    load_average: float | None = None  # 1-minute load average while latency was measured
    skipped: dict[str, str] = field(default_factory=dict)  # precision -> why it does not apply to this model

    @property
    def chosen_candidate(self) -> Candidate:
        return next(c for c in self.candidates if c.precision == self.chosen)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["objective"] = self.objective.value
        out["candidates"] = [asdict(c) for c in self.candidates]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SearchReport":
        report = cls(**{
            **d,
            "budget": Budget(**d["budget"]),
            "objective": Objective(d["objective"]),
            "candidates": tuple(Candidate(**c) for c in d["candidates"]),
            "skipped": dict(d.get("skipped", {})),
        })
        if not any(c.precision == report.chosen for c in report.candidates):
            raise ValueError(f"chosen {report.chosen!r} is not among the candidates")
        return report


def read_search_report(bundle_dir: str | Path) -> SearchReport | None:
    """The bundle's ``search.json``, or None when its precision was given rather than searched."""
    path = Path(bundle_dir) / SEARCH_REPORT
    if not path.is_file():
        return None
    try:
        return SearchReport.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: malformed search report ({exc})") from None


def write_search_report(bundle_dir: Path, report: SearchReport) -> None:
    """Write ``search.json`` (the caller re-hashes the manifest: it is a bundle file)."""
    (bundle_dir / SEARCH_REPORT).write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")


SEARCH_HEADER = ["precision", "accuracy", "agreement", "stream agreement", "latency ms", "size KB", "budget"]


def search_table(report: SearchReport) -> list[list[Any]]:
    """One row per candidate under :data:`SEARCH_HEADER` (None where there is no number); the choice is marked."""
    rows = []
    for c in report.candidates:
        mark = "chosen" if c.precision == report.chosen else ""
        if c.error is not None:
            rows.append([c.precision, None, None, None, None, None, f"error: {c.error}"])
            continue
        verdict = "meets" if c.meets_budget else f"misses by {100 * (c.shortfall or 0.0):.1f} pts"
        rows.append([c.precision, c.accuracy, c.agreement, c.stream_agreement, c.latency_ms,
                     None if c.size_bytes is None else c.size_bytes / 1024, f"{verdict}{', ' + mark if mark else ''}"])
    return rows


def choice_line(report: SearchReport) -> str:
    """One sentence: what was chosen, by which objective, and whether it holds the budget."""
    c = report.chosen_candidate
    b = report.budget
    budget = f"accuracy within {b.max_drop:g} point(s) of Keras"
    if report.keras_accuracy is not None:
        budget += f" ({report.keras_accuracy:.3f})"
    budget += f", stream agreement >= {b.min_stream_agreement:g}"
    measure = "fastest" if report.objective is Objective.LATENCY else "smallest"
    held = sum(1 for x in report.candidates if x.meets_budget)
    if c.meets_budget:
        return f"chose {c.precision}: the {measure} of {held} candidate(s) that meet the budget ({budget})"
    return (f"NO candidate meets the budget ({budget}); kept the closest, {c.precision} "
            f"(misses by {100 * (c.shortfall or 0.0):.1f} points), flagged meets_budget: false")


def format_search_report(report: SearchReport) -> str:
    """The candidates as an aligned text table, then the choice and how latency was measured."""

    def cell(v: Any, column: str) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}" if column == "latency ms" else f"{v:.3f}"
        return str(v)

    rows = [SEARCH_HEADER] + [[cell(v, h) for v, h in zip(row, SEARCH_HEADER)] for row in search_table(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(SEARCH_HEADER) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    lines += [f"skipped {name}: {why}" for name, why in report.skipped.items()]
    lines.append(choice_line(report))
    lines.append(f"latency: median of {report.latency_frames} steps per bundle, {report.latency_threads} thread, "
                 f"{report.cpu or 'unknown CPU'}, load average {report.load_average}")
    return "\n".join(lines)
