"""Per-stage latency recording with warm-up exclusion and percentiles."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np


def percentiles(values_ms: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of a list of milliseconds (empty list -> empty dict)."""
    v = np.asarray(list(values_ms), dtype=np.float64)
    if v.size == 0:
        return {}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "max": round(float(v.max()), 4),
        "mean": round(float(v.mean()), 4),
        "count": int(v.size),
    }


class LatencyRecorder:
    """Collects per-stage timings; the first ``warmup`` records are not counted."""

    def __init__(self, warmup: int = 5):
        self.warmup = warmup
        self._seen = 0
        self.stages: dict[str, list[float]] = defaultdict(list)

    def record(self, **stage_ms: float) -> None:
        """Record one frame's stage timings, e.g. ``record(invoke=1.2, preprocess=0.1)``."""
        self._seen += 1
        if self._seen <= self.warmup:
            return
        for stage, ms in stage_ms.items():
            self.stages[stage].append(float(ms))

    @property
    def counted(self) -> int:
        return max(0, self._seen - self.warmup)

    def summary(self) -> dict[str, dict[str, float]]:
        """Percentiles per stage."""
        return {stage: percentiles(v) for stage, v in self.stages.items()}
