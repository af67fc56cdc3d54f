"""One benchmark measurement in a fresh process: ``python -m benchmarks.bench_worker REQUEST.json OUT.json``.

A fresh process per (bundle, threads) makes init time, first-inference time and
peak RSS belong to that bundle alone. The measured loop follows TFLite
``benchmark_model`` / MLPerf rules: warm-up steps are excluded, and each repeat
runs at least ``runs`` steps AND at least ``min_seconds``. Each step is the full
runtime path (preprocess + quantize, invoke with fed-back state, dequantize).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import Mode, read_bundle
from edge.compat import ops_details
from edge.evalsets import align_labels, load_clipset
from edge.evaluate import ItemStepper, predict
from edge.measure.energy import make_meter
from edge.measure.latency import percentiles
from edge.metrics import classification_scores
from edge.streaming import StreamingSession


def _rss_mb() -> float:
    """Peak resident memory of this process, MB.

    ``VmHWM`` belongs to this program image; ``ru_maxrss`` is carried over from
    the parent across fork+exec on Linux, so it is only the fallback.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def delegate_report(session: StreamingSession, requested: str) -> dict[str, Any]:
    """Which delegate the interpreters actually applied: DELEGATE nodes in the execution graph."""
    nodes = 0
    ops = 0
    for runner in session.runners:
        details = ops_details(runner.interpreter)  # the only view of delegated partitions
        kinds = Counter(d["op_name"] for d in details)
        nodes += kinds.pop("DELEGATE", 0)
        ops += sum(kinds.values())
    applied = requested if nodes else "none (reference CPU kernels)"
    return {"requested": requested, "applied": applied, "delegate_partitions": nodes, "tflite_ops": ops}


def input_stream(stepper: ItemStepper, request: dict[str, Any]) -> tuple[list[np.ndarray], list[bool]]:
    """Steps to feed in the latency loop and where a new sequence starts (state reset).

    Real data when a clip set is given (its items' real steps), else seeded
    random frames/samples in sequences of the bundle's window length.
    """
    session = stepper.session
    if request.get("data"):
        clips = load_clipset(request["data"])
        steps: list[np.ndarray] = []
        starts: list[bool] = []
        for i, item in enumerate(clips.clips[:64]):
            length = None if clips.lengths is None else int(clips.lengths[i])
            seq = stepper.steps_of(np.asarray(item), length)
            steps.extend(seq)
            starts.extend([True] + [False] * (len(seq) - 1))
        return steps, starts
    rng = np.random.default_rng(int(request["seed"]))
    spec = stepper.input_spec
    if stepper.is_sample:
        pool = [rng.standard_normal(spec.shape[1:]).astype(np.float32) for _ in range(32)]
    else:
        h, w = session.bundle.preprocessing.size
        channels = spec.shape[-1]
        pool = [rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8) for _ in range(32)]
    frames = session.bundle.window.frames
    starts = [i % frames == 0 for i in range(len(pool))] if session.mode is Mode.STREAMING else [False] * len(pool)
    return pool, starts


def measure(request: dict[str, Any]) -> dict[str, Any]:
    """Init, first inference, warm-up, repeated timed loops, then accuracy on the same session."""
    rss_start = _rss_mb()
    t0 = time.perf_counter()
    bundle = read_bundle(request["bundle"])
    session = StreamingSession(bundle, num_threads=int(request["threads"]), delegate=request.get("delegate"))
    init_ms = (time.perf_counter() - t0) * 1e3
    stepper = ItemStepper(session)
    steps, starts = input_stream(stepper, request)
    t1 = time.perf_counter()
    stepper.step(steps[0])
    first_ms = (time.perf_counter() - t1) * 1e3

    i = 1

    def one() -> tuple[float, float]:
        nonlocal i
        k = i % len(steps)
        if starts[k]:
            session.reset()
        t = time.perf_counter()
        _, _, invoke_ms, _ = stepper.step(steps[k])
        i += 1
        return (time.perf_counter() - t) * 1e3, invoke_ms

    for _ in range(int(request["warmup"])):
        one()
    runs, min_s = int(request["runs"]), float(request["min_seconds"])
    e2e: list[float] = []
    invoke: list[float] = []
    p50s: list[float] = []
    joules, seconds = 0.0, 0.0
    meter = make_meter(request.get("meter", "auto"))
    for _ in range(int(request["repeats"])):
        rep_e2e: list[float] = []
        meter.start()
        start = time.perf_counter()
        while len(rep_e2e) < runs or time.perf_counter() - start < min_s:
            total, inv = one()
            rep_e2e.append(total)
            invoke.append(inv)
        reading = meter.stop()
        joules += reading.joules
        seconds += reading.seconds
        e2e.extend(rep_e2e)
        p50s.append(float(np.percentile(rep_e2e, 50)))
    result: dict[str, Any] = {
        "path": str(bundle.path),
        "name": bundle.name,
        "precision": bundle.precision,
        "mode": session.mode.value,
        "source_model_sha256": bundle.source.model_sha256,
        "window_frames": bundle.window.frames,
        "threads": int(request["threads"]),
        "backend": session.backend,
        "delegate": delegate_report(session, request.get("delegate") or bundle.delegate),
        "size_bytes": bundle.size_bytes(),
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "warmup_steps": int(request["warmup"]),
        "latency_ms": percentiles(e2e),
        "invoke_ms": percentiles(invoke),
        "latency_samples_ms": [round(v, 4) for v in e2e[:5000]],
        "p50_spread_ms": {"repeats": len(p50s), "min": min(p50s), "median": float(np.median(p50s)), "max": max(p50s)},
        "fps": len(e2e) / seconds if seconds > 0 else 0.0,
        "measured_seconds": seconds,
        "energy_mj_per_inference": joules * 1e3 / max(len(e2e), 1),
        "energy_source": meter.name,
        "energy_estimated": meter.name.startswith("estimate:"),
        "input": "dataset" if request.get("data") else f"random (seed {request.get('seed', 0)})",
    }
    if request.get("data") and request.get("accuracy", True):
        clips = align_labels(load_clipset(request["data"]), bundle.labels, str(bundle.path))
        pred = predict(bundle, clips, session=session, warmup=0)
        result.update(classification_scores(clips.labels, pred.probs, pred.probs.shape[1]))
        result["items"] = len(clips)
        result["probs"] = pred.probs.round(6).tolist()
    result["peak_rss_mb"] = _rss_mb()
    result["rss_before_load_mb"] = rss_start
    return result


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(measure(request)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
