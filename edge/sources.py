"""Frame sources: one :class:`FrameSource` for cameras, files, URLs, image folders and stdin.

A reader thread pulls frames from a :class:`Reader` (the blocking part: OpenCV
capture, image files, a pipe) into a bounded queue. The consumer never waits on
the device itself, only on the queue:

* live sources (camera, ``rtsp://``/``http://``, synthetic) keep the **latest**
  frames: when the queue is full the oldest frame is dropped and counted;
* offline sources (video file, image directory, stdin) block the reader instead,
  so every frame is processed (``policy`` overrides either default);
* when no frame arrives for ``stall_timeout_s`` the consumer raises
  :class:`CameraLost` — a hung read can never hang the runtime (a network
  read gives up half a second later, so a silent stream is ``camera_lost`` at
  the stall timeout, every time);
* a live source whose read fails (connection closed or refused: a camera that
  rebooted, a server restarted) reconnects with exponential backoff; the stall
  timer waits for the reconnect, which ends within its own budget (attempts x
  (backoff + open timeout)) in a new stream or :class:`CameraLost`; frames after
  a reconnect carry a new ``generation`` so the session resets its state;
* a file source ends cleanly at EOF, and a video that ends before its declared
  frame count (truncated/corrupt) ends with a :class:`~edge.errors.DataError`.

Source specs (``--source``)::

    0, 1, ...            camera index (OpenCV)
    clip.mp4             video file (anything OpenCV/FFmpeg reads)
    rtsp://... http://...  network stream (FFmpeg), reconnects
    frames/              image directory (sorted .png/.jpg/.jpeg/.bmp files)
    -                    raw frames on stdin: H*W*3 uint8 RGB bytes per frame,
                         H, W from the bundle's preprocessing size
    stdin:framed         stdin with a 24-byte header per frame (see STDIN_HEADER)
    synthetic:fps=30,frames=300,size=48x48,stall_after=N,seed=0
                         generated test-pattern frames (benchmarks, tests); paced
                         (fps > 0) it is live like a camera, unpaced (the
                         default) it is lossless like a file

OpenCV is imported only by the readers that need it.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

import numpy as np

from edge.errors import DataError, HybridEdgeError

#: ``stdin:framed`` header: magic ``b"HEF1"``, uint32 height, uint32 width, uint32
#: channels, float64 capture timestamp in seconds (0 = use arrival time); little-endian.
STDIN_HEADER = struct.Struct("<4sIIId")
STDIN_MAGIC = b"HEF1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class CameraLost(HybridEdgeError):
    """No frame arrived within the stall timeout, or a live source could not reconnect."""



@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: HxWxC uint8 pixels in ``color`` order.
        timestamp: capture time in seconds (media time for files, the header's
            time for framed stdin, else the monotonic clock at capture).
        index: position in the stream (counts dropped frames too).
        color: ``"bgr"`` (OpenCV) or ``"rgb"``.
        generation: incremented on every reconnect; a change means "reset state".
        captured_at: ``time.perf_counter()`` when the read started.
        read_ms: time the read call took (the capture stage).
    """

    image: np.ndarray
    timestamp: float
    index: int
    color: str
    generation: int
    captured_at: float
    read_ms: float


class Reader(Protocol):
    """The blocking part of a source. ``read`` returns ``(image, timestamp|None)`` or None at EOF."""

    name: str
    live: bool
    color: str

    def open(self) -> None: ...

    def read(self) -> tuple[np.ndarray, float | None] | None: ...

    def close(self) -> None: ...


def _cv2() -> Any:
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    return cv2


