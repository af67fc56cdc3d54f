"""The meeting point of the inference loop and the viewers: newest frame, newest decisions, JPEGs.

The loop calls :meth:`Hub.publish` once per inferred frame: it stores a
reference to the frame and the decision's raw record (no formatting, no JSON)
under one lock and wakes event-stream viewers. A decision becomes JSON only when
an event-stream viewer asks for it, once for all viewers (``describe`` turns
records into objects).

Video: a viewer waiting for its next frame leaves a *want* (the width, and the
time its pacing makes the next frame due). When the loop publishes a frame and
some want is due, the loop encodes that frame once per wanted width, right
there: the frame is still hot in its caches and no thread has to wake up just to
encode (an encode in a viewer thread that wakes ten times a second cost about
twice the CPU). Then it wakes the video viewers, which only send. So each frame
is encoded once for all viewers, only while someone watches and only at the rate
asked for; a viewer that is busy sending (or stalled) leaves no want, so it never
costs the loop an encode. Never wider than the frame (the browser scales up for
free); a viewer always gets the newest frame and skips the ones it missed.
Decisions are kept in a short ring, so an event-stream viewer that falls a few
frames behind still gets each one, and one that falls far behind skips ahead.
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
    """One encoded frame, with the time its frame was published (monotonic)."""

    seq: int
    width: int
    data: bytes
    t: float


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
        self._wants: dict[int, tuple[float, int]] = {}  # waiting video viewer -> (due, width)
        self.viewers = Counter[str]()  # route -> open connections
        self.stream_rate = Rate()
        self.encode_ms: deque[float] = deque(maxlen=300)
        self.encoded = 0
        self.encode_cpu_s = 0.0  # CPU the loop spent encoding for video viewers

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
            widths = {min(w, image.shape[1]) for due, w in self._wants.values() if due <= now} if self._wants else ()
        if widths:
            self._encode(image, color, seq, now, widths)

    def _encode(self, image: np.ndarray, color: str, seq: int, t: float, widths: set[int]) -> None:
        """Encode the frame just published at each wanted width (lock released), then wake the video viewers."""
        done = []
        cpu0 = time.thread_time()
        for width in sorted(widths):
            t0 = time.perf_counter()
            done.append((Jpeg(seq, width, encode_jpeg(image, color, width, self.quality), t), (time.perf_counter() - t0) * 1e3))
        cpu = time.thread_time() - cpu0
        with self.lock:
            for jpeg, ms in done:
                self._jpegs[jpeg.width] = jpeg
                self.encode_ms.append(ms)
                self.encoded += 1
            self.encode_cpu_s += cpu
            self.jpeg_cond.notify_all()

    def close(self) -> None:
        """Wake every viewer so they end. Never blocks for long: viewers also see ``closed`` when their
        waits time out, and they are daemon threads."""
        self.closed = True
        self._closed.set()
        if self.lock.acquire(timeout=0.5):
            try:
                self.cond.notify_all()
                self.jpeg_cond.notify_all()
            finally:
                self.lock.release()

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
        """The newest frame, newer than ``after``, as a JPEG at ``width`` (at most the frame's), encoded by the
        loop from the first frame it publishes once the clock reads ``not_before`` (the viewer's pacing); None on
        close or after ``timeout`` s with no frame."""
        deadline = time.monotonic() + timeout
        key = threading.get_ident()
        with self.lock:
            try:
                self._wants[key] = (not_before, width)
                while not self.closed:
                    image = self._image
                    if image is not None:
                        jpeg = self._jpegs.get(min(width, image.shape[1]))
                        if jpeg is not None and jpeg.seq > after and jpeg.t >= not_before:
                            return jpeg
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self.jpeg_cond.wait(remaining)  # the loop encodes when this want is due, then wakes us
            finally:
                del self._wants[key]
        return None

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
                "encode_cpu_s": round(self.encode_cpu_s, 6),
                "viewers": max(viewers.values(), default=0),
                "connections": viewers,
            }
