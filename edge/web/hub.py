"""The meeting point of the inference loop and the viewers: newest frame, newest decisions, JPEGs.

The loop calls :meth:`Hub.publish` once per inferred frame: it stores a
reference to the frame and the decision's raw record (no formatting, no JSON)
under one lock. A decision becomes JSON only when an event-stream viewer is due
for it, once for all viewers (``describe`` turns records into JSON).

Video: a viewer of ``/stream.mjpg`` registers its socket with the hub as a
:class:`VideoSink` (a width and a pacing) and its thread goes to sleep. When the
loop publishes a frame and some sink is due, the loop encodes that frame once per
wanted width, right there, and writes each due sink its multipart part with one
non-blocking ``write``: the frame is still hot in the loop's caches, and no
thread wakes up at all (a viewer thread woken ten times a second to encode, or
only to send, cost the board about twice the CPU). Only when a socket's buffer
is full does the loop hand the rest of the part to the viewer's own thread,
which sends it with a timeout while the loop skips that viewer; so a slow or
stalled viewer never blocks the loop, and costs it one failed write per paced
frame at most. Each frame is encoded once for all viewers, only while someone
watches and only at the rate asked for; never wider than the frame (the browser
scales up for free); a viewer always gets the newest frame.
Decisions are kept in a short ring, so an event-stream viewer that falls a few
frames behind still gets each one, and one that falls far behind skips ahead.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np

RING = 256  # decisions kept for event-stream viewers
MAX_WIDTH = 1920
RATE_WINDOW_S = 2.0
SLACK = 0.25  # a paced frame may come this fraction of a period early: a camera's jitter never halves the rate


class Entry:
    """One published decision: frame number, publish time (monotonic), frames inferred so far, the loop's
    raw record, and its JSON once some event viewer was due for it."""

    __slots__ = ("seq", "t", "frames", "record", "data")

    def __init__(self, seq: int, t: float, frames: int, record: Any):
        self.seq, self.t, self.frames, self.record = seq, t, frames, record
        self.data: bytes | None = None


def _published(entry: Entry) -> float:
    return entry.t


Describe = Callable[[list[Entry]], list[bytes]]  # records -> their events as JSON


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


class Sink:
    """One streaming viewer's socket, written by the loop while ``ready``; by the viewer's thread while not.

    Each side changes ``ready`` only while it owns the socket (the loop sets it False when a write
    leaves a rest, the viewer's thread sets it True once the rest is out), so the two never write at once.
    """

    def __init__(self, fd: int, fps: float):
        self.fd, self.pacer = fd, Pacer(fps)
        self.ready = True
        self.rest = b""  # what the loop could not write: the viewer's thread sends it
        self.dead = False
        self.wake = threading.Event()
        self.sent = 0
        self._lock = threading.Lock()  # held across each write: close() waits for it, so the fd stays this socket's

    def offer(self, data: bytes, now: float | None = None) -> bool:
        """Write all of ``data`` now without blocking, or hand the rest to the viewer's thread (and count a paced
        item when ``now`` is given); False when the viewer is gone or still busy with an earlier rest."""
        with self._lock:
            if self.dead or not self.ready:
                return False
            try:
                n = os.write(self.fd, data)  # the handler's socket has a timeout, so its fd is non-blocking
            except BlockingIOError:
                n = 0
            except OSError:  # reset, broken pipe
                self.dead = True
                self.wake.set()
                return False
            if n < len(data):
                self.rest = data[n:]
                self.ready = False
                self.wake.set()
        if now is not None:
            self.pacer.took(now)
            self.sent += 1
        return True

    def close(self) -> None:
        """No more writes from the loop (waits for one in progress); call before the socket closes."""
        with self._lock:
            self.dead = True


class VideoSink(Sink):
    """An MJPEG viewer: frames at ``width`` (at most the frame's), each part ending with the next boundary
    (``b"\r\n--BOUNDARY\r\n"``), so that a browser shows a part as soon as it has it."""

    def __init__(self, fd: int, width: int, fps: float, boundary: bytes):
        super().__init__(fd, fps)
        self.width, self.boundary = width, boundary

    def part(self, seq: int, jpeg: bytes) -> bytes:
        head = b"Content-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Seq: %d\r\n\r\n" % (len(jpeg), seq)
        return b"".join((head, jpeg, self.boundary))


class EventSink(Sink):
    """A server-sent-events viewer: every decision after ``last``, several per write when they come faster."""

    def __init__(self, fd: int, fps: float, last: int):
        super().__init__(fd, fps)
        self.last = last


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
        self._closed = threading.Event()
        self.closed = False
        self.seq = -1  # newest published frame
        self.frames = 0  # inferred frames published
        self._image: np.ndarray | None = None
        self._color = "bgr"
        self._ring: deque[Entry] = deque(maxlen=RING)
        self._sinks: list[VideoSink] = []  # video viewers
        self._event_sinks: list[EventSink] = []
        self.viewers = Counter[str]()  # route -> open connections
        self.stream_rate = Rate()
        self.encode_ms: deque[float] = deque(maxlen=300)
        self.encoded = 0
        self.encode_cpu_s = 0.0  # CPU the loop spent encoding and writing for video viewers
        self.events_cpu_s = 0.0  # ... describing and writing decisions for event viewers
        self.slow_writes = 0  # writes a viewer's full socket cut short (its thread sent the rest)

    # ---- the loop's side ------------------------------------------------------------------
    def publish(self, seq: int, image: np.ndarray, color: str, record: Any) -> None:
        """Make ``image`` and its decision's ``record`` the newest; never blocks on a viewer.

        Viewers whose pacing makes them due get their frame and decisions written right here (see the module
        docstring); with nobody watching this only stores references."""
        now = time.monotonic()
        with self.lock:
            self.seq = seq
            self.frames += 1
            self._image, self._color = image, color
            self._ring.append(Entry(seq, now, self.frames, record))
            due = [s for s in self._sinks if s.ready and s.pacer.ready_at() <= now] if self._sinks else ()
            events = [s for s in self._event_sinks if s.ready and s.pacer.ready_at() <= now] if self._event_sinks else ()
            entries = self._after(min(s.last for s in events)) if events else []
        if due:
            self._stream(image, color, seq, now, due)
        if events:
            self._send_events(entries, now, events)

    def _after(self, seq: int) -> list[Entry]:
        """The decisions newer than frame ``seq`` (as far back as the ring reaches), oldest first; lock held."""
        ring, n = self._ring, 0
        while n < len(ring) and ring[-1 - n].seq > seq:  # newest first: usually a step or two
            n += 1
        return [ring[i] for i in range(len(ring) - n, len(ring))]

    def _send_events(self, entries: list[Entry], now: float, sinks: list[EventSink]) -> None:
        """Write each due event viewer every decision of ``entries`` after its last one; a decision becomes
        JSON once, for all viewers."""
        cpu0 = time.thread_time()
        fresh = [e for e in entries if e.data is None]
        if fresh:
            for e, data in zip(fresh, self.describe(fresh)):
                e.data = data
        for sink in sinks:
            batch = [e for e in entries if e.seq > sink.last]
            if batch and sink.offer(b"".join(b"id: %d\ndata: %s\n\n" % (e.seq, e.data) for e in batch), now):
                sink.last = batch[-1].seq
                self.slow_writes += not sink.ready
        self.events_cpu_s += time.thread_time() - cpu0

    def _stream(self, image: np.ndarray, color: str, seq: int, now: float, due: list[VideoSink]) -> None:
        """Encode the frame just published once per width the due viewers want, and write it to each (lock
        released: the viewers' threads only touch a sink the loop has handed over)."""
        cpu0 = time.thread_time()
        jpegs: dict[int, bytes] = {}
        for sink in due:
            width = min(sink.width, image.shape[1])
            if width not in jpegs:
                t0 = time.perf_counter()
                jpegs[width] = encode_jpeg(image, color, width, self.quality)
                self.encode_ms.append((time.perf_counter() - t0) * 1e3)
                self.encoded += 1
            if sink.offer(sink.part(seq, jpegs[width]), now):
                self.stream_rate.tick(now)
                self.slow_writes += not sink.ready
        self.encode_cpu_s += time.thread_time() - cpu0

    def close(self) -> None:
        """Wake every viewer so they end. Never blocks for long: viewers also see ``closed`` when their
        waits time out, and they are daemon threads."""
        self.closed = True
        self._closed.set()
        if self.lock.acquire(timeout=0.5):
            try:
                for sink in self._sinks + self._event_sinks:
                    sink.wake.set()
            finally:
                self.lock.release()

    def age_s(self) -> float | None:
        """Seconds since the newest frame was published (None before the first)."""
        ring = self._ring
        return time.monotonic() - ring[-1].t if ring else None

    # ---- viewers --------------------------------------------------------------------------
    def attach(self, route: str, limit: int) -> bool:
        """Count a viewer of ``route``; False when ``limit`` are already attached."""
        with self.lock:
            if self.viewers[route] >= limit:
                return False
            self.viewers[route] += 1
            return True

    def viewer_count(self) -> int:
        """Viewers now: the larger of the open video and event streams (a page opens one of each)."""
        with self.lock:
            return max(self.viewers.values(), default=0)

    def detach(self, route: str) -> None:
        with self.lock:
            self.viewers[route] -= 1

    def rates(self, now: float | None = None) -> tuple[float, float, float]:
        """(camera, inferred, sent) frames per second over the last ``RATE_WINDOW_S`` (at most the ring):
        the camera's from the frame numbers (inferred + dropped), the loop's from the publish times."""
        now = time.monotonic() if now is None else now
        with self.lock:
            ring = self._ring
            start = bisect.bisect_left(ring, now - RATE_WINDOW_S, key=_published)  # publish times only grow
            sent = self.stream_rate.per_second(now)
            if len(ring) - start < 2:
                return 0.0, 0.0, sent
            first, last = ring[start], ring[-1]
        span = max(now - first.t, last.t - first.t)
        if span <= 0:
            return 0.0, 0.0, sent
        return (last.seq - first.seq) / span, (last.frames - first.frames) / span, sent

    def add_sink(self, sink: Sink) -> None:
        """Start writing frames (a :class:`VideoSink`) or decisions (an :class:`EventSink`) to a viewer, from
        the next published frame on."""
        with self.lock:
            (self._sinks if isinstance(sink, VideoSink) else self._event_sinks).append(sink)

    def remove_sink(self, sink: Sink) -> None:
        with self.lock:
            (self._sinks if isinstance(sink, VideoSink) else self._event_sinks).remove(sink)
        sink.close()

    @property
    def last_event(self) -> dict[str, Any] | None:
        """The newest decision as its event object (None before the first)."""
        with self.lock:
            newest = self._ring[-1] if self._ring else None
        return None if newest is None else json.loads(self.describe([newest])[0])

    def snapshot(self, width: int | None) -> bytes | None:
        """The newest frame as a JPEG (encoded on request), or None before the first frame."""
        with self.lock:
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
                "events_cpu_s": round(self.events_cpu_s, 6),
                "slow_writes": self.slow_writes,
                "viewers": max(viewers.values(), default=0),
                "connections": viewers,
            }
