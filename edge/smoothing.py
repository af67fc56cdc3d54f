"""Decision smoothing over frames: ``ema:A`` (exponential moving average) or ``vote:N``.

Smoothing turns flickering per-frame argmaxes into stable decisions. It is reset
with the session (gap, reconnect) so a new stream never inherits old evidence.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Protocol

import numpy as np

from edge.errors import HybridEdgeError


class Smoother(Protocol):
    """``update`` takes one frame's probabilities and returns the current decision."""

    def update(self, probabilities: np.ndarray, index: int, score: float) -> tuple[int, float]: ...

    def reset(self) -> None: ...


class NoSmoothing:
    """The frame's own argmax and probability."""

    def update(self, probabilities: np.ndarray, index: int, score: float) -> tuple[int, float]:
        return index, score

    def reset(self) -> None:
        pass


class EmaSmoothing:
    """``s = alpha * p + (1 - alpha) * s``: ``alpha`` is the weight of the newest frame."""

    def __init__(self, alpha: float):
        if not 0.0 < alpha <= 1.0:
            raise HybridEdgeError(f"--smooth ema:{alpha}: alpha must be in (0, 1]")
        self.alpha = np.float32(alpha)
        self._state: np.ndarray | None = None

    def update(self, probabilities: np.ndarray, index: int, score: float) -> tuple[int, float]:
        if self._state is None:
            self._state = np.array(probabilities, dtype=np.float32, copy=True)
        else:
            self._state *= 1 - self.alpha
            self._state += self.alpha * probabilities
        best = int(self._state.argmax())
        return best, float(self._state[best])

    def reset(self) -> None:
        self._state = None


class VoteSmoothing:
    """Majority of the last ``n`` argmaxes; confidence = the winner's share of the votes.

    Ties go to the most recent of the tied classes.
    """

    def __init__(self, n: int):
        if n < 1:
            raise HybridEdgeError(f"--smooth vote:{n}: window must be >= 1")
        self.votes: deque[int] = deque(maxlen=n)
        self.counts: Counter[int] = Counter()

    def update(self, probabilities: np.ndarray, index: int, score: float) -> tuple[int, float]:
        if len(self.votes) == self.votes.maxlen:
            self.counts[self.votes[0]] -= 1
        self.votes.append(index)
        self.counts[index] += 1
        top = max(self.counts.values())
        best = next(v for v in reversed(self.votes) if self.counts[v] == top)
        return best, top / len(self.votes)

    def reset(self) -> None:
        self.votes.clear()
        self.counts.clear()


def make_smoother(spec: str | None) -> Smoother:
    """``None``/``none``, ``ema:ALPHA`` or ``vote:N``."""
    if spec in (None, "", "none"):
        return NoSmoothing()
    kind, _, value = spec.partition(":")
    try:
        if kind == "ema":
            return EmaSmoothing(float(value))
        if kind == "vote":
            return VoteSmoothing(int(value))
    except ValueError:
        raise HybridEdgeError(f"--smooth {spec}: {value!r} is not a number") from None
    raise HybridEdgeError(f"--smooth {spec}: use ema:ALPHA (e.g. ema:0.6) or vote:N (e.g. vote:5)")
