"""1 000 mutated model files through ``hybrid-edge run``: each rejected or run, 0 crashes.

Mutations (seeded, one per trial): truncations and 1-4 byte changes, some with
the manifest left alone (the sha256/size check catches them) and most with the
manifest's sha256 and size rewritten to match the damaged file — those must
be caught by the TFL3 header check, the flatbuffer structure check, the
manifest-vs-model spec check, or the isolated first load; anything that passes
all of them has to run. Half of the re-hashed byte changes land outside the
weight buffers (offsets, counts, indices, tables), where the structure check works.

A driver process runs the CLI in-process (``edge.cli.main``) on each mutant and
reports one JSON line per trial; if the driver itself died, that trial is a
crash and the driver restarts after it.

    python -m benchmarks.fuzz_models runs/bench/int8 [--trials 1000 --seed 0] [--in-process]

``--in-process`` leaves out ``--isolate``: every surviving model is loaded by the
CLI process itself, which shows what the checks alone are worth.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.runtime_common import header, load_average

KINDS = (("truncate", 0.10), ("truncate+rehash", 0.15), ("flip", 0.10), ("flip+rehash", 0.30),
         ("flip+rehash:structure", 0.35))
CHECKS = (  # substring of the one-line error -> the check that refused the file
    ("truncated or replaced", "size"), ("sha256 mismatch", "sha256"), ("too small to be a TFLite", "header"),
    ("not a TFLite flatbuffer", "header"), ("malformed TFLite flatbuffer", "structure"),
    ("in the model but", "manifest spec"), ("differ from the manifest", "manifest spec"),
    ("quantization differs", "manifest spec"), ("crashed the interpreter", "isolate: crash in child"),
    ("isolated first load failed", "isolate: load error in child"), ("did not finish", "isolate: hang in child"),
    ("could not be loaded by", "interpreter: load refused"), ("refused to run the model", "interpreter: invoke refused"),
    ("unreadable signature details", "interpreter: signature unreadable"),
    ("golden self-test", "golden self-test"),
)


def _structure_ranges(data: bytes) -> np.ndarray:
    """Byte positions outside the weight buffers' data (where offsets and indices live)."""
    from edge.flatbuffer import _Reader

    r = _Reader(data, "model")
    model = r.table(r.target(0, "root"), "Model")
    mask = np.ones(len(data), bool)
    for buf in model.tables(4, "buffers"):
        start, n = buf.vector(0, 1)
        mask[start:start + n] = False
    return np.flatnonzero(mask)


def mutate(data: bytes, structure: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str, bool]:
    kind = str(rng.choice([k for k, _ in KINDS], p=[p for _, p in KINDS]))
    if kind.startswith("truncate"):
        out = data[: int(rng.integers(0, len(data)))]
    else:
        buf = bytearray(data)
        pool = structure if kind.endswith(":structure") else None
        for _ in range(int(rng.integers(1, 5))):
            pos = int(rng.choice(pool)) if pool is not None else int(rng.integers(0, len(buf)))
            buf[pos] = (buf[pos] + int(rng.integers(1, 256))) % 256
        out = bytes(buf)
    return out, kind, "rehash" in kind


def classify(rc: int, err: str) -> str:
    if rc == 0:
        return "ran"
    for needle, check in CHECKS:
        if needle in err:
            return check
    last = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"
    return "other: " + last.split(": ", 3)[-1][:80]  # drop the "hybrid-edge run: error: PATH" prefix


