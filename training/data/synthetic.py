"""The ``synthetic-actions:...`` dataset: clips from the generator in :mod:`edge.synthetic`, split 60/15/25."""

from __future__ import annotations

from dataclasses import asdict

from edge.errors import DataError
from edge.preprocess import Preprocessing
from edge.synthetic import ACTIONS, SyntheticActionsConfig, generate, render_clip, textured_background
from training.data.spec import Dataset, Split, register_loader

__all__ = ["ACTIONS", "SyntheticActionsConfig", "generate", "load_synthetic", "render_clip", "textured_background"]


@register_loader("synthetic-actions")
def load_synthetic(path: str | None, options: dict[str, str]) -> Dataset:
    """``synthetic-actions[:classes=8,frames=16,size=48,clips=100,noise=6,seed=0]``."""
    if path is not None:
        raise DataError(f"synthetic-actions takes key=value options only, got {path!r}")
    known = set(asdict(SyntheticActionsConfig()))
    unknown = set(options) - known
    if unknown:
        raise DataError(f"synthetic-actions: unknown options {sorted(unknown)}; known: {sorted(known)}")
    try:
        cfg = SyntheticActionsConfig(**{k: (float(v) if k == "noise" else int(v)) for k, v in options.items()})
    except ValueError as exc:
        raise DataError(f"synthetic-actions: bad option value ({exc})") from None
    clips, labels = generate(cfg)
    n = cfg.clips * cfg.classes
    n_train, n_val = int(0.6 * n), int(0.15 * n)
    spec = "synthetic-actions:" + ",".join(f"{k}={v}" for k, v in asdict(cfg).items())
    return Dataset(
        spec=spec,
        kind="clip",
        label_names=ACTIONS[: cfg.classes],
        train=Split(clips[:n_train], labels[:n_train]),
        val=Split(clips[n_train : n_train + n_val], labels[n_train : n_train + n_val]),
        test=Split(clips[n_train + n_val :], labels[n_train + n_val :]),
        preprocessing=Preprocessing(scale=1.0 / 255.0, size=(cfg.size, cfg.size), channels=int(clips.shape[-1])),
    )
