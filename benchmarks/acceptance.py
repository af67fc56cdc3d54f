"""Acceptance measurements, printed as measured numbers against their targets.

``python -m benchmarks.acceptance --work DIR --qs-run RUN --qs-clips CLIPS [--steps qs,mobilenet,ucr,video,seed]``

* ``qs``: the quickstart CNN+LSTM (T=16): streaming step model vs whole-window
  recompute per frame (target >= 0.9*T), and float32/float16/dynamic/int8/mixed
  side by side, accuracy checked in the same run.
* ``mobilenet``: ``cnn`` with a MobileNetV3-Small backbone at 112x112 (and the
  depthwise-separable backbone): int8 vs float32 at 1 thread (target >= 1.4x)
  and int8 size (target <= 0.30x).
* ``ucr``: eval JSON on the real UEA BasicMotions set (``ucr_archive``).
* ``video``: eval JSON on a ``video-folder:`` set of real OpenCV-written videos.
* ``seed``: two bench runs with the same seed give the same accuracy fields.

Everything runs through the ``hybrid-edge`` CLI in child processes (training
and conversion import TensorFlow there; eval and bench never do). Existing runs
and bundles under ``--work`` are reused. Run it with ``nice``; each step prints
the load average next to its numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from edge.rundir import RunDir

SHAPES = "synthetic-shapes:classes=6,size=112,images=200,seed=0"
IMAGE_MODELS = (("mobilenet_v1", ()), ("mobilenet_v2", ()), ("mobilenet_v3_small", ()),
                ("mobilenet_v3_small_min", ("--set", "minimalistic=true")), ("separable", ()))
# validation accuracy of the from-scratch image CNNs stays flat for the first epochs (BatchNorm statistics
# lag), so early stopping gets a long patience
IMAGE_PATIENCE = "30"
QS_PRECISIONS = (("streaming", "float32"), ("window", "float32"), ("streaming", "int8"), ("window", "int8"),
                 ("streaming", "float16"), ("streaming", "dynamic"), ("streaming", "mixed"))


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def cli(*args: str, quiet: bool = False) -> str:
    """Run ``python -m edge ARGS``; echo and return its stdout; raise on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "edge", *args]
    print("$ hybrid-edge " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-3000:]}")
    if not quiet:
        print(proc.stdout.rstrip(), flush=True)
    return proc.stdout


def convert(run: Path, out: Path, precision: str, mode: str | None = None, verify_sequences: int = 100) -> Path:
    if not out.exists():
        args = ["convert", str(run), "--precision", precision, "--out", str(out), "--verify-sequences", str(verify_sequences), "--stream-steps", "300"]
        cli(*args, *([f"--{mode}"] if mode else []))
    return out


def train(out: Path, *args: str) -> Path:
    if not RunDir(out).model.is_file():
        cli("train", *args, "--out", str(out), quiet=True)
        print(f"trained {out}: test accuracy {RunDir(out).card().metrics.test_accuracy:.3f}")
    return out


def bench(out: Path, bundles: list[Path], *args: str) -> dict[str, Any]:
    cli("bench", *map(str, bundles), *args, "--out", str(out))
    return json.loads((out / "results.json").read_text())


def step_qs(work: Path, run: Path, clips: Path, summary: dict[str, Any]) -> None:
    bundles = [convert(run, work / "bundles" / f"{m}-{p}", p, m) for m, p in QS_PRECISIONS]
    print(f"[qs] {load()}")
    doc = bench(work / "bench-qs", bundles, "--threads", "1", "--clips", str(clips), "--limit", "100", "--seed", "0",
                "--runs", "300", "--min-seconds", "3", "--repeats", "3", "--save-reference", "x86-64-2core")
    print(f"[qs] {load()}")
    pairs = {p["precision"]: p for p in doc["streaming_vs_window"]}
    for precision, p in pairs.items():
        print(f"[qs] streaming vs window {precision} T={p['window_frames']}: {p['streaming_p50_ms']:.4f} vs "
              f"{p['window_p50_ms']:.4f} ms/frame = {p['speedup']:.1f}x (target >= {p['target_speedup']:.1f}x: "
              f"{'met' if p['meets_target'] else 'MISSED'})")
    summary["streaming_vs_window"] = list(pairs.values())
    summary["qs_precisions"] = doc["precisions"]


def step_mobilenet(work: Path, summary: dict[str, Any]) -> None:
    rows = []
    for backbone, extra in IMAGE_MODELS:
        run = train(work / "runs" / f"cnn-{backbone}-112", "--model", "cnn", "--dataset", SHAPES, "--epochs", "30", "--batch-size", "32",
                    "--patience", IMAGE_PATIENCE, "--set", f"backbone={backbone.removesuffix('_min')}", "--set", "height=112", "--set", "width=112", *extra)
        bundles = [convert(run, work / "bundles" / f"cnn-{backbone}-112-{p}", p) for p in ("float32", "int8")]
        print(f"[mobilenet] {load()}")
        doc = bench(work / f"bench-cnn-{backbone}-112", bundles, "--threads", "1", "--dataset", SHAPES, "--limit", "60",
                    "--runs", "200", "--min-seconds", "3", "--repeats", "3")
        print(f"[mobilenet] {load()}")
        i8 = next(p for p in doc["precisions"] if p["precision"] == "int8")
        f32 = next(p for p in doc["precisions"] if p["precision"] == "float32")
        row = {"backbone": backbone, "float32_p50_ms": f32["p50_ms"], "int8_p50_ms": i8["p50_ms"],
               "speedup": i8["speedup_vs_float32"], "size_ratio": i8["size_ratio_vs_float32"],
               "float32_kb": f32["size_bytes"] / 1024, "int8_kb": i8["size_bytes"] / 1024}
        print(f"[mobilenet] {backbone} 112x112 1 thread: float32 {row['float32_p50_ms']:.3f} ms, int8 {row['int8_p50_ms']:.3f} ms "
              f"= {row['speedup']:.2f}x (target >= 1.4x: {'met' if row['speedup'] >= 1.4 else 'MISSED'}); size "
              f"{row['float32_kb']:.0f} -> {row['int8_kb']:.0f} KB = {row['size_ratio']:.3f}x (target <= 0.30x: "
              f"{'met' if row['size_ratio'] <= 0.30 else 'MISSED'})")
        rows.append(row)
    summary["mobilenet"] = rows


