"""Benchmark bundles honestly and put the numbers side by side.

Each (bundle, thread count) is measured in a fresh worker process
(:mod:`benchmarks.bench_worker`); this module chooses the data, runs the
workers, then derives the comparisons: agreement with the float32 bundle of the
same source model, quantized-vs-float speed and size, and streaming step model
vs whole-window recompute per frame. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.search_report import read_search_report
from edge.errors import DataError, HybridEdgeError
from edge.evalsets import ClipSet, load_clipset, load_dataset_split
from edge.metrics import agreement
from benchmarks.machine import machine_info

XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate"


@dataclass(frozen=True)
class BenchConfig:
    """Run rules and data for one benchmark."""

    threads: tuple[int, ...] = (1,)
    runs: int = 200
    min_seconds: float = 2.0
    warmup: int = 20
    repeats: int = 3
    dataset: str | None = None
    clips: str | None = None
    split: str = "test"
    limit: int | None = None
    meter: str = "auto"
    delegate: str | None = None  # None: the bundle's
    seed: int = 0
    timeout_s: float = 1800.0


def select_items(data: ClipSet, limit: int | None, seed: int) -> ClipSet:
    """A seeded subset of ``limit`` items (same seed, same items), in original order."""
    if limit is None or limit >= len(data):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    ref = None if data.reference_probs is None else data.reference_probs[keep]
    lengths = None if data.lengths is None else data.lengths[keep]
    return ClipSet(data.clips[keep], data.labels[keep], data.label_names, ref, lengths, f"{data.source} ({limit} items, seed {seed})")


def load_data(cfg: BenchConfig) -> ClipSet | None:
    if cfg.dataset and cfg.clips:
        raise DataError("give --dataset or --clips, not both")
    if cfg.dataset:
        return select_items(load_dataset_split(cfg.dataset, cfg.split), cfg.limit, cfg.seed)
    if cfg.clips:
        return select_items(load_clipset(cfg.clips), cfg.limit, cfg.seed)
    return None


def run_worker(request: dict[str, Any], tmp: Path, timeout: float) -> dict[str, Any]:
    """Measure one (bundle, threads) in a fresh process; its stderr tells which delegate was created."""
    req, out = tmp / "request.json", tmp / "result.json"
    req.write_text(json.dumps(request))
    out.unlink(missing_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_worker", str(req), str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise HybridEdgeError(f"benchmark of {request['bundle']} ({request['threads']} threads) failed: {lines[-1] if lines else proc.returncode}")
    result = json.loads(out.read_text())
    result["delegate"]["xnnpack_created"] = XNNPACK_LINE in proc.stderr
    return result


def verify_digest(bundle: Path) -> dict[str, Any] | None:
    """The converter's own check of a bundle (its ``verify.json``), in brief: agreement, long stream, state drift."""
    from edge.bundle.verify_report import read_verify_report

    v = read_verify_report(bundle)
    if v is None:
        return None
    stream = v.long_stream
    return {
        "agreement_with_keras": v.agreement,
        "disagreements": v.disagreements,  # None for bundles converted before verify.json kept them
        "sequences": v.sequences,
        "accuracy_keras": v.accuracy_keras,
        "accuracy_converted": v.accuracy_tflite,
        "long_stream_steps": stream.steps if stream else None,
        "long_stream_agreement": stream.step_agreement if stream else None,
        "long_stream_accuracy_keras": stream.step_accuracy_reference if stream else None,
        "long_stream_accuracy_converted": stream.step_accuracy_converted if stream else None,
        "state_drift": {name: {"first_10pct": d.mean_abs_first_10pct, "last_10pct": d.mean_abs_last_10pct,
                               "float_state_max_abs": d.float_state_max_abs}
                        for name, d in (stream.state_drift if stream else {}).items()},
        "warnings": list(v.warnings),
    }


def attach_agreement(results: list[dict[str, Any]]) -> None:
    """Top-1 agreement with the float32 bundle of the same source model and thread count."""
    for r in results:
        if "probs" not in r:
            continue
        refs = [f for f in results if f["precision"] == "float32" and "probs" in f and f["threads"] == r["threads"]
                and f["source_model_sha256"] == r["source_model_sha256"]]
        refs.sort(key=lambda f: f["mode"] != r["mode"])  # same mode first
        if refs:
            r.update(agreement(np.array(r["probs"]), np.array(refs[0]["probs"])))
            r["agreement_reference"] = refs[0]["path"]
    for r in results:
        r.pop("probs", None)