def drive(bundle: Path, seed: int, start: int, trials: int, isolate: bool = True, self_test: bool = False) -> None:
    """Driver: run trials ``start..trials-1`` in this process, one JSON line each."""
    from edge.bundle import MODEL_FILE, load_manifest, read_bundle, write_manifest
    from edge.cli import main as cli

    original = bundle / MODEL_FILE
    data = original.read_bytes()
    structure = _structure_ranges(data)
    h, w = read_bundle(bundle).preprocessing.size
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(start, trials):
            rng = np.random.default_rng([seed, i])
            mutant, kind, rehash = mutate(data, structure, rng)
            target = Path(tmp) / f"m{i}"
            shutil.copytree(bundle, target)
            (target / MODEL_FILE).write_bytes(mutant)
            if rehash:  # a damaged file whose manifest was re-signed to match: the structure checks must catch it
                write_manifest(target, load_manifest(target))
            print(json.dumps({"begin": i}), flush=True)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = cli(["run", str(target), "--source", f"synthetic:frames=3,size={h}x{w}", "--policy", "block",
                          "--meter", "estimate:x86-tdp", "--warmup", "0", *(["--isolate"] if isolate else []),
                          *(["--self-test"] if self_test else [])])
            e = err.getvalue().strip()
            print(json.dumps({"trial": i, "kind": kind, "rc": rc, "result": classify(rc, e),
                              "traceback": "Traceback" in e,
                              "message": e.splitlines()[-1].split(": ", 3)[-1][:160] if e else ""}), flush=True)
            shutil.rmtree(target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-process", action="store_true",
                   help="without --isolate: the first load happens in the CLI process itself")
    p.add_argument("--self-test", action="store_true", help="pass --self-test (golden input/output check)")
    p.add_argument("--driver-start", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.driver_start is not None:
        drive(args.bundle, args.seed, args.driver_start, args.trials, isolate=not args.in_process,
              self_test=args.self_test)
        return
    how = ("in-process (no --isolate)" if args.in_process else "--isolate") + (" --self-test" if args.self_test else "")
    header(f"{args.trials} mutated models (seed {args.seed}) through hybrid-edge run {how}")
    t0 = time.perf_counter()
    results: list[dict] = []
    crashes: list[int] = []
    start = 0
    while start < args.trials:
        errlog = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fuzz_models", str(args.bundle), "--trials",
                                 str(args.trials), "--seed", str(args.seed), "--driver-start", str(start),
                                 *(["--in-process"] if args.in_process else []),
                                 *(["--self-test"] if args.self_test else [])],
                                stdout=subprocess.PIPE, stderr=errlog, text=True)
        current = start
        assert proc.stdout is not None
        for line in proc.stdout:
            rec = json.loads(line)
            if "begin" in rec:
                current = rec["begin"]
            else:
                results.append(rec)
                current = rec["trial"] + 1
        proc.wait()
        if current < args.trials and proc.returncode != 0:  # the CLI process died on trial `current`
            errlog.seek(0)
            last = (errlog.read().strip().splitlines() or ["?"])[-1]
            crashed = proc.returncode < 0  # killed by a signal; otherwise an uncaught exception
            if crashed:
                crashes.append(current)
            results.append({"trial": current, "kind": "?", "rc": proc.returncode, "traceback": not crashed,
                            "result": "CRASH (signal)" if crashed else "TRACEBACK", "message": last[:160]})
            current += 1
        errlog.close()
        start = current
    table = collections.Counter((r["kind"], r["result"]) for r in results)
    by_result = collections.Counter(r["result"] for r in results)
    print(f"trials {len(results)} in {time.perf_counter() - t0:.0f} s; CLI crashes: {len(crashes)} {crashes}; "
          f"tracebacks: {sum(r['traceback'] for r in results)}")
    print("outcome (which check refused it, or ran):")
    for result, n in by_result.most_common():
        print(f"  {result:<34} {n:5d}")
    print("example message per outcome:")
    for result in by_result:
        example = next(r.get("message", "") for r in results if r["result"] == result)
        print(f"  {result:<34} {example}")
    print("by mutation kind:")
    for kind, _ in KINDS:
        parts = ", ".join(f"{res} {n}" for (k, res), n in sorted(table.items()) if k == kind)
        print(f"  {kind:<24} {parts}")
    print(f"# after: {load_average()}")


if __name__ == "__main__":
    main()
