"""Our streamable sequence models against the UCR/UEA peers, on the same splits, in one run.

    python -m benchmarks.ucr_peers [--problems GunPoint ...] [--models tcn rnn] [--seeds 0 1 2]
                                   [--peers-python PATH] [--json out.json]

Per real archive problem of the ``aeon`` wheel (:func:`benchmarks.datasets.ucr_archive`):

* ours: ``train`` with the model's defaults (the archive's TRAIN file, 20 % of it held out per
  class for early stopping), then ``convert`` to float32 and int8 streaming bundles; test
  accuracy of Keras and of each bundle streamed step by step (the decision after a sequence's
  last step), int8's agreement with Keras, training wall time, and the median per-step latency
  of the int8 and float32 sessions (``StreamingSession.step``, one thread);
* peers, from ``aeon`` (the ``peers`` extra, never a runtime dependency): 1-NN DTW (full window,
  the UCR archive's reference) and ROCKET (10 000 kernels), trained on the whole TRAIN file and
  tested on the same TEST file; unequal-length problems are zero-padded at the end for ROCKET.

aeon pins an older numpy than the rest of the stack; ``--peers-python`` runs the peers in
another interpreter (a venv with ``pip install aeon==1.6.0``) and reads their JSON. Every
number printed is measured in this run, on this machine (printed with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.datasets import ucr_archive
from edge.commands.train import parse_overrides
from edge.errors import HybridEdgeError

#: the wheel's motion, gesture and wearable problems, and JapaneseVowels (speech) as a regression check
PROBLEMS = ("BasicMotions", "GunPoint", "PickupGestureWiimoteZ", "JapaneseVowels")

def peers(name: str) -> dict[str, Any]:
    """1-NN DTW and ROCKET on one problem (runs where aeon is installed)."""
    import numpy as np
    from aeon.classification.convolution_based import RocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.datasets import load_from_ts_file

    folder = ucr_archive(name)
    x_train, y_train = load_from_ts_file(str(folder / f"{name}_TRAIN.ts"))
    x_test, y_test = load_from_ts_file(str(folder / f"{name}_TEST.ts"))
    out: dict[str, Any] = {"problem": name}
    t0 = time.perf_counter()
    dtw = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw").fit(x_train, y_train)
    out["dtw"] = float(np.mean(dtw.predict(x_test) == y_test))
    out["dtw_s"] = round(time.perf_counter() - t0, 1)

    def padded(xs: Any, length: int) -> Any:
        if isinstance(xs, np.ndarray):
            return xs
        return np.stack([np.pad(np.nan_to_num(x), ((0, 0), (0, length - x.shape[1]))) for x in xs])

    longest = max(x.shape[-1] for x in [*x_train, *x_test])
    t0 = time.perf_counter()
    rocket = RocketClassifier(n_kernels=10_000, random_state=0).fit(padded(x_train, longest), y_train)
    out["rocket"] = float(np.mean(rocket.predict(padded(x_test, longest)) == y_test))
    out["rocket_s"] = round(time.perf_counter() - t0, 1)
    return out


def _peers_via(python: str, name: str) -> dict[str, Any]:
    proc = subprocess.run([python, "-m", "benchmarks.ucr_peers", "--peers-only", name], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"problem": name, "error": tail[-1] if tail else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _session_accuracy(bundle: Path, dataset: Any) -> tuple[float, Any, float]:
    """Stream each test sequence from zero state; (accuracy, probabilities after each sequence's last step,
    median per-step µs)."""
    import numpy as np

    from edge.bundle import read_bundle
    from edge.streaming import StreamingSession

    session = StreamingSession(read_bundle(bundle), num_threads=1)
    probs, times = [], []
    for x, length in zip(dataset.test.x, dataset.test.lengths):
        session.reset()
        result = None
        for sample in x[len(x) - int(length):]:
            result = session.step(sample)
            times.append(result.finished - result.started)
        probs.append(result.probability_list())
    p = np.array(probs)
    acc = float(np.mean(p.argmax(1) == dataset.test.y))
    return acc, p, statistics.median(times) * 1e6


def ours(name: str, model: str, seed: int, root: Path, recurrent_state: str = "float", val: float | None = None,
         overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Train, convert float32 + int8, stream the test split through both bundles."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run
    from edge.metrics import agreement
    from edge.rundir import RunDir
    from training.data import load_dataset
    from training.train import TrainConfig, train

    dataset = load_dataset(f"ucr:{ucr_archive(name)}" + ("" if val is None else f",val={val:g}"))
    t0 = time.perf_counter()
    run = train(model, dataset.spec, root / f"{name}-{model}-{seed}", TrainConfig(seed=seed, overrides=dict(overrides or {})),
                progress=lambda m: None, dataset=dataset)
    wall = time.perf_counter() - t0
    card = RunDir(run).card()
    row: dict[str, Any] = {"problem": name, "model": model, "seed": seed, "keras": card.metrics.test_accuracy,
                           "train_s": round(wall, 1), "epochs": card.metrics.epochs_run}
    probs = {}
    for precision in ("float32", "int8"):
        try:
            options = ConvertOptions(precision, verify=False, recurrent_state=recurrent_state)
            bundle = convert_run(run, root / f"{name}-{model}-{seed}-{precision}", options)
        except Exception as exc:  # a failed conversion is a row, not a dead benchmark
            row[precision] = None
            row[f"{precision}_error"] = str(exc).splitlines()[0][:200]
            continue
        acc, probs[precision], us = _session_accuracy(bundle, dataset)
        row[precision], row[f"{precision}_step_us"] = acc, round(us, 1)
    if len(probs) == 2:
        compared = agreement(probs["int8"], probs["float32"])
        row["int8_agreement"], row["int8_disagreements"] = compared["agreement_with_float"], compared["disagreements"]
    return row


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    p.add_argument("--models", nargs="+", default=["tcn"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--peers-python", default=None, help="an interpreter with aeon installed (default: this one)")
    p.add_argument("--peers-only", metavar="PROBLEM", help=argparse.SUPPRESS)
    p.add_argument("--no-peers", action="store_true", help="skip DTW and ROCKET")
    p.add_argument("--recurrent-state", choices=("float", "int8"), default="float",
                   help="the int8 bundle's recurrent state (convert --recurrent-state)")
    p.add_argument("--val", type=float, default=None,
                   help="fraction of TRAIN held out per class for validation (default: the ucr loader's, see training.data.ucr)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model config override for every model trained, as in `hybrid-edge train --set`")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
    except HybridEdgeError as exc:
        p.error(str(exc))
    if args.peers_only:
        print(json.dumps(peers(args.peers_only)))
        return 0
    rows, peer_rows = [], {}
    with tempfile.TemporaryDirectory(prefix="ucr-peers-") as tmp:
        for name in args.problems:
            if not args.no_peers:
                peer_rows[name] = _peers_via(args.peers_python or sys.executable, name)
                print(f"{name}: peers {peer_rows[name]}", flush=True)
            for model in args.models:
                for seed in args.seeds:
                    rows.append(ours(name, model, seed, Path(tmp), args.recurrent_state, args.val, overrides))
                    print(f"{name}: {rows[-1]}", flush=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cpus, {_cpu()}; {platform.platform()}")
    header = (f"{'problem':22s} {'model':5s} {'seed':>4s} {'keras':>6s} {'float32':>7s} {'int8':>6s} {'agree':>6s} {'lead':>6s} "
              f"{'train s':>7s} {'f32 us':>7s} {'int8 us':>7s} {'1NN-DTW':>7s} {'ROCKET':>7s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        peer = peer_rows.get(r["problem"], {})
        print(f"{r['problem']:22s} {r['model']:5s} {r['seed']:4d} {_fmt(r['keras']):>6s} {_fmt(r.get('float32')):>7s} "
              f"{_fmt(r.get('int8')):>6s} {_fmt(r.get('int8_agreement')):>6s} {_lead(r):>6s} {r['train_s']:7.1f} "
              f"{_fmt(r.get('float32_step_us'), '.1f'):>7s} {_fmt(r.get('int8_step_us'), '.1f'):>7s} "
              f"{_fmt(peer.get('dtw')):>7s} {_fmt(peer.get('rocket')):>7s}")
    errors = {k: v["error"] for k, v in peer_rows.items() if "error" in v}
    for name, error in errors.items():
        print(f"peers on {name} failed: {error}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peers": peer_rows}, indent=2) + "\n")
    return 0


def _lead(row: dict[str, Any]) -> str:
    """The float32 bundle's largest lead of its top class over its second where int8 decides otherwise."""
    leads = row.get("int8_disagreements", {}).get("reference_leads")
    return _fmt(leads[0]) if leads else "-"


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown cpu"


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