def precision_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each bundle against the float32 bundle of the same source, mode and threads."""
    rows = []
    for r in results:
        base = next((f for f in results if f["precision"] == "float32" and f["mode"] == r["mode"]
                     and f["threads"] == r["threads"] and f["source_model_sha256"] == r["source_model_sha256"]), None)
        row = {"path": r["path"], "name": r["name"], "precision": r["precision"], "mode": r["mode"], "threads": r["threads"],
               "p50_ms": r["latency_ms"]["p50"], "size_bytes": r["size_bytes"], "accuracy": r.get("accuracy"),
               "agreement_with_float": r.get("agreement_with_float")}
        if base is not None:
            row["speedup_vs_float32"] = base["latency_ms"]["p50"] / r["latency_ms"]["p50"]
            row["size_ratio_vs_float32"] = r["size_bytes"] / base["size_bytes"]
        rows.append(row)
    return rows


def streaming_vs_window(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-frame cost of the streaming step model vs recomputing the whole T-frame window.

    Pairs bundles of the same source model, precision and thread count. The
    target for a T-frame window is a speedup of at least 0.9*T.
    """
    pairs = []
    for w in (r for r in results if r["mode"] == "window"):
        s = next((r for r in results if r["mode"] == "streaming" and r["precision"] == w["precision"]
                  and r["threads"] == w["threads"] and r["source_model_sha256"] == w["source_model_sha256"]), None)
        if s is None:
            continue
        t = int(w.get("window_frames") or 0)
        speedup = w["latency_ms"]["p50"] / s["latency_ms"]["p50"]
        pairs.append({"precision": w["precision"], "threads": w["threads"], "window_frames": t,
                      "streaming_path": s["path"], "window_path": w["path"],
                      "streaming_p50_ms": s["latency_ms"]["p50"], "window_p50_ms": w["latency_ms"]["p50"],
                      "speedup": speedup, "target_speedup": 0.9 * t, "meets_target": speedup >= 0.9 * t,
                      "invoke_only_speedup": w["invoke_ms"]["p50"] / s["invoke_ms"]["p50"]})
    return pairs


def run_bench(bundles: list[str | Path], cfg: BenchConfig, progress: Any = print) -> dict[str, Any]:
    """Measure every bundle at every thread count; return the full results document."""
    if not bundles:
        raise HybridEdgeError("no bundles to benchmark")
    if cfg.runs < 1 or cfg.min_seconds < 0 or cfg.repeats < 1 or any(t < 1 for t in cfg.threads):
        raise HybridEdgeError("runs and repeats must be >= 1, threads >= 1, min-seconds >= 0")
    started = time.time()
    machine = machine_info()
    data = load_data(cfg)
    results = []
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-bench-") as tmpdir:
        tmp = Path(tmpdir)
        data_path = None
        if data is not None:
            data_path = tmp / "data.npz"
            arrays = {"clips": data.clips, "labels": data.labels, "label_names": np.array(data.label_names)}
            if data.lengths is not None:
                arrays["lengths"] = data.lengths
            np.savez(data_path, **arrays)
        from edge.progress import Progress

        bar = Progress(len(bundles) * len(cfg.threads), "benchmarking", unit="bundles")
        for bundle in bundles:
            for threads in cfg.threads:
                request = {"bundle": str(bundle), "threads": threads, "runs": cfg.runs, "min_seconds": cfg.min_seconds,
                           "warmup": cfg.warmup, "repeats": cfg.repeats, "meter": cfg.meter, "delegate": cfg.delegate,
                           "seed": cfg.seed, "data": str(data_path) if data_path else None}
                r = run_worker(request, tmp, cfg.timeout_s)
                digest = verify_digest(Path(bundle))
                if digest:
                    r["verify"] = digest
                search = read_search_report(Path(bundle))
                if search:
                    r["search"] = search.to_json()
                bar.update()
                progress(format_line(r))
                results.append(r)
        bar.close()
    attach_agreement(results)
    machine_after = machine_info()
    return {
        "format": "hybrid-edge-bench",
        "format_version": 1,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "config": asdict(cfg),
        "data": None if data is None else {"source": data.source, "items": len(data), "labels": list(data.label_names)},
        "machine": machine,
        "load_average_after": machine_after["load_average"],
        "results": results,
        "precisions": precision_table(results),
        "streaming_vs_window": streaming_vs_window(results),
    }


def format_line(r: dict[str, Any]) -> str:
    """One human line per measurement."""
    lat, spread = r["latency_ms"], r["p50_spread_ms"]
    acc = f" acc {r['accuracy']:.3f}" if "accuracy" in r else ""
    return (f"{r['path']}: {r['precision']} {r['mode']} {r['threads']}t p50 {lat['p50']:.3f} p90 {lat['p90']:.3f} "
            f"p99 {lat['p99']:.3f} max {lat['max']:.3f} ms (p50 over {spread['repeats']} repeats {spread['min']:.3f}/"
            f"{spread['median']:.3f}/{spread['max']:.3f}), {r['fps']:.1f} fps, init {r['init_ms']:.1f} ms, first "
            f"{r['first_inference_ms']:.2f} ms, RSS {r['peak_rss_mb']:.0f} MB, {r['size_bytes'] / 1024:.1f} KB, "
            f"{r['energy_mj_per_inference']:.3f} mJ/inf ({r['energy_source']}){acc}")
