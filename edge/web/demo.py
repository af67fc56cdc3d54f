"""``hybrid-edge demo``: the ``run`` loop plus a live web view (and optionally a second bundle on the same frames).

The loop is :func:`edge.run.run_stream` (sources with reconnect, gap resets,
smoothing, meters, the latency summary); its ``on_frame`` hook hands every
decision to the :class:`~edge.web.hub.Hub`, steps the ``--compare`` bundle on the
same frame, keeps the status file, and returns. Serving viewers happens in other
threads and never waits inside the hook.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, NamedTuple

from edge.errors import BundleError, DataError, HybridEdgeError
from edge.measure.latency import STAGES
from edge.run import FrameDecision, RunOptions, open_session, run_stream
from edge.smoothing import make_smoother
from edge.sources import FrameSource
from edge.streaming import StepResult, StreamingSession
from edge.web.auth import Access, is_loopback
from edge.web.hub import Entry, Hub
from edge.web.page import render_page
from edge.web.server import App, DemoServer
from edge.web.sources import SyntheticActionsReader, make_demo_reader


@dataclass(frozen=True)
class DemoOptions:
    """Everything ``hybrid-edge demo`` takes besides the bundle and the source."""

    run: RunOptions = field(default_factory=RunOptions)
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    allow_hosts: tuple[str, ...] = ()
    compare: str | None = None
    loop: bool = False
    fps: float = 10.0  # default MJPEG rate per viewer (?fps= overrides)
    width: int = 480  # default MJPEG width (?w= overrides)
    quality: int = 80
    max_viewers: int = 8
    uncertain: float = 0.5
    status_file: Path | None = None
    show: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 60 or not 16 <= self.width <= 1920:
            raise DataError(f"--fps must be in (0, 60] and --width in [16, 1920] (got {self.fps:g}, {self.width})")
        if not 1 <= self.quality <= 100 or self.max_viewers < 1:
            raise DataError("--quality must be 1..100 and --max-viewers >= 1")
        if not 0 <= self.port < 65536:
            raise DataError(f"--port {self.port}: not a TCP port")
        if self.token is not None and len(self.token) < 8:
            raise DataError("--token must be at least 8 characters")


def window_problem() -> str | None:
    """Why ``--show`` cannot open an OpenCV window here (None when it can).

    Checked before the first ``imshow``: headless OpenCV raises there, and GUI
    OpenCV without a display aborts the whole process.
    """
    import cv2

    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "NONE")
    if gui.upper() in ("NONE", "NO", ""):
        return "this OpenCV has no GUI backend (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


RECENT = 100  # frames behind the compare panel's ratios
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # a NaN raises here, never reaches a browser
# one decision's event (Demo.describe): the keys the page reads, in a fixed order
_EVENT = (b'{"seq":%d,"t":%.4f,"label":%s,"index":%d,"score":%s,"probs":[%s],"stage_ms":{%s%s,'
          b'"energy_mj":%s,%s,%s,"dropped":%d,"reset":%s,"resets":%d,"frames":%d')
_STAGE_MS = b",".join(b'"%s":%%.3f' % s.encode() for s in STAGES)


class Decision(NamedTuple):
    """What the loop hands the hub per frame: references and numbers, formatted only when a viewer is due for it."""

    result: StepResult
    index: int
    score: float
    stages: tuple[float, ...]
    reset: bool
    dropped: int
    resets: int
    energy_mj: float | None
    compare: dict[str, Any] | None


def median_ratio(pairs: deque[tuple[float, float]]) -> float | None:
    """median(second) / median(first) over recent frames (None while there are none)."""
    if not pairs:
        return None
    first = statistics.median(a for a, _ in pairs)
    return round(statistics.median(b for _, b in pairs) / first, 3) if first > 0 else None


class Compare:
    """A second bundle stepped on the same frames: its decision, running agreement, latency and energy ratio."""

    def __init__(self, session: StreamingSession, smooth: str | None):
        self.session = session
        self.smoother = make_smoother(smooth)
        self.smooth = smooth
        self.frames = 0
        self.agree = 0
        self.generation = 0
        self.last: dict[str, Any] | None = None  # the newest step's block (for /stats.json)
        # the last RECENT frames of (first, second) bundle: invoke, and preprocess + invoke + postprocess
        self.invoke_ms: deque[tuple[float, float]] = deque(maxlen=RECENT)
        self.compute_ms: deque[tuple[float, float]] = deque(maxlen=RECENT)

    def step(self, d: FrameDecision) -> dict[str, Any]:
        if d.frame.generation != self.generation:  # the source reconnected: the first session was reset too
            self.generation = d.frame.generation
            self.session.reset()
        r = self.session.step(d.frame.image, d.frame.timestamp, d.frame.color)
        if r.reset or d.reset:
            self.smoother.reset()
        index, score = self.smoother.update(r.probabilities, r.index, r.score) if self.smooth else (r.index, r.score)
        self.frames += 1
        self.agree += int(index == d.index)
        self.compute_ms.append((d.result.preprocess_ms + d.result.invoke_ms + d.result.postprocess_ms,
                                r.preprocess_ms + r.invoke_ms + r.postprocess_ms))
        self.invoke_ms.append((d.result.invoke_ms, r.invoke_ms))
        labels = self.session.bundle.labels
        self.last = {
            "label": labels[index] if index < len(labels) else str(index),
            "score": round(float(score), 4) if math.isfinite(score) else None,  # JSON has no NaN
            "agreement": round(self.agree / self.frames, 4),
            "frames": self.frames,
            "invoke_ms": round(r.invoke_ms, 3),
            "latency_ratio": median_ratio(self.invoke_ms),
            # energy on one CPU is power x compute time; both run on the same core: the ratio of compute times
            "energy_ratio": median_ratio(self.compute_ms),
            "energy_basis": "compute-time ratio, an estimate",
        }
        return self.last


class Demo:
    """One demo: sessions, source, hub, server; :meth:`serve` runs it until the source ends or Ctrl-C."""

    def __init__(self, bundle: str | Path, source_spec: str, options: DemoOptions = DemoOptions(),
                 out: IO[str] | None = None):
        from edge.measure.energy import make_meter

        self.options = options
        self.out = out
        self.session = open_session(bundle, options.run)
        b = self.session.bundle
        self.compare: Compare | None = None
        if options.compare:
            second = open_session(options.compare, options.run)
            if list(second.bundle.labels) != list(b.labels):
                raise BundleError(f"{second.bundle.path}: labels differ from {b.path}; --compare needs the same labels")
            self.compare = Compare(second, options.run.smooth)
        self.reader = make_demo_reader(source_spec, b.preprocessing.size, len(b.labels), options.loop,
                                       options.run.source.stall_timeout_s)
        if options.show and (problem := window_problem()) is not None:
            self._say(f"--show: no local window ({problem}); watch the web view instead")
            options = replace(options, show=False)
            self.options = options
        self.access = Access.for_bind(options.host, options.token, options.allow_hosts)
        import cv2

        # OpenCV spreads a large resize over a thread pool whose idle workers spin: for the live view's
        # JPEGs that doubles their CPU cost, and the cores are the loop's. One thread, process-wide.
        cv2.setNumThreads(1)
        self.hub = Hub(self.describe, options.quality)
        self.meter = make_meter(options.run.meter)
        self._texts: dict[str | None, bytes] = {}
        self._label_json = [self._json_text(label) for label in b.labels]
        self._meter_json = b'"meter":%s,"estimated":%s' % (
            self._json_text(self.meter.name), b"true" if self.meter.name.startswith("estimate:") else b"false")
        self.source: FrameSource | None = None
        self._energy: tuple[float, int, float] | None = None  # (joules, frames, monotonic) at the last reading
        self.energy_mj: float | None = None
        self.status: Any = None
        config = {
            "bundle": b.path.name, "precision": b.precision, "mode": self.session.mode.value,
            "labels": list(b.labels), "source": self.reader.name, "fps": options.fps, "width": options.width,
            "uncertain": options.uncertain, "topk": min(5, len(b.labels)), "smooth": options.run.smooth,
            "compare": None if self.compare is None else {
                "bundle": self.compare.session.bundle.path.name, "precision": self.compare.session.bundle.precision},
        }
        page, csp = render_page(config)
        self.server = DemoServer(options.host, options.port, App(
            self.hub, self.access, page, csp, self.stats, options.max_viewers, options.fps, options.width, time.time()))

    def _say(self, text: str) -> None:
        if self.out is not None:
            print(text, file=self.out, flush=True)

    @property
    def url(self) -> str:
        """The address to open (with the token, when one is required)."""
        host = self.options.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        suffix = f"?token={self.access.token}" if self.access.token else ""
        return f"http://{host}:{self.server.port}/{suffix}"

    # ---- the hook --------------------------------------------------------------------------
    def on_frame(self, d: FrameDecision) -> None:
        """Publish one decision (called by the loop for every inferred frame; formats nothing)."""
        self._update_energy(time.monotonic())
        source = self.source
        compare = self.compare.step(d) if self.compare is not None else None
        self.hub.publish(d.frame.index, d.frame.image, d.frame.color, Decision(
            d.result, d.index, d.score, d.stages, d.reset, source.dropped if source is not None else 0,
            self.session.resets, self.energy_mj, compare))
        if self.status is not None:
            self.status.update(self.hub.frames)
        if self.options.show:
            self._show(d)

    def describe(self, entries: list[Entry]) -> list[bytes]:
        """The events of published decisions as JSON (what ``/events`` sends), made when an event viewer is due.

        One ``bytes %`` template per decision: building a dict of ~17 keys and rounding each number cost
        twice as much, and this runs on the loop's thread for every decision a page sees. Rates,
        viewers, meter and the encode time are the hub's at this moment, formatted once for the batch.
        Numbers: times in ms to the microsecond, probabilities and scores to 4 significant digits, energy as measured."""
        camera, inferred, sent = self.hub.rates()
        encode = self.hub.encode_ms[-1] if self.hub.encode_ms else None
        shared = b'"fps":{"camera":%.2f,"inference":%.2f,"stream":%.2f},"viewers":%d' % (
            camera, inferred, sent, self.hub.viewer_count())
        encode_tail = b',"encode":%s}' % (b"null" if encode is None else b"%.3f" % encode)
        labels, meter, text = self._label_json, self._meter_json, self._json_text
        truth = self.reader.activity_at if isinstance(self.reader, SyntheticActionsReader) else None
        events = []
        for e in entries:
            d: Decision = e.record
            probs = b",".join([b"%.4g" % p for p in d.result.probability_list()])
            if b"n" in probs:  # nan or inf (no finite %g has an n): JSON has no such number, the page gets null
                probs = b",".join(b"null" if b"n" in p else p for p in probs.split(b","))
            event = _EVENT % (
                e.seq, e.t, labels[d.index] if d.index < len(labels) else b'"%d"' % d.index, d.index,
                b"%.4g" % d.score if math.isfinite(d.score) else b"null", probs, _STAGE_MS % d.stages, encode_tail,
                b"null" if d.energy_mj is None or not math.isfinite(d.energy_mj) else repr(d.energy_mj).encode(),
                meter, shared, d.dropped,
                b"true" if d.reset else b"false", d.resets, e.frames)
            if truth is not None:
                event += b',"truth":%s' % text(truth(e.seq))
            if d.compare is not None:
                event += b',"compare":%s' % _JSON.encode(d.compare).encode()
            events.append(event + b"}")
        return events

    def _json_text(self, value: str | None) -> bytes:
        """``value`` as a JSON string (or null), each distinct one encoded once."""
        cached = self._texts.get(value)
        if cached is None:
            cached = self._texts[value] = _JSON.encode(value).encode()
        return cached

    def _update_energy(self, now: float) -> None:
        """Energy per inferred frame over the last second, from the meter (the whole process)."""
        if self._energy is None:
            self.meter.start()
            self._energy = (0.0, self.hub.frames, now)
            return
        joules0, frames0, t0 = self._energy
        if now - t0 >= 1.0:
            joules = self.meter.stop().joules
            frames = self.hub.frames
            if frames > frames0:
                self.energy_mj = round((joules - joules0) * 1e3 / (frames - frames0), 4)
            self._energy = (joules, frames, now)

    def _show(self, d: FrameDecision) -> None:
        import cv2

        image = d.frame.image if d.frame.color == "bgr" else cv2.cvtColor(d.frame.image, cv2.COLOR_RGB2BGR)
        cv2.imshow("hybrid-edge", image)
        labels = self.session.bundle.labels
        cv2.setWindowTitle("hybrid-edge", f"hybrid-edge: {labels[d.index] if d.index < len(labels) else d.index}")
        cv2.waitKey(1)

    def stats(self) -> dict[str, Any]:
        """``/stats.json``."""
        s = self.hub.stats()
        source = self.source
        s.update({
            "dropped": source.dropped if source is not None else 0,
            "frames_read": source.frames_read if source is not None else 0,
            "reconnects": source.reconnects if source is not None else 0,
            "resets": self.session.resets,
            "energy_mj": self.energy_mj,
            "meter": self.meter.name,
            "bundle": str(self.session.bundle.path),
            "cpu_s": round(time.process_time(), 6),  # this process, all threads (what a viewer costs shows here)
        })
        if self.compare is not None and self.compare.last is not None:
            s["compare"] = self.compare.last
        return s

    # ---- running ---------------------------------------------------------------------------
    def serve(self) -> dict[str, Any] | None:
        """Stream until the source ends (returns the run summary) or Ctrl-C (returns None)."""
        from edge.bundle import manifest_sha256
        from edge.status import StatusWriter

        opts = self.options
        if opts.status_file is not None:
            b = self.session.bundle
            self.status = StatusWriter(opts.status_file, b.path, manifest_sha256(b.path))
        self.server.start()
        self._say(f"live view: {self.url}")
        if is_loopback(opts.host):
            self._say(f"  from another machine: ssh -L {self.server.port}:127.0.0.1:{self.server.port} USER@THIS-BOARD, "
                      f"then open http://127.0.0.1:{self.server.port}/")
        error: str | None = None
        summary = None
        try:
            with FrameSource(self.reader, opts.run.source) as source:
                self.source = source
                summary = run_stream(self.session, source, opts.run, self.out, on_frame=self.on_frame)
        except KeyboardInterrupt:
            self._say(f"stopped after {self.hub.frames} frames")
        except HybridEdgeError as exc:
            error = str(exc)
            raise
        finally:
            self.close(error)
        return summary

    def stop(self) -> None:
        """End :meth:`serve` from another thread: the source stops, the loop finishes with its summary."""
        if self.source is not None:
            self.source.close()

    def close(self, error: str | None = None) -> None:
        """Stop the viewers and the server, and write the final status; idempotent."""
        self.hub.close()
        self.server.shutdown()
        self.server.server_close()
        if self.status is not None:
            self.status.close(self.hub.frames, error)
            self.status = None