def step_ucr(work: Path, summary: dict[str, Any]) -> None:
    from benchmarks.datasets import ucr_archive

    folder = ucr_archive("BasicMotions")
    spec = f"ucr:{folder}"
    run = train(work / "runs" / "rnn-basicmotions", "--model", "rnn", "--dataset", spec)
    bundles = [convert(run, work / "bundles" / f"rnn-basicmotions-{p}", p, verify_sequences=0) for p in ("float32", "int8")]
    print(f"[ucr] {load()}")
    out = work / "eval-basicmotions.json"
    cli("eval", *map(str, bundles), "--dataset", spec, "--reference", str(run), "--json", str(out))
    summary["basicmotions"] = [{k: b.get(k) for k in ("precision", "accuracy", "macro_f1", "agreement_with_float", "prob_error", "clips", "frames")}
                               for b in json.loads(out.read_text())["bundles"]]


def write_videos(clips_path: Path, root: Path, per_class: int = 24) -> Path:
    """Real video files (MJPG .avi via OpenCV) of held-out synthetic action clips, one folder per class."""
    import cv2
    import numpy as np

    if root.is_dir() and any(root.iterdir()):
        return root
    with np.load(clips_path) as data:
        clips, labels, names = data["clips"], data["labels"], [str(n) for n in data["label_names"]]
    counts = dict.fromkeys(range(len(names)), 0)
    for clip, label in zip(clips, labels):
        if counts[int(label)] >= per_class:
            continue
        folder = root / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"v_{names[int(label)]}_{counts[int(label)]:03d}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (clip.shape[2], clip.shape[1]))
        for frame in clip:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        counts[int(label)] += 1
    return root


def step_video(work: Path, clips: Path, summary: dict[str, Any]) -> None:
    root = write_videos(clips, work / "videos")
    spec = f"video-folder:{root},frames=16,stride=1,size=48,test=0.5,seed=0"
    bundles = [work / "bundles" / "streaming-float32", work / "bundles" / "streaming-int8", work / "bundles" / "streaming-mixed"]
    print(f"[video] {load()}")
    out = work / "eval-video-folder.json"
    cli("eval", *map(str, bundles), "--dataset", spec, "--json", str(out))
    summary["video_folder"] = [{k: b.get(k) for k in ("precision", "accuracy", "macro_f1", "agreement_with_float", "prob_error", "clips", "frames")}
                               for b in json.loads(out.read_text())["bundles"]]


def step_seed(work: Path, clips: Path, summary: dict[str, Any]) -> None:
    bundles = [work / "bundles" / "streaming-float32", work / "bundles" / "streaming-int8"]
    keys = ("accuracy", "macro_f1", "confusion", "agreement_with_float", "items")
    docs = [bench(work / f"bench-seed-{i}", bundles, "--clips", str(clips), "--limit", "150", "--seed", "7", "--runs", "100",
                  "--min-seconds", "0.5", "--repeats", "2") for i in (1, 2)]
    fields = [[{k: r.get(k) for k in keys} for r in d["results"]] for d in docs]
    same = fields[0] == fields[1]
    print(f"[seed] two bench runs, seed 7: accuracy fields identical: {same}; "
          + ", ".join(f"{r['precision']} acc {r['accuracy']:.4f} agree {r['agreement_with_float']:.4f} / "
                      f"{s['accuracy']:.4f} agree {s['agreement_with_float']:.4f}" for r, s in zip(docs[0]["results"], docs[1]["results"])))
    summary["same_seed_same_accuracy"] = same


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.acceptance", description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--qs-run", type=Path, required=True, help="run dir of `hybrid-edge quickstart` (OUT/run)")
    p.add_argument("--qs-clips", type=Path, required=True, help="its test clip set (OUT/data/test.npz)")
    p.add_argument("--steps", default="qs,mobilenet,ucr,video,seed")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    summary_path = args.work / "acceptance.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    t0 = time.time()
    steps = {"qs": lambda: step_qs(args.work, args.qs_run, args.qs_clips, summary),
             "mobilenet": lambda: step_mobilenet(args.work, summary),
             "ucr": lambda: step_ucr(args.work, summary),
             "video": lambda: step_video(args.work, args.qs_clips, summary),
             "seed": lambda: step_seed(args.work, args.qs_clips, summary)}
    for name in args.steps.split(","):
        print(f"== {name} ({load()})", flush=True)
        steps[name]()
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"== done in {time.time() - t0:.0f} s ({load()}); summary in {summary_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
