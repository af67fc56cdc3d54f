"""The meeting point of the inference loop and the viewers: newest frame, newest decisions, JPEGs.

The loop calls :meth:`Hub.publish` once per inferred frame: it stores a
reference to the frame and the decision's JSON under one lock and wakes the
event-stream viewers and the encoder (video viewers wait on their own condition,
woken only by a new JPEG). Nothing in ``publish`` waits for a viewer. JPEG
encoding happens in the hub's own encoder thread, only while a video viewer is
attached, once per frame and width for all viewers, at most at the highest rate a
viewer asked for, and never wider than the frame (the browser scales up for free);
a viewer always gets the newest JPEG and skips the ones it missed.
Decisions are kept in a short ring, so an event-stream viewer that falls a few
frames behind still gets each one, and one that falls far behind skips ahead.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

RING = 256  # decisions kept for event-stream viewers
MAX_WIDTH = 1920


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

    def __init__(self, quality: int = 80):
        self.quality = quality
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # a new decision (event streams, encoder)
        self.jpeg_cond = threading.Condition(self.lock)  # a new JPEG (video viewers)
        self._closed = threading.Event()
        self._wanted = threading.Event()  # some video viewer is attached
        self.closed = False
        self.seq = -1  # newest published frame
        self.frames = 0  # inferred frames published
        self._image: np.ndarray | None = None
        self._color = "bgr"
        self._events: deque[tuple[int, bytes]] = deque(maxlen=RING)
        self.last_event: dict[str, Any] | None = None
        self._published_at: float | None = None
        self._jpegs: dict[int, Jpeg] = {}
        self._wants: Counter[tuple[int, float]] = Counter()  # (width, fps) of attached MJPEG viewers
        self.viewers = Counter[str]()  # route -> open connections
        self.inference_rate = Rate()
        self.stream_rate = Rate()
        self.encode_ms: deque[float] = deque(maxlen=300)
        self.encoded = 0
        self._encoder = threading.Thread(target=self._encode_loop, name="jpeg-encoder", daemon=True)
        self._encoder.start()

    # ---- the loop's side ------------------------------------------------------------------
    def publish(self, seq: int, image: np.ndarray, color: str, event: dict[str, Any]) -> None:
        """Make ``image`` and its decision the newest; never blocks on a viewer."""
        data = json.dumps(event, separators=(",", ":")).encode()
        with self.cond:
            self.seq = seq
            self.frames += 1
            self._image, self._color = image, color
            self._events.append((seq, data))
            self.last_event = event
            self._published_at = time.monotonic()
            self.inference_rate.tick(self._published_at)
            self.cond.notify_all()

    def close(self) -> None:
        """Wake every viewer and the encoder so they end."""
        with self.lock:
            self.closed = True
            self._closed.set()
            self._wanted.set()
            self.cond.notify_all()
            self.jpeg_cond.notify_all()
        self._encoder.join(timeout=1.0)

    def age_s(self) -> float | None:
        """Seconds since the newest frame was published (None before the first)."""
        at = self._published_at
        return None if at is None else time.monotonic() - at

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

    def want(self, width: int, fps: float, on: bool) -> None:
        """Register (``on``) or drop an MJPEG viewer's size and rate; the encoder serves what is wanted."""
        with self.lock:
            self._wants[(width, fps)] += 1 if on else -1
            if self._wants[(width, fps)] <= 0:
                del self._wants[(width, fps)]
            if self._wants:
                self._wanted.set()
            elif not self.closed:
                self._wanted.clear()

    def wait_closed(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s (a viewer's frame pacing), waking at once on close; True if closed."""
        if timeout > 0:
            self._closed.wait(timeout)
        return self.closed

    def rates(self, now: float | None = None) -> tuple[float, float]:
        """(inferred, sent) frames per second; under the lock, as every reader and writer of the rates is."""
        with self.lock:
            return self.inference_rate.per_second(now), self.stream_rate.per_second(now)

    def sent_frame(self) -> None:
        """Count one MJPEG frame sent to a viewer (the stream rate)."""
        with self.lock:
            self.stream_rate.tick()

    def next_jpeg(self, width: int, after: int, timeout: float) -> Jpeg | None:
        """The newest JPEG at ``width`` newer than ``after``; None on close or after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.closed:
                jpeg = self._jpegs.get(width)
                if jpeg is not None and jpeg.seq > after:
                    return jpeg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.jpeg_cond.wait(remaining)
        return None

    def events_after(self, after: int, timeout: float) -> list[tuple[int, bytes]] | None:
        """Decisions newer than ``after`` (the newest ones if more were missed than the ring holds);
        an empty list after ``timeout`` s, None on close."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                if self.seq > after and self._events:
                    ring, n = self._events, 0
                    while n < len(ring) and ring[-1 - n][0] > after:  # newest first: usually one step
                        n += 1
                    return [ring[i] for i in range(len(ring) - n, len(ring))]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.cond.wait(remaining)
        return None

    def snapshot(self, width: int | None) -> bytes | None:
        """The newest frame as a JPEG (encoded on request), or None before the first frame."""
        with self.cond:
            image, color = self._image, self._color
        if image is None:
            return None
        return encode_jpeg(image, color, width or image.shape[1], self.quality)

    # ---- the encoder thread ----------------------------------------------------------------
    def _encode_loop(self) -> None:
        done = -1
        while True:
            self._wanted.wait()  # no video viewer: sleep here, not woken by every frame
            with self.lock:
                while not self.closed and self._wants and (self.seq <= done or self._image is None):
                    self.cond.wait(0.5)
                if self.closed:
                    return
                if not self._wants:
                    continue
                seq, image, color = self.seq, self._image, self._color
                wants = sorted({w for w, _ in self._wants})
                fps = max(f for _, f in self._wants)
            assert image is not None
            native = image.shape[1]
            by_width: dict[int, bytes] = {}
            fresh, spent = {}, []
            for width in wants:
                w = min(width, native)
                if w not in by_width:
                    t0 = time.perf_counter()
                    by_width[w] = encode_jpeg(image, color, w, self.quality)
                    spent.append((time.perf_counter() - t0) * 1e3)
                fresh[width] = Jpeg(seq, w, by_width[w])
            with self.lock:
                self.encode_ms.extend(spent)
                self._jpegs.update(fresh)
                self.encoded += 1
                self.jpeg_cond.notify_all()
            done = seq
            if self._closed.wait(0.8 / fps):  # rate limit: see server.PACE
                return

    def stats(self) -> dict[str, Any]:
        """Counters for ``/stats.json``."""
        with self.lock:
            viewers = dict(self.viewers)
            return {
                "frames": self.frames,
                "seq": self.seq,
                "fps": round(self.inference_rate.per_second(), 2),  # (the lock is held here)
                "stream_fps": round(self.stream_rate.per_second(), 2),  # MJPEG frames sent, all viewers
                "encoded": self.encoded,
                "encode_ms_p50": round(float(np.percentile(self.encode_ms, 50)), 3) if self.encode_ms else None,
                "viewers": max(viewers.values(), default=0),
                "connections": viewers,
            }
