"""Dataset spec strings and the common in-memory dataset shape.

A spec is ``KIND[:ARG][,key=value...]`` for path kinds (``ucr:DIR``) or
``KIND:key=value,...`` for generated kinds (``synthetic-actions:classes=8,seed=1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edge.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x`` (uint8 frames or float samples) and integer labels ``y``."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits plus what a bundle needs to know about the inputs."""

    spec: str
    kind: str
    label_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    preprocessing: dict[str, Any]

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
    import training.data.synthetic  # noqa: F401  (registers its loader)

    if kind not in LOADERS:
        raise DataError(f"unknown dataset kind {kind!r} in {spec!r}; known: {', '.join(sorted(LOADERS))}")
    return LOADERS[kind](path, options)
