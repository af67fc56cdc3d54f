"""The meeting point of the inference loop and the viewers: newest frame, newest decisions, JPEGs.

The loop calls :meth:`Hub.publish` once per inferred frame: it stores a
reference to the frame and the decision's raw record (no formatting, no JSON)
under one lock and wakes whoever waits for a new frame. Nothing in ``publish``
waits for a viewer. A decision becomes JSON only when an event-stream viewer
asks for it, once for all viewers (``describe`` turns records into objects).
A video viewer's own thread encodes the newest frame when its :class:`Pacer`
says the next one is due (so only while someone watches, and only at the rate
asked for); a viewer that finds that frame already encoded at its width by
another takes that JPEG, so each frame is encoded once for all viewers. Never
wider than the frame (the browser scales up for free); a viewer always gets the
newest frame and skips the ones it missed. Decisions are kept in a short ring, so an event-stream viewer that falls
a few frames behind still gets each one, and one that falls far behind skips ahead.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

RING = 256  # decisions kept for event-stream viewers
MAX_WIDTH = 1920
RATE_WINDOW_S = 2.0
SLACK = 0.25  # a paced frame may come this fraction of a period early: a camera's jitter never halves the rate
SHORT_SLEEP_S = 0.25  # pacing waits up to this long are plain sleeps (half the CPU of an Event wait-up)
_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps(..., separators=) builds one per call


class Entry:
    """One published decision: frame number, publish time (monotonic), frames inferred so far, the loop's
    raw record, and its JSON once some viewer asked for it."""

    __slots__ = ("seq", "t", "frames", "record", "data")

    def __init__(self, seq: int, t: float, frames: int, record: Any):
        self.seq, self.t, self.frames, self.record = seq, t, frames, record
        self.data: bytes | None = None


Describe = Callable[[list[Entry]], list[dict[str, Any]]]


class Pacer:
    """At most ``fps`` items per second on average; an item may come up to ``SLACK`` of a period early,
    so frames that arrive at exactly the paced rate, with jitter, are all taken."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.due = 0.0  # nominal time of the next item (monotonic)

    def ready_at(self) -> float:
        return self.due - SLACK * self.period

    def took(self, now: float) -> None:
        """Count an item taken at ``now``: the next is due a period later (later still after a long pause)."""
        self.due = max(self.due + self.period, now + (1.0 - SLACK) * self.period)


@dataclass(frozen=True)
class Jpeg:
    """One encoded frame."""

    seq: int
    width: int
    data: bytes


class Rate:
    """Events per second over the last ``window_s``."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    def per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` scaled to ``width`` pixels wide (aspect kept); unchanged when it already is."""
    import cv2

    h, w = image.shape[:2]
    if w == width:
        return image
    interp = cv2.INTER_AREA if width * 2 <= w else cv2.INTER_LINEAR  # AREA's general case is 5x slower
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=interp)


