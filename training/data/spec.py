"""Dataset spec strings and the common in-memory dataset shape.

A spec is ``KIND[:ARG][,key=value...]`` for path kinds (``ucr:DIR``) or
``KIND:key=value,...`` for generated kinds (``synthetic-actions:classes=8,seed=1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edge.errors import DataError
from edge.preprocess import Preprocessing


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x`` (uint8 frames or float samples) and integer labels ``y``.

    ``lengths`` is set for variable-length sequences: sample ``i``'s real steps
    are ``x[i, T - lengths[i]:]``; the steps before are front padding, NaN in
    the raw array (:meth:`edge.preprocess.Preprocessing.normalize` turns them into the mask value 0.0).
    """

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None

    def real_steps(self, i: int) -> np.ndarray:
        """Sample ``i`` without its front padding."""
        if self.lengths is None:
            return self.x[i]
        return self.x[i, self.x.shape[1] - int(self.lengths[i]) :]


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits plus what a bundle needs to know about the inputs.

    ``kind`` is the input kind a model must take: ``clip`` (N, T, H, W, C) uint8,
    ``sequence`` (N, T, F) float32, ``image`` (N, H, W, C) uint8.
    """

    spec: str
    kind: str
    label_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    preprocessing: Preprocessing
    recordings: Split | None = None  # the whole test recordings, when train/val/test are windows cut from them

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)


LOADERS: dict[str, Callable[[str | None, dict[str, str]], Dataset]] = {}


def register_loader(kind: str) -> Callable:
    """Decorator: make ``kind`` usable in spec strings."""

    def wrap(fn: Callable[[str | None, dict[str, str]], Dataset]) -> Callable:
        LOADERS[kind] = fn
        return fn

    return wrap


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Split a spec into ``(kind, path_or_None, options)``."""
    kind, _, rest = spec.partition(":")
    path: str | None = None
    options: dict[str, str] = {}
    for i, part in enumerate(p for p in rest.split(",") if p):
        if "=" in part:
            key, _, value = part.partition("=")
            options[key.strip()] = value.strip()
        elif i == 0:
            path = part
        else:
            raise DataError(f"dataset spec {spec!r}: expected key=value, got {part!r}")
    return kind, path, options


def load_dataset(spec: str) -> Dataset:
    """Load or generate the dataset a spec names."""
    kind, path, options = parse_spec(spec)
    import training.data.images  # noqa: F401  (each module registers its loaders)
    import training.data.synthetic  # noqa: F401
    import training.data.ucr  # noqa: F401
    import training.data.video  # noqa: F401

    if kind not in LOADERS:
        raise DataError(f"unknown dataset kind {kind!r} in {spec!r}; known: {', '.join(sorted(LOADERS))}")
    from training.data.cache import cached

    return cached(kind, spec, lambda: LOADERS[kind](path, options))


def typed_options(kind: str, options: dict[str, str], defaults: dict[str, Any]) -> dict[str, Any]:
    """``options`` converted to the types of ``defaults``; unknown keys or bad values are a DataError."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise DataError(f"{kind}: unknown options {sorted(unknown)}; known: {sorted(defaults)}")
    out = dict(defaults)
    for key, value in options.items():
        try:
            out[key] = type(defaults[key])(value)
        except ValueError:
            raise DataError(f"{kind}: option {key}={value!r} is not a {type(defaults[key]).__name__}") from None
    return out


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: ``fraction`` of every class (at least one if it has two) held out."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"split fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n = int(round(fraction * len(idx)))
        if fraction > 0 and n == 0 and len(idx) >= 2:
            n = 1
        held.extend(idx[:n])
        keep.extend(idx[n:])
    return np.sort(np.array(keep, np.int64)), np.sort(np.array(held, np.int64))