class CaptureReader:
    """OpenCV ``VideoCapture``: camera index, video file or network URL."""

    color = "bgr"
    native = True  # reads block inside OpenCV (see :func:`stuck_native_readers`)

    def __init__(self, target: int | str, live: bool, timeout_s: float = 5.0):
        self.target = target
        self.live = live
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self.timeout_s = timeout_s  # opening a stream
        self.timeout_ms = int(timeout_s * 1000)
        # a read outlasts the consumer's stall timer (the same timeout_s) by half a second: a silent stream
        # is camera_lost, deterministically, and the read then returns within FrameSource.close()'s join
        self.read_timeout_ms = self.timeout_ms + 500
        self._cap: Any = None
        self.expected_frames = 0
        self.frames = 0

    def open(self) -> None:
        cv2 = _cv2()
        if isinstance(self.target, str) and not self.live and not Path(self.target).is_file():
            raise DataError(f"{self.target}: video file not found")
        if isinstance(self.target, str) and self.live:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms]
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            if not self.live:
                what = "cannot open video (corrupt, truncated or unsupported format)"
            elif isinstance(self.target, int):
                what = f"cannot open (is a camera connected as /dev/video{self.target} and not in use?)"
            else:
                what = "cannot open (unreachable, refused or not a video stream)"
            raise DataError(f"{self.name}: {what}")
        self._cap = cap
        # a URL may serve a finite file: its declared frame count tells its end from a lost link
        if not self.live or isinstance(self.target, str):
            self.expected_frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.frames = 0

    def read(self) -> tuple[np.ndarray, float | None] | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.live and self.expected_frames and self.frames >= self.expected_frames:
                return None  # a finite stream (e.g. a file over HTTP) ended
            if self.live:
                raise ConnectionError("read failed: the stream closed or timed out")
            if self.expected_frames and self.frames < self.expected_frames:
                raise DataError(
                    f"{self.name}: video ended after {self.frames} of {self.expected_frames} frames "
                    "(file is truncated or corrupt)"
                )
            return None
        self.frames += 1
        if self.live:
            return image, None
        return image, float(self._cap.get(_cv2().CAP_PROP_POS_MSEC)) / 1e3

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageDirReader:
    """Sorted image files of a directory, one frame each (timestamps from ``fps``)."""

    live = False
    color = "bgr"

    def __init__(self, directory: Path, fps: float = 30.0):
        self.directory = directory
        self.name = str(directory)
        self.fps = fps
        self._files: list[Path] = []
        self._i = 0

    def open(self) -> None:
        self._files = sorted(p for p in self.directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise DataError(f"{self.directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self._i = 0

    def read(self) -> tuple[np.ndarray, float | None] | None:
        if self._i >= len(self._files):
            return None
        path = self._files[self._i]
        image = _cv2().imread(str(path), 1)
        if image is None:
            raise DataError(f"{path}: not a readable image")
        self._i += 1
        return image, (self._i - 1) / self.fps

    def close(self) -> None:
        self._files = []


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes | None:
    """``n`` bytes, or None at a clean EOF; a partial read is a truncated stream."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got == 0:
                return None
            raise DataError(f"stdin: stream ended inside {what} ({got} of {n} bytes)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class StdinReader:
    """Raw RGB frames from a pipe: fixed ``H*W*3`` bytes each, or framed with a header."""

    live = False
    color = "rgb"

    def __init__(self, size: tuple[int, int], framed: bool = False, stream: BinaryIO | None = None):
        self.size = size
        self.framed = framed
        self.name = "stdin" + (" (framed)" if framed else f" (raw {size[0]}x{size[1]}x3)")
        self._stream = stream

    def open(self) -> None:
        if self._stream is None:
            self._stream = sys.stdin.buffer

    def read(self) -> tuple[np.ndarray, float | None] | None:
        assert self._stream is not None
        h, w = self.size
        c, ts = 3, None
        if self.framed:
            head = _read_exact(self._stream, STDIN_HEADER.size, "a frame header")
            if head is None:
                return None
            magic, h, w, c, stamp = STDIN_HEADER.unpack(head)
            if magic != STDIN_MAGIC or not (0 < h <= 8192 and 0 < w <= 8192 and c in (1, 3)):
                raise DataError(f"stdin: bad frame header (magic {magic!r}, {h}x{w}x{c}); expected {STDIN_MAGIC!r}")
            ts = stamp if stamp > 0 else None
        data = _read_exact(self._stream, h * w * c, "a frame")
        if data is None:
            if self.framed:
                raise DataError("stdin: stream ended after a header without its frame")
            return None
        return np.frombuffer(data, np.uint8).reshape(h, w, c), ts

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class SyntheticSpec:
    """``synthetic:fps=30,frames=300,size=48x48,stall_after=0,fail_every=0,seed=0``."""

    fps: float = 0.0  # 0 = as fast as the consumer takes them (lossless); > 0 = paced like a camera
    frames: int = 0  # 0 = endless
    size: tuple[int, int] = (48, 48)
    stall_after: int = 0  # block forever after this many frames (0 = never)
    fail_every: int = 0  # a live-style read failure every N frames (reconnect tests)
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> "SyntheticSpec":
        kw: dict[str, Any] = {}
        for item in filter(None, text.split(",")):
            key, _, value = item.partition("=")
            if key == "size":
                h, _, w = value.partition("x")
                kw["size"] = (int(h), int(w))
            elif key == "fps":
                kw["fps"] = float(value)
            elif key in ("frames", "stall_after", "fail_every", "seed"):
                kw[key] = int(value)
            else:
                raise DataError(f"synthetic source: unknown option {key!r} (fps, frames, size, stall_after, fail_every, seed)")
        return cls(**kw)


class SyntheticReader:
    """Test-pattern frames: a moving bar over seeded noise (no I/O).

    Paced (``fps`` > 0) or with simulated link failures (``fail_every``) it is
    a live source (latest-frame queue, reconnects); unpaced it is an offline
    one, so every frame it makes is processed.
    """

    color = "rgb"

    def __init__(self, spec: SyntheticSpec):
        self.spec = spec
        self.live = spec.fps > 0 or spec.fail_every > 0
        self.name = "synthetic"
        h, w = spec.size
        # seeded hash noise (Knuth multiplicative); numpy.random would add ~0.1 s to a cold start
        idx = np.arange(h * w * 3, dtype=np.uint64) + np.uint64(spec.seed) * np.uint64(1_000_003)
        noise = ((idx * np.uint64(2654435761)) % np.uint64(1 << 32)) >> np.uint64(26)
        self._base = noise.astype(np.uint8).reshape(h, w, 3)
        self._frames = [self._base.copy() for _ in range(8)]
        for i, f in enumerate(self._frames):
            f[:, (i * w) // 8 : ((i + 1) * w) // 8] = 255
        self._n = 0
        self._next = 0.0
        self._failed_at = -1

    def open(self) -> None:
        self._next = time.perf_counter()

    def read(self) -> tuple[np.ndarray, float | None] | None:
        s = self.spec
        if s.frames and self._n >= s.frames:
            return None
        if s.stall_after and self._n >= s.stall_after:
            threading.Event().wait()  # a device that never answers again
        if s.fail_every and self._n and self._n % s.fail_every == 0 and self._failed_at != self._n:
            self._failed_at = self._n  # fail once at this frame; the retry after reconnect succeeds
            raise ConnectionError("simulated link failure")
        if s.fps > 0:
            self._next += 1.0 / s.fps
            delay = self._next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        image = self._frames[self._n % len(self._frames)]
        self._n += 1
        return image, None

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class SourceOptions:
    """Queue, stall and reconnect behaviour of a :class:`FrameSource`."""

    queue_size: int = 2
    policy: str = "auto"  # "latest" (drop oldest), "block" (lossless) or "auto" (latest if live)
    stall_timeout_s: float = 5.0
    reconnect_attempts: int = 5
    backoff_s: tuple[float, float] = (0.2, 5.0)  # first delay, cap (doubles each attempt)


class FrameSource:
    """Reads a :class:`Reader` in a thread into a bounded queue; iterate it for frames.

    Use as a context manager. ``dropped``, ``reconnects`` and ``frames_read`` are
    counters for the summary.
    """

    def __init__(self, reader: Reader, options: SourceOptions = SourceOptions()):
        if options.queue_size < 1:
            raise DataError("queue size must be >= 1")
        if options.reconnect_attempts < 0:
            raise DataError("reconnect attempts must be >= 0")
        self.reader = reader
        self.options = options
        policy = options.policy if options.policy != "auto" else ("latest" if reader.live else "block")
        if policy not in ("latest", "block"):
            raise DataError(f"unknown queue policy {options.policy!r}; use latest, block or auto")
        self.policy = policy
        self.dropped = 0
        self.reconnects = 0
        self.frames_read = 0
        self._queue: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._eof = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._reconnect_until: float | None = None  # monotonic end of the reconnect budget while reconnecting
        self._reconnected_at = float("-inf")  # monotonic time the last reconnect ended

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def live(self) -> bool:
        return self.reader.live

    def start(self) -> "FrameSource":
        """Open the reader (errors surface here) and start the reader thread; idempotent."""
        if self._thread is not None:
            return self
        self.reader.open()
        self._thread = threading.Thread(target=self._run, name=f"frames:{self.name}", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> "FrameSource":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader thread; a read still blocked in the device after a second is abandoned.

        The abandoned thread is a daemon. If it sits inside OpenCV, the process
        must not finalize normally (see :func:`stuck_native_readers`).
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            if not self._thread.is_alive():
                self.reader.close()
            elif getattr(self.reader, "native", False):
                _stuck_readers.append(self.name)

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.policy == "block":
                while len(self._queue) >= self.options.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif len(self._queue) >= self.options.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(frame)
            self._cond.notify_all()

    def _backoff_delays(self) -> list[float]:
        """The wait before each reconnect attempt: the first delay, doubling up to the cap."""
        first, cap = self.options.backoff_s
        delays, delay = [], first
        for _ in range(self.options.reconnect_attempts):
            delays.append(delay)
            delay = min(cap, delay * 2)
        return delays

    def reconnect_budget(self) -> float:
        """Seconds a full reconnect may take: every backoff delay plus an open timeout per attempt."""
        open_timeout = float(getattr(self.reader, "timeout_s", self.options.stall_timeout_s))
        return sum(self._backoff_delays()) + self.options.reconnect_attempts * open_timeout + 1.0

    def _reconnect(self, reason: BaseException) -> None:
        """Reopen the reader with exponential backoff; the consumer's stall timer waits meanwhile."""
        with self._cond:
            self._reconnect_until = time.monotonic() + self.reconnect_budget()
        try:
            for delay in self._backoff_delays():
                if self._stop.wait(delay):
                    return
                self.reader.close()
                try:
                    self.reader.open()
                except (DataError, ConnectionError, OSError):
                    continue
                self.reconnects += 1
                self._generation += 1
                return
            raise CameraLost(f"{self.name}: lost ({reason}); {self.options.reconnect_attempts} reconnect attempts failed")
        finally:
            with self._cond:
                self._reconnect_until = None
                self._reconnected_at = time.monotonic()
                self._cond.notify_all()  # the consumer restarts its stall timer from now

    def _run(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    got = self.reader.read()
                except (ConnectionError, OSError) as exc:
                    if not self.reader.live:
                        raise DataError(f"{self.name}: read failed ({exc})") from None
                    self._reconnect(exc)
                    continue
                t1 = time.perf_counter()
                if got is None:
                    break
                image, ts = got
                self.frames_read += 1
                self._put(Frame(image, ts if ts is not None else t0, index, self.reader.color, self._generation, t0, (t1 - t0) * 1e3))
                index += 1
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._error = exc
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def get(self) -> Frame | None:
        """The oldest queued frame; None at the end of the stream.

        Raises:
            CameraLost: nothing arrived within ``stall_timeout_s``.
            DataError: the reader failed (corrupt file, bad stdin header...).
        """
        stall = self.options.stall_timeout_s
        deadline = time.monotonic() + stall
        with self._cond:
            while not self._queue:
                if self._eof:
                    if self._error is not None:
                        raise self._error
                    return None
                now = time.monotonic()
                if self._reconnect_until is not None:  # the reader is reopening the source: wait for it
                    remaining = self._reconnect_until - now
                    if remaining <= 0:
                        raise CameraLost(f"{self.name}: reconnect did not finish within {self.reconnect_budget():.1f} s (camera_lost)")
                else:
                    deadline = max(deadline, self._reconnected_at + stall)  # a reopened stream gets a full timeout
                    remaining = deadline - now
                    if remaining <= 0:
                        raise CameraLost(f"{self.name}: no frame for {stall:g} s (camera_lost)")
                self._cond.wait(remaining)
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.get()) is not None:
            yield frame

    @property
    def queued(self) -> int:
        return len(self._queue)


_stuck_readers: list[str] = []


def stuck_native_readers() -> list[str]:
    """Sources whose reader thread :meth:`FrameSource.close` abandoned inside a native (OpenCV) read.

    Python's finalization ends daemon threads with a forced unwind; through
    OpenCV's C++ frames that aborts the process (``terminate called without an
    active exception``). A program that sees a name here should flush its output
    and leave with ``os._exit`` — ``hybrid-edge`` does (:func:`edge.cli.entry`).
    """
    return list(_stuck_readers)


def make_reader(spec: str, frame_size: tuple[int, int] = (48, 48), timeout_s: float = 5.0) -> Reader:
    """Reader for a ``--source`` spec (see the module docstring)."""
    if spec in ("-", "stdin"):
        return StdinReader(frame_size)
    if spec == "stdin:framed":
        return StdinReader(frame_size, framed=True)
    if spec.startswith("synthetic:") or spec == "synthetic":
        return SyntheticReader(SyntheticSpec.parse(spec.partition(":")[2]))
    if spec.isdigit():
        return CaptureReader(int(spec), live=True, timeout_s=timeout_s)
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in ("rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp"):
            raise DataError(f"{spec}: unsupported URL scheme {scheme!r}")
        return CaptureReader(spec, live=True, timeout_s=timeout_s)
    path = Path(spec)
    if path.is_dir():
        return ImageDirReader(path)
    if not path.exists():
        raise DataError(f"{spec}: no such file, directory or camera")
    return CaptureReader(str(path), live=False, timeout_s=timeout_s)


def open_source(spec: str, frame_size: tuple[int, int] = (48, 48), options: SourceOptions = SourceOptions()) -> FrameSource:
    """A started :class:`FrameSource` for a ``--source`` spec."""
    return FrameSource(make_reader(spec, frame_size, options.stall_timeout_s), options).start()


__all__ = [
    "CameraLost", "CaptureReader", "Frame", "FrameSource", "ImageDirReader", "Reader", "SourceOptions",
    "StdinReader", "SyntheticReader", "SyntheticSpec", "make_reader", "open_source",
    "stuck_native_readers",
]
