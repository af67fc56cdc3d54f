"""Synthetic action videos: a shape moving, rotating or scaling on a textured background.

Every class needs time to tell apart (a single frame shows a shape, not where it
is going), so it exercises the recurrent part of a CNN+RNN model. Deterministic:
clip ``i`` depends only on ``(seed, i)``. numpy + OpenCV only: the training data
loader (``synthetic-actions:...``) and the live ``--source synthetic-actions``
of ``hybrid-edge demo`` (:mod:`edge.web.sources`) both draw from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import DataError

ACTIONS = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw", "grow", "shrink")


@dataclass(frozen=True)
class SyntheticActionsConfig:
    """Generator settings; ``clips`` is per class, split 60/15/25 into train/val/test."""

    classes: int = 8
    frames: int = 16
    size: int = 48
    clips: int = 300
    noise: float = 6.0
    seed: int = 0


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field with faint stripes (float32, 0..255); shared by the image generators."""
    coarse = rng.uniform(60, 190, size=(5, 5, 3)).astype(np.float32)
    bg = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    period = rng.uniform(4, 10)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = 10 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    return np.clip(bg + stripes[:, :, None], 0, 255)


def _shape(rng: np.random.Generator) -> np.ndarray:
    """An irregular polygon (unit radius) so rotation is visible."""
    k = int(rng.integers(3, 6))
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=k)) if k > 3 else np.array([0.0, 2.2, 4.0]) + rng.uniform(0, 1)
    radii = rng.uniform(0.55, 1.0, size=k)
    radii[0] = 1.0
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def render_clip(action: str, cfg: SyntheticActionsConfig, rng: np.random.Generator) -> np.ndarray:
    """Render one clip (frames, size, size, 3) uint8 RGB."""
    s, t = cfg.size, cfg.frames
    bg = textured_background(rng, s)
    poly = _shape(rng)
    color = rng.uniform(0, 255, size=3)
    color[rng.integers(0, 3)] = rng.choice([15.0, 245.0])  # keep contrast with the background
    radius = rng.uniform(0.18, 0.24) * s
    center = rng.uniform(0.35, 0.65, size=2) * s
    theta = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(1.2, 1.7) * s / 48
    spin = np.deg2rad(rng.uniform(8, 14))
    growth = rng.uniform(1.035, 1.06)
    if action.startswith("move"):
        travel = speed * (t - 1)
        axis = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}[action]
        center = center - np.array(axis) * travel / 2
    if action == "shrink":
        radius *= growth ** (t - 1) * 0.75
        radius = min(radius, 0.32 * s)
    elif action == "grow":
        radius *= 0.75
    frames = np.empty((t, s, s, 3), np.uint8)
    for f in range(t):
        c, r, th = center.copy(), radius, theta
        if action.startswith("move"):
            c = center + np.array(axis) * speed * f
        elif action == "rotate_cw":
            th = theta + spin * f
        elif action == "rotate_ccw":
            th = theta - spin * f
        elif action == "grow":
            r = radius * growth**f
        elif action == "shrink":
            r = radius / growth**f
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        pts = (poly @ rot.T) * r + c
        img = bg.copy()
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color.tolist(), lineType=cv2.LINE_AA, shift=4)
        # a contrasting marker on the first vertex makes orientation (and so spin direction) visible
        tip = np.round(pts[0] * 16).astype(np.int32)
        cv2.circle(img, (int(tip[0]), int(tip[1])), int(max(2.0, 0.3 * r) * 16), (255 - color).tolist(), -1, cv2.LINE_AA, 4)
        img += rng.normal(0, cfg.noise, size=img.shape).astype(np.float32)
        frames[f] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def generate(cfg: SyntheticActionsConfig) -> tuple[np.ndarray, np.ndarray]:
    """All clips (classes*clips, frames, size, size, 3) and labels, class-interleaved."""
    if not 2 <= cfg.classes <= len(ACTIONS):
        raise DataError(f"synthetic-actions: classes must be 2..{len(ACTIONS)}, got {cfg.classes}")
    if cfg.frames < 2 or cfg.size < 16 or cfg.clips < 4:
        raise DataError("synthetic-actions: need frames >= 2, size >= 16 and clips >= 4")
    n = cfg.classes * cfg.clips
    clips = np.empty((n, cfg.frames, cfg.size, cfg.size, 3), np.uint8)
    labels = np.arange(n) % cfg.classes
    from edge.progress import progress

    for i in progress(range(n), "generating clips", unit="clips"):
        rng = np.random.default_rng([cfg.seed, i])
        clips[i] = render_clip(ACTIONS[labels[i]], cfg, rng)
    return clips, labels.astype(np.int64)
