"""Long recordings: train on windows, convert to int8, stream whole recordings; print the times and scores.

    python -m benchmarks.long_recordings [--recordings 48] [--steps 2000 4000] [--window 128] [--model tcn] [--out DIR]

Writes a UEA ``.ts`` archive of long 3-axis recordings (50 Hz-like motion: four
activities that differ in rhythm, amplitude and posture, with per-subject gain,
offset and tempo, sensor noise and drift; 4 recordings per subject, TEST from
subjects TRAIN never had), then runs the real commands in process:
``train --dataset ucr:DIR,window=N,hop=N/2,group=subjects.txt`` and ``convert
--precision int8``, and streams every TEST recording step by step through the
int8 bundle from zero state (decision after the last step). Every number is
measured in this run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ACTIVITIES = ("walk", "run", "stairs", "rest")


def write_archive(folder: Path, recordings: int, steps: tuple[int, int], seed: int) -> None:
    """``long_TRAIN.ts``/``long_TEST.ts`` (TEST: 1/4 of the subjects) and ``subjects.txt`` for TRAIN."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = ["@problemName long", "@timeStamps false", "@missing false", "@univariate false", "@dimensions 3",
              "@equalLength false", f"@classLabel true {' '.join(ACTIVITIES)}", "@data"]
    rows: dict[str, list[str]] = {"TRAIN": [], "TEST": []}
    subjects: list[str] = []
    n_subjects = max(2, recordings // 4)
    for s in range(n_subjects):
        gain, offset, tempo = rng.uniform(0.7, 1.3), rng.normal(0, 0.3, 3), rng.uniform(0.8, 1.25)
        split = "TEST" if s % 4 == 3 else "TRAIN"
        for r in range(4):
            label = (s + r) % len(ACTIVITIES)
            t = np.arange(rng.integers(*steps)) / 50.0
            freq = (1.8, 2.8, 1.2, 0.0)[label] * tempo
            amp = (1.0, 2.2, 0.8, 0.0)[label] * gain
            phase = rng.uniform(0, 2 * np.pi)
            axes = [amp * np.sin(2 * np.pi * freq * t + phase + k) + (0.4 * np.sin(2 * np.pi * 2 * freq * t) if label == 2 else 0)
                    + offset[k] + (1.0 if k == 2 and label == 3 else 0) + np.cumsum(rng.normal(0, 0.002, len(t)))
                    + rng.normal(0, 0.15, len(t)) for k in range(3)]
            rows[split].append(":".join(",".join(f"{v:.3f}" for v in a) for a in axes) + f":{ACTIVITIES[label]}")
            if split == "TRAIN":
                subjects.append(f"subject{s}")
    for split, lines in rows.items():
        (folder / f"long_{split}.ts").write_text("\n".join(header + lines) + "\n")
    (folder / "subjects.txt").write_text("\n".join(subjects) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", type=int, default=48)
    p.add_argument("--steps", type=int, nargs=2, default=(2000, 4000))
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--model", default="tcn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from edge.bundle import read_bundle
    from edge.rundir import RunDir
    from edge.streaming import StreamingSession
    from training.data import load_dataset
    from training.train import TrainConfig, train

    root = args.out or Path(tempfile.mkdtemp(prefix="long-recordings-"))
    data = root / "long"
    write_archive(data, args.recordings, tuple(args.steps), args.seed)
    spec = f"ucr:{data},window={args.window},group={data / 'subjects.txt'}"
    t0 = time.perf_counter()
    dataset = load_dataset(spec)
    lines: list[str] = []
    run = train(args.model, spec, root / "run", TrainConfig(seed=args.seed), progress=lines.append, dataset=dataset)
    train_s = time.perf_counter() - t0
    card = RunDir(run).card()
    t0 = time.perf_counter()
    bundle = convert_run(run, root / "int8", ConvertOptions("int8"))
    convert_s = time.perf_counter() - t0
    session = StreamingSession(read_bundle(bundle), num_threads=1)
    rec = dataset.recordings
    right, steps, t0 = 0, 0, time.perf_counter()
    for x, y, n in zip(rec.x, rec.y, rec.lengths):
        session.reset()
        for sample in x[len(x) - int(n):]:
            result = session.step(sample)
        right += int(result.index == y)
        steps += int(n)
    stream_s = time.perf_counter() - t0
    rec_line = next((line for line in lines if line.startswith("test recordings")), "")
    print(f"data      {args.recordings} recordings of {args.steps[0]}-{args.steps[1]} steps ({len(rec.y)} TEST, from unseen subjects); "
          f"windows: {len(dataset.train.y)} train, {len(dataset.val.y)} val, {len(dataset.test.y)} test ({spec.split(',', 1)[1].split(',group=')[0]})")
    print(f"train     {args.model}: {train_s:.0f} s, {card.metrics.epochs_run} epochs, window test accuracy {card.metrics.test_accuracy:.3f}")
    print(f"keras     {rec_line}")
    print(f"int8      convert + verify {convert_s:.0f} s; streamed {steps} steps of {len(rec.y)} unseen-subject recordings: "
          f"accuracy at the end {right / len(rec.y):.3f}, {stream_s / steps * 1e6:.1f} us per step (1 thread, whole loop)")
    print(f"machine   {platform.machine()}, {os.cpu_count()} cpus; {platform.platform()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
