"""Stream a live or recorded source through a bundle: ``hybrid-edge run``.

The loop is: take the oldest queued frame -> reset the session if the source
reconnected -> ``session.step`` (preprocess from the manifest, invoke, state
feedback, gap reset) -> smoothing -> report. It prints one line per decision
change and returns a summary (latency per stage with warm-up excluded,
throughput, drops, energy, board). ``json_log`` gets one JSON object per frame.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, NamedTuple

from edge.bundle import Bundle, read_bundle
from edge.errors import BackendError, BundleError, HybridEdgeError
from edge.measure.latency import STAGES, StreamLatency, throughput
from edge.smoothing import make_smoother
from edge.sources import Frame, FrameSource, SourceOptions, make_reader
from edge.streaming import StepResult, StreamingSession


@dataclass(frozen=True)
class RunOptions:
    """Everything ``hybrid-edge run`` takes besides the bundle and the source."""

    threads: int = 1
    delegate: str | None = None  # None: the bundle's
    max_frames: int = 0  # 0 = until the source ends
    smooth: str | None = None
    json_log: Path | None = None
    reset_gap_ms: float | None = None
    meter: str = "auto"
    isolate: bool = False
    self_test: bool = False
    warmup: int = 5
    source: SourceOptions = SourceOptions()
    status_file: Path | None = None  # the service status file (edge.status) the deploy health check reads


class FrameDecision(NamedTuple):
    """What ``on_frame`` gets per inferred frame: the frame, the model's result, the (smoothed) decision,
    the stage timings in ms (in :data:`~edge.measure.latency.STAGES` order) and whether the state was reset."""

    frame: Frame
    result: StepResult
    index: int
    score: float
    stages: tuple[float, ...]
    reset: bool


def requires_edgetpu(bundle: Bundle) -> bool:
    """A bundle compiled for the Edge TPU (manifest flag or an ``edgetpu-custom-op``) needs the delegate."""
    if bundle.manifest.edgetpu_compiled:
        return True
    from edge.flatbuffer import read_model

    return any("edgetpu" in op for i in range(len(bundle.graphs)) for op in read_model(bundle.model_path(i)).custom_ops)


def open_session(bundle_path: str | Path, options: RunOptions) -> StreamingSession:
    """Verify the bundle (hashes, structure), enforce Edge TPU needs, optionally probe it in a subprocess."""
    bundle = read_bundle(bundle_path)
    if options.delegate != "edgetpu" and requires_edgetpu(bundle):
        raise BackendError(f"{bundle.path}: compiled for the Edge TPU; run it with --delegate edgetpu")
    if options.isolate:
        from edge.isolate import probe_bundle

        probe_bundle(bundle.path, options.threads, options.delegate)
    gap = options.reset_gap_ms / 1e3 if options.reset_gap_ms is not None else None
    session = StreamingSession(bundle, num_threads=options.threads, delegate=options.delegate, reset_gap_s=gap)
    if options.self_test:
        from edge.inspect import self_test

        try:
            self_test(bundle)  # the golden input must still give the golden output (catches damaged weights)
        except (RuntimeError, ValueError) as exc:
            raise BundleError(f"{bundle.path}: golden self-test could not run ({exc})") from None
    return session


def _say(out: IO[str] | None, text: str) -> None:
    if out is not None:
        print(text, file=out, flush=True)


def run_stream(
    session: StreamingSession,
    source: FrameSource,
    options: RunOptions = RunOptions(),
    out: IO[str] | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    on_frame: Callable[[FrameDecision], None] | None = None,
) -> dict[str, Any]:
    """Run ``session`` on frames from a started ``source`` until it ends or ``max_frames``.

    ``on_frame`` (the live view's hook) gets a :class:`FrameDecision` per inferred frame.

    Returns the summary dictionary (what ``--summary-json`` writes; ``--json-log`` holds only per-frame objects).

    Raises:
        HybridEdgeError: the source or the model failed mid-stream (``camera_lost``,
            a truncated file); its ``partial`` holds the summary up to that frame
            (with ``error`` set), so a long run's measurements are never lost.
    """
    from edge.measure.board import machine_facts
    from edge.measure.energy import make_meter

    smoother = make_smoother(options.smooth)
    latency = StreamLatency(warmup=options.warmup, stages=STAGES)
    meter = make_meter(options.meter)
    log = open(options.json_log, "w") if options.json_log else None
    labels = session.bundle.labels
    generation = 0
    last_index = -1
    frames = 0
    resets_before = session.resets
    error: HybridEdgeError | None = None
    t_begin = time.perf_counter()
    meter.start()
    try:
        for frame in source:
            t0 = time.perf_counter()
            reset = False
            if frame.generation != generation:  # reconnected: a new stream, forget the old one
                generation = frame.generation
                session.reset()
                reset = True
            result = session.step(frame.image, frame.timestamp, frame.color)
            t1 = time.perf_counter()
            if reset or result.reset:
                smoother.reset()
            index, score = smoother.update(result.probabilities, result.index, result.score) if options.smooth else (result.index, result.score)
            t2 = time.perf_counter()
            stages = (
                frame.read_ms,
                (t0 - frame.captured_at) * 1e3 - frame.read_ms,
                result.preprocess_ms,
                result.invoke_ms,
                result.postprocess_ms + (t2 - t1) * 1e3,
                (t2 - frame.captured_at) * 1e3,
            )
            latency.record(stages)
            if index != last_index:
                label = labels[index] if index < len(labels) else str(index)
                _say(out, f"{t2 - t_begin:9.3f}s  frame {frame.index:>6}  {label} ({score:.2f})")
                last_index = index
            if log is not None:
                log.write(json.dumps({
                    "frame": frame.index, "timestamp": round(frame.timestamp, 6),
                    "label": labels[index] if index < len(labels) else str(index), "index": index,
                    "score": round(score, 4), "reset": bool(reset or result.reset),
                    "latency_ms": {s: round(v, 4) for s, v in zip(STAGES, stages)},
                    "dropped": source.dropped,
                }) + "\n")
            if on_result is not None:
                on_result(frames, result)
            if on_frame is not None:
                on_frame(FrameDecision(frame, result, index, score, stages, bool(reset or result.reset)))
            frames += 1
            if options.max_frames and frames >= options.max_frames:
                break
    except HybridEdgeError as exc:
        error = exc
    finally:
        reading = meter.stop()
        wall = time.perf_counter() - t_begin
        if log is not None:
            log.close()
    summary: dict[str, Any] = {
        "bundle": str(session.bundle.path),
        "source": source.name,
        "backend": session.backend,
        "threads": options.threads,
        "delegate": options.delegate or session.bundle.delegate,
        **throughput(frames, source.dropped, wall),
        "resets": session.resets - resets_before,
        "reconnects": source.reconnects,
        "warmup_frames": min(options.warmup, frames),
        "latency_ms": latency.summary(),
        "energy": {
            "source": reading.source,
            "estimated": reading.estimated,
            "mj_per_frame": round(reading.joules * 1e3 / frames, 4) if frames else 0.0,
            "average_watts": round(reading.watts, 4),
        },
        "platform": machine_facts(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "opencv_imported": sys.modules.get("cv2") is not None,
    }
    if error is not None:
        summary["error"] = str(error)
        error.partial = summary
        raise error
    return summary


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable summary ``hybrid-edge run`` prints at the end."""
    from edge.measure.board import format_facts

    lines = [f"stopped early: {s['error']}"] if s.get("error") else []
    lines += [
        f"frames {s['frames']} in {s['seconds']:.2f} s ({s['fps']:.1f} fps), dropped {s['dropped']} "
        f"({100 * s['drop_rate']:.1f} %), resets {s['resets']}, reconnects {s['reconnects']}",
        f"{'latency ms, ' + str(s['warmup_frames']) + ' warm-up frames excluded':<40}"
        f"{'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}",
    ]
    measured = {stage: p for stage, p in s["latency_ms"].items() if p}
    if not measured:
        lines.append(f"  too few frames: {s['frames']} streamed, {s['warmup_frames']} of them warm-up")
    for stage, p in measured.items():
        lines.append(f"  {stage:<38}{p['p50']:8.3f} {p['p90']:8.3f} {p['p99']:8.3f} {p['max']:8.3f}")
    e = s["energy"]
    lines.append(f"energy {e['mj_per_frame']:.4f} mJ/frame, {e['average_watts']:.3f} W average ({e['source']})")
    lines.append(f"platform {format_facts(s['platform'])}; backend {s['backend']}, {s['threads']} thread(s), delegate {s['delegate']}")
    return "\n".join(lines)


def run_bundle(bundle_path: str | Path, source_spec: str, options: RunOptions = RunOptions(),
               out: IO[str] | None = None) -> dict[str, Any]:
    """Open the bundle and the source, stream, and return the summary (see :func:`run_stream`)."""
    session = open_session(bundle_path, options)
    reader = make_reader(source_spec, session.bundle.preprocessing.size, options.source.stall_timeout_s)
    status = None
    if options.status_file is not None:
        from edge.bundle import manifest_sha256
        from edge.status import StatusWriter

        status = StatusWriter(options.status_file, session.bundle.path.resolve(), manifest_sha256(session.bundle.path))
    try:
        with FrameSource(reader, options.source) as source:
            summary = run_stream(session, source, options, out,
                                 on_result=(lambda n, _r: status.update(n + 1)) if status else None)
    except HybridEdgeError as exc:
        if status is not None:
            status.close(int((exc.partial or {}).get("frames", 0)), str(exc))
        raise
    if status is not None:
        status.close(int(summary["frames"]))
    return summary
