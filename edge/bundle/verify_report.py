"""``verify.json``: what the converter proved about a bundle, as typed records (written once, read here).

The converter (:mod:`converters.verify`) builds a :class:`VerifyReport` and writes
``to_json()``; ``inspect``, reports and benchmarks read it with :func:`read_verify_report`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.bundle.files import VERIFY_REPORT
from edge.errors import BundleError

#: slack when an accuracy or agreement is compared with a target: they are ratios of counts, and Keras reports
#: accuracy in float32 (0.74 is 0.7400000095), so exactly 2 points must not read as more than 2
RATIO_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ProbError:
    """Absolute probability error against the float reference."""

    max: float
    mean: float


@dataclass(frozen=True)
class StateDrift:
    """Mean |converted state - float state| over the first and last tenth of a long stream."""

    mean_abs_first_10pct: float
    mean_abs_last_10pct: float
    max_mean_abs: float
    float_state_max_abs: float


@dataclass(frozen=True)
class LongStream:
    """Test sequences played back to back with no reset: per-step agreement, accuracy and state drift."""

    steps: int
    sequences_concatenated: int
    reference: str
    step_agreement: float
    step_accuracy_reference: float
    step_accuracy_converted: float
    prob_error: ProbError
    state_drift: dict[str, StateDrift] = field(default_factory=dict)

    @property
    def worst_drift(self) -> float:
        """The largest last-tenth drift over all states (0 without states)."""
        return max((d.mean_abs_last_10pct for d in self.state_drift.values()), default=0.0)


@dataclass(frozen=True)
class FrameByFrame:
    """The bundle vs the float step model after every frame of a few sequences."""

    steps: int
    max_abs_prob_error: float


@dataclass(frozen=True)
class VerifyReport:
    """Held-out agreement and accuracy of a bundle vs its Keras model (the keys of ``verify.json``)."""

    precision: str
    mode: str
    sequences: int
    agreement: float
    accuracy_keras: float
    accuracy_tflite: float
    prob_error: ProbError
    degenerate: bool
    predicted_classes: int
    frame_by_frame: FrameByFrame | None = None
    long_stream: LongStream | None = None
    per_layer: list[dict[str, Any]] = field(default_factory=list)  # per integer graph: worst layers (free-form detail)
    warnings: tuple[str, ...] = ()
    disagreements: dict[str, Any] | None = None  # edge.metrics.disagreements against Keras (absent in older bundles)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "VerifyReport":
        s = d.get("long_stream")
        stream = None if s is None else LongStream(
            **{**s, "prob_error": ProbError(**s["prob_error"]),
               "state_drift": {k: StateDrift(**v) for k, v in s.get("state_drift", {}).items()}})
        f = d.get("frame_by_frame")
        return cls(**{**d, "prob_error": ProbError(**d["prob_error"]), "long_stream": stream,
                      "frame_by_frame": None if f is None else FrameByFrame(**f), "warnings": tuple(d.get("warnings", ()))})


def read_verify_report(bundle_dir: str | Path) -> VerifyReport | None:
    """The bundle's ``verify.json``, or None when it was converted with ``--no-verify``."""
    path = Path(bundle_dir) / VERIFY_REPORT
    if not path.is_file():
        return None
    try:
        return VerifyReport.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: malformed verify report ({exc})") from None


def write_verify_report(bundle_dir: Path, report: VerifyReport) -> None:
    """Write ``verify.json`` (the caller re-hashes the manifest: it is a bundle file)."""
    (bundle_dir / VERIFY_REPORT).write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
