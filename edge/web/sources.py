"""Live sources for the demo: synthetic activities played as a camera, and real-time file replay.

``synthetic-actions[:seed=0,classes=8,frames=16,size=48,hold=3,fps=15,stamp=0]``
renders clips of :mod:`edge.synthetic` one frame at a time at ``fps``: ``hold``
clips of one activity, then another (a seeded order that visits every class),
so the recognised label changes with no camera attached. ``stamp=1`` writes the
frame number into the top rows as 12 black/white cells (:func:`stamp_sequence`),
so a viewer can tell which frame it is looking at (the glass-to-label lag benchmark).

A video file or image folder is paced at its own frame rate, as a camera would
deliver it, and with ``loop`` starts over at its end.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from edge.errors import DataError
from edge.sources import CaptureReader, ImageDirReader, Reader, make_reader
from edge.synthetic import ACTIONS, SyntheticActionsConfig, render_clip

STAMP_BITS = 12


def stamp_sequence(image: np.ndarray, seq: int) -> None:
    """Write ``seq mod 2**12`` into the top rows of ``image``: 12 cells, most significant first, white = 1."""
    h, w = image.shape[:2]
    cell = w // STAMP_BITS
    rows = max(2, min(h // 8, cell))
    for bit in range(STAMP_BITS):
        on = (seq >> (STAMP_BITS - 1 - bit)) & 1
        image[:rows, bit * cell : (bit + 1) * cell] = 255 if on else 0


def read_stamp(image: np.ndarray) -> int:
    """The number :func:`stamp_sequence` wrote (from the cell centres; survives scaling and JPEG)."""
    h, w = image.shape[:2]
    cell = w / STAMP_BITS
    rows = max(2, min(h // 8, int(cell)))
    gray = image if image.ndim == 2 else image.mean(axis=2)
    value = 0
    for bit in range(STAMP_BITS):
        value = (value << 1) | int(gray[rows // 2, int((bit + 0.5) * cell)] > 127)
    return value


@dataclass(frozen=True)
class ActionsSourceSpec:
    """Options of ``--source synthetic-actions:...`` (generator settings plus pacing)."""

    seed: int = 0
    classes: int = 0  # 0 = as many as the bundle's labels (at most 8)
    frames: int = 16
    size: int = 0  # 0 = the bundle's input size
    noise: float = 6.0
    hold: int = 3  # clips of one activity before the next
    fps: float = 15.0
    stamp: int = 0

    @classmethod
    def parse(cls, text: str) -> "ActionsSourceSpec":
        kinds = {f.name: f.type for f in fields(cls)}
        kw: dict[str, Any] = {}
        for item in filter(None, text.split(",")):
            key, _, value = item.partition("=")
            if key not in kinds:
                raise DataError(f"synthetic-actions source: unknown option {key!r} ({', '.join(kinds)})")
            try:
                kw[key] = float(value) if kinds[key] == "float" else int(value)
            except ValueError:
                raise DataError(f"synthetic-actions source: {key}={value!r} is not a number") from None
        spec = cls(**kw)
        if spec.fps <= 0 or spec.hold < 1:
            raise DataError("synthetic-actions source: fps must be > 0 and hold >= 1")
        return spec


class SyntheticActionsReader:
    """Synthetic activities as a live camera: a new clip whenever the last one is shown."""

    live = True
    color = "rgb"

    def __init__(self, spec: ActionsSourceSpec, frame_size: tuple[int, int], classes: int):
        n = spec.classes or min(classes, len(ACTIONS))
        if not 2 <= n <= len(ACTIONS):
            raise DataError(f"synthetic-actions source: classes must be 2..{len(ACTIONS)}, got {n}")
        size = spec.size or int(frame_size[0])
        self.cfg = SyntheticActionsConfig(classes=n, frames=spec.frames, size=size, clips=4, noise=spec.noise, seed=spec.seed)
        self.spec = spec
        self.name = f"synthetic-actions (seed {spec.seed}, {n} classes)"
        self.action = ACTIONS[0]
        self._clip: np.ndarray | None = None
        self._clips = 0
        self._frame = 0
        self._n = 0
        self._next = 0.0
        self._starts: deque[tuple[int, str]] = deque(maxlen=64)  # (first frame, activity) of recent clips

    def open(self) -> None:
        self._next = time.perf_counter()

    def activity_at(self, frame: int) -> str | None:
        """The activity the source was playing at frame number ``frame`` (None if too long ago)."""
        for start, action in reversed(tuple(self._starts)):  # a copy: the reader thread appends
            if start <= frame:
                return action
        return None

    def _activity(self, segment: int) -> str:
        """Activity of a run of ``hold`` clips: a seeded permutation of the classes, a new one every round."""
        n = self.cfg.classes
        order = np.random.default_rng([self.spec.seed, segment // n]).permutation(n)
        return ACTIONS[int(order[segment % n])]

    def read(self) -> tuple[np.ndarray, float | None] | None:
        if self._clip is None or self._frame >= len(self._clip):
            self.action = self._activity(self._clips // self.spec.hold)
            self._clip = render_clip(self.action, self.cfg, np.random.default_rng([self.spec.seed, 7, self._clips]))
            self._clips += 1
            self._frame = 0
            self._starts.append((self._n, self.action))
        self._next += 1.0 / self.spec.fps
        delay = self._next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next = time.perf_counter()  # running late: do not burst to catch up
        image = self._clip[self._frame].copy() if self.spec.stamp else self._clip[self._frame]
        if self.spec.stamp:
            stamp_sequence(image, self._n)
        self._frame += 1
        self._n += 1
        return image, None

    def close(self) -> None:
        pass


class ReplayReader:
    """A video file or image folder delivered at its own frame rate, optionally starting over at the end."""

    live = True  # behaves like a camera: frames come at their time, the newest wins when inference is slower

    def __init__(self, inner: CaptureReader | ImageDirReader, loop: bool):
        self.inner = inner
        self.loop = loop
        self.color = inner.color
        self.name = f"{inner.name} (loop)" if loop else inner.name
        self._t0 = 0.0
        self._offset = 0.0
        self._last_ts = 0.0
        self._frames = 0

    def open(self) -> None:
        self.inner.open()
        self._t0 = time.perf_counter()
        self._offset = 0.0
        self._frames = 0

    def read(self) -> tuple[np.ndarray, float | None] | None:
        got = self.inner.read()
        if got is None:
            if not self.loop or self._frames == 0:
                return None
            self.inner.close()
            self.inner.open()
            self._offset = self._last_ts + 1.0 / 30
            self._frames = 0
            got = self.inner.read()
            if got is None:
                return None
        image, ts = got
        self._frames += 1
        media = self._offset + (ts or 0.0)
        self._last_ts = media
        delay = self._t0 + media - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return image, None  # arrival time, as for a camera (monotonic across loops)

    def close(self) -> None:
        self.inner.close()


def make_demo_reader(spec: str, frame_size: tuple[int, int], classes: int, loop: bool = False,
                     timeout_s: float = 5.0) -> Reader:
    """The reader for ``hybrid-edge demo --source``: everything ``run`` takes, plus ``synthetic-actions``.

    Files and image folders are replayed in real time (``loop``: endlessly).
    """
    if spec == "synthetic-actions" or spec.startswith("synthetic-actions:"):
        return SyntheticActionsReader(ActionsSourceSpec.parse(spec.partition(":")[2]), frame_size, classes)
    reader = make_reader(spec, frame_size, timeout_s)
    if isinstance(reader, ImageDirReader) or (isinstance(reader, CaptureReader) and not reader.live):
        return ReplayReader(reader, loop)
    if loop:
        raise DataError(f"--loop replays a video file or image folder; {spec!r} is neither")
    return reader