def encode_jpeg(image: np.ndarray, color: str, width: int, quality: int = 80) -> bytes:
    """JPEG bytes of ``image`` (``color`` ``rgb`` or ``bgr``) at ``width`` pixels."""
    import cv2

    img = resize_to_width(image, width)
    if img.ndim == 3 and color == "rgb":
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class Hub:
    """Newest frame + decisions from the loop, handed to any number of viewers without slowing it."""

    def __init__(self, describe: Describe, quality: int = 80):
        self.describe = describe
        self.quality = quality
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # a new frame and decision (event streams, video viewers)
        self.jpeg_cond = threading.Condition(self.lock)  # a JPEG another viewer was encoding is ready
        self._closed = threading.Event()
        self.closed = False
        self.seq = -1  # newest published frame
        self.frames = 0  # inferred frames published
        self._image: np.ndarray | None = None
        self._color = "bgr"
        self._ring: deque[Entry] = deque(maxlen=RING)
        self._jpegs: dict[int, Jpeg] = {}  # width -> the newest JPEG at that width
        self._encoding: set[int] = set()  # widths some viewer is encoding now
        self.viewers = Counter[str]()  # route -> open connections
        self.stream_rate = Rate()
        self.encode_ms: deque[float] = deque(maxlen=300)
        self.encoded = 0

    # ---- the loop's side ------------------------------------------------------------------
    def publish(self, seq: int, image: np.ndarray, color: str, record: Any) -> None:
        """Make ``image`` and its decision's ``record`` the newest; never blocks on a viewer, formats nothing."""
        now = time.monotonic()
        with self.cond:
            self.seq = seq
            self.frames += 1
            self._image, self._color = image, color
            self._ring.append(Entry(seq, now, self.frames, record))
            self.cond.notify_all()

    def close(self) -> None:
        """Wake every viewer so they end."""
        with self.lock:
            self.closed = True
            self._closed.set()
            self.cond.notify_all()
            self.jpeg_cond.notify_all()

    def age_s(self) -> float | None:
        """Seconds since the newest frame was published (None before the first)."""
        ring = self._ring
        return time.monotonic() - ring[-1].t if ring else None

    # ---- viewers --------------------------------------------------------------------------
    def attach(self, route: str, limit: int) -> bool:
        """Count a viewer of ``route``; False when ``limit`` are already attached."""
        with self.cond:
            if self.viewers[route] >= limit:
                return False
            self.viewers[route] += 1
            return True

    def viewer_count(self) -> int:
        """Viewers now: the larger of the open video and event streams (a page opens one of each)."""
        with self.lock:
            return max(self.viewers.values(), default=0)

    def detach(self, route: str) -> None:
        with self.cond:
            self.viewers[route] -= 1

    def wait_closed(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s (a viewer's pacing); True if closed. Waits longer than ``SHORT_SLEEP_S``
        wake at once on close; shorter ones are plain sleeps, done before anyone would notice."""
        if timeout > SHORT_SLEEP_S:
            self._closed.wait(timeout)
        elif timeout > 0:
            time.sleep(timeout)
        return self.closed

    def rates(self, now: float | None = None) -> tuple[float, float, float]:
        """(camera, inferred, sent) frames per second over the last ``RATE_WINDOW_S`` (at most the ring):
        the camera's from the frame numbers (inferred + dropped), the loop's from the publish times."""
        now = time.monotonic() if now is None else now
        with self.lock:
            ring, n = self._ring, 0
            while n < len(ring) and now - ring[-1 - n].t <= RATE_WINDOW_S:
                n += 1
            sent = self.stream_rate.per_second(now)
            if n < 2:
                return 0.0, 0.0, sent
            first, last = ring[-n], ring[-1]
        span = max(now - first.t, last.t - first.t)
        if span <= 0:
            return 0.0, 0.0, sent
        return (last.seq - first.seq) / span, (n - 1) / span, sent

    def sent_frame(self) -> None:
        """Count one MJPEG frame sent to a viewer (the stream rate)."""
        with self.lock:
            self.stream_rate.tick()

    def next_jpeg(self, width: int, after: int, timeout: float, not_before: float = 0.0) -> Jpeg | None:
        """The newest frame, newer than ``after``, as a JPEG at ``width`` (at most the frame's), once the
        clock reads ``not_before`` (the viewer's pacing); None on close or after ``timeout`` s with no frame.

        Encoded here, in the viewer's thread and outside the lock, unless another viewer already encoded
        (or is encoding) this frame at this width."""
        if self.wait_closed(not_before - time.monotonic()):
            return None
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.closed:
                image, seq = self._image, self.seq
                if image is not None and seq > after:
                    w = min(width, image.shape[1])
                    jpeg = self._jpegs.get(w)
                    if jpeg is not None and jpeg.seq > after:
                        return jpeg  # another viewer's: encoded once for all
                    if w not in self._encoding:
                        return self._encode(image, self._color, seq, w)
                    self.jpeg_cond.wait(1.0)  # another viewer is encoding it (and notifies when done)
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self.cond.wait(remaining)  # the next publish
        return None

    def _encode(self, image: np.ndarray, color: str, seq: int, width: int) -> Jpeg:
        """Encode with the lock released (the loop keeps publishing); called and returns with it held."""
        self._encoding.add(width)
        self.lock.release()
        try:
            t0 = time.perf_counter()
            jpeg = Jpeg(seq, width, encode_jpeg(image, color, width, self.quality))
            ms = (time.perf_counter() - t0) * 1e3
        finally:
            self.lock.acquire()
            self._encoding.discard(width)
            self.jpeg_cond.notify_all()
        self._jpegs[width] = jpeg
        self.encode_ms.append(ms)
        self.encoded += 1
        return jpeg

    def events_after(self, after: int, timeout: float) -> list[tuple[int, bytes]] | None:
        """Decisions newer than ``after`` as (frame number, JSON) (the newest ones if more were missed than
        the ring holds); an empty list after ``timeout`` s, None on close.

        Records become JSON here, outside the lock, once for all viewers."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (self.seq > after and self._ring):
                if self.closed:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.cond.wait(remaining)
            if self.closed:
                return None
            ring, n = self._ring, 0
            while n < len(ring) and ring[-1 - n].seq > after:  # newest first: usually a step or two
                n += 1
            entries = [ring[i] for i in range(len(ring) - n, len(ring))]
        fresh = [e for e in entries if e.data is None]
        if fresh:
            for e, obj in zip(fresh, self.describe(fresh)):
                e.data = _JSON.encode(obj).encode()
        return [(e.seq, e.data) for e in entries]  # type: ignore[misc]  # all set above

    @property
    def last_event(self) -> dict[str, Any] | None:
        """The newest decision as its event object (None before the first)."""
        with self.lock:
            newest = self._ring[-1] if self._ring else None
        return None if newest is None else self.describe([newest])[0]

    def snapshot(self, width: int | None) -> bytes | None:
        """The newest frame as a JPEG (encoded on request), or None before the first frame."""
        with self.cond:
            image, color = self._image, self._color
        if image is None:
            return None
        return encode_jpeg(image, color, width or image.shape[1], self.quality)

    def stats(self) -> dict[str, Any]:
        """Counters for ``/stats.json``."""
        _, inferred, sent = self.rates()
        with self.lock:
            viewers = dict(self.viewers)
            return {
                "frames": self.frames,
                "seq": self.seq,
                "fps": round(inferred, 2),
                "stream_fps": round(sent, 2),  # MJPEG frames sent, all viewers
                "encoded": self.encoded,
                "encode_ms_p50": round(float(np.percentile(self.encode_ms, 50)), 3) if self.encode_ms else None,
                "viewers": max(viewers.values(), default=0),
                "connections": viewers,
            }
