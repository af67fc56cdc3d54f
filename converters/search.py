"""``convert --precision auto``: convert every applicable precision, keep the fastest that holds the budget.

Each candidate is converted and verified by its own worker process
(:func:`converters.isolate.convert_run`, which writes ``verify.json``) into a
temporary folder next to the output; up to ``threads`` workers run at once. A
candidate whose conversion fails or crashes becomes a row with a one-line
error. When every conversion has finished, this process measures each
candidate's per-frame latency with the runtime's own step (one interpreter
thread, the same seeded inputs, interleaved rounds so that a load change hits
every candidate alike), reads held-out accuracy, agreement and long-stream
agreement from its ``verify.json``, and chooses (:func:`choose`). The chosen
bundle gets ``search.json`` (hashed in its manifest) and is renamed to the
output; the other candidates are removed. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from converters.convert import ConvertOptions, check_options
from converters.formats import FORMATS, get_format
from converters.isolate import CONVERT_TARGET, convert_run
from edge.bundle import InputKind, Mode, load_manifest, read_bundle, write_manifest
from edge.bundle.search_report import Budget, Candidate, Objective, SearchReport, write_search_report
from edge.bundle.verify_report import read_verify_report
from edge.errors import ConversionError, HybridEdgeError
from edge.measure.board import cpu_model
from edge.rundir import RunDir

AUTO = "auto"
LATENCY_WARMUP = 20
LATENCY_ROUNDS = 3


@dataclass(frozen=True)
class SearchConfig:
    """The budget, the objective and how to run the search."""

    budget: Budget = Budget()
    objective: Objective = Objective.LATENCY
    threads: int = 0  # conversions at once; 0: min(2, cores)
    candidates: tuple[str, ...] = ()  # precisions to try; empty: every one that applies to the model
    latency_frames: int = 300  # timed steps per candidate
    seed: int = 0  # latency inputs
    timeout_s: float = 3600.0  # per conversion


def check_search(options: ConvertOptions, config: SearchConfig) -> None:
    """Validate a search before any work (unknown candidates, a budget out of range, no verification)."""
    for name in config.candidates:
        get_format(name)
    check_options(replace(options, precision="float32"))  # mode and ranges, once, before any candidate
    if not options.verify:
        raise ConversionError("--precision auto chooses by the verify numbers; drop --no-verify")
    if not 0.0 <= config.budget.max_drop <= 100.0:
        raise ConversionError(f"--max-drop must be in [0, 100] points, got {config.budget.max_drop:g}")
    if not 0.0 <= config.budget.min_stream_agreement <= 1.0:
        raise ConversionError(f"--min-stream-agreement must be in [0, 1], got {config.budget.min_stream_agreement:g}")
    if config.threads < 0 or config.latency_frames < 1:
        raise ConversionError("--threads must be >= 1 (0: automatic) and latency frames >= 1")


def applicable(run_dir: Path, options: ConvertOptions) -> tuple[list[str], dict[str, str]]:
    """The precisions of the format table this run can take, and why the others cannot.

    Split formats (``mixed*``) need a streaming clip model (a per-frame CNN front
    end and a recurrent head); everything else applies to every model.
    """
    card = RunDir(run_dir).card()
    streams = card.streamable and options.mode != Mode.WINDOW.value
    keep, skipped = [], {}
    for fmt in FORMATS.values():
        if fmt.parts and not (streams and card.input.kind is InputKind.CLIP):
            skipped[fmt.name] = "needs a streaming clip model: a CNN front end per frame and a recurrent head"
        elif options.mode == Mode.WINDOW.value and not fmt.window:
            skipped[fmt.name] = "has no --window form"
        else:
            keep.append(fmt.name)
    return keep, skipped


def choose(candidates: list[Candidate], objective: Objective) -> Candidate:
    """The fastest (or smallest) candidate that meets the budget; else the one with the smallest shortfall.

    Raises:
        ConversionError: every candidate failed.
    """
    done = [c for c in candidates if c.error is None]
    if not done:
        first = candidates[0].error if candidates else "no candidates"
        raise ConversionError(f"no precision converted ({len(candidates)} tried); first error: {first}")

    def cost(c: Candidate) -> tuple[float, float]:
        size, latency = float(c.size_bytes or 0), float(c.latency_ms or 0.0)
        return (latency, size) if objective is Objective.LATENCY else (size, latency)

    meeting = [c for c in done if c.meets_budget]
    if meeting:
        return min(meeting, key=cost)
    return min(done, key=lambda c: (c.shortfall or 0.0, *cost(c)))


def _steps(bundle_dir: Path, frames: int, seed: int) -> Callable[[], None]:
    """A closure that runs one runtime step of a bundle on the next of a fixed pool of seeded inputs."""
    from edge.evaluate import ItemStepper
    from edge.streaming import StreamingSession

    session = StreamingSession(read_bundle(bundle_dir), num_threads=1)
    stepper = ItemStepper(session)
    rng = np.random.default_rng(seed)
    spec = stepper.input_spec
    if stepper.is_sample:
        pool = [rng.standard_normal(spec.shape[-1]).astype(np.float32) for _ in range(32)]
    else:
        h, w = session.bundle.preprocessing.size
        pool = [rng.integers(0, 256, size=(h, w, spec.shape[-1]), dtype=np.uint8) for _ in range(32)]
    count = 0

    def step() -> None:
        nonlocal count
        stepper.step(pool[count % len(pool)])
        count += 1

    return step


def measure_latency(bundles: dict[str, Path], frames: int, seed: int = 0) -> dict[str, float]:
    """Median per-frame step time (ms, one thread) of each bundle, in interleaved rounds in this process."""
    runners = {name: _steps(path, frames, seed) for name, path in bundles.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for step in runners.values():
        for _ in range(LATENCY_WARMUP):
            step()
    per_round = max(1, -(-frames // LATENCY_ROUNDS))
    for _ in range(LATENCY_ROUNDS):
        for name, step in runners.items():
            for _ in range(per_round):
                t = time.perf_counter()
                step()
                times[name].append((time.perf_counter() - t) * 1e3)
    return {name: float(np.median(v)) for name, v in times.items()}


def _row(precision: str, bundle: Path, budget: Budget) -> Candidate:
    """A candidate's verify numbers and size (latency is filled in later, for all at once)."""
    v = read_verify_report(bundle)
    if v is None:
        raise ConversionError(f"{bundle}: no verify report")
    stream = v.long_stream.step_agreement if v.long_stream is not None else None
    shortfall = budget.shortfall(v.accuracy_tflite, v.accuracy_keras, stream)
    return Candidate(precision, v.accuracy_tflite, v.agreement, stream, None, read_bundle(bundle).size_bytes(),
                     meets_budget=shortfall <= 1e-9, shortfall=shortfall)


def _one_line(exc: HybridEdgeError) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def search_precision(
    run_dir: str | Path,
    out_dir: str | Path,
    options: ConvertOptions,
    config: SearchConfig = SearchConfig(),
    target: str = CONVERT_TARGET,
    progress: Callable[[str], None] = print,
) -> tuple[Path, SearchReport]:
    """Convert every candidate precision, choose one, and write it with ``search.json`` to ``out_dir``.

    ``target`` is the worker's conversion function (see :func:`convert_run`).

    Raises:
        ConversionError: bad options, ``out_dir`` exists, or no candidate converted.
    """
    check_search(options, config)
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir)
    if out_dir.exists():
        raise ConversionError(f"{out_dir}: already exists; choose another --out or remove it")
    names, skipped = (list(config.candidates), {}) if config.candidates else applicable(run_dir, options)
    threads = config.threads or min(2, os.cpu_count() or 1)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.search.", dir=out_dir.parent))
    try:
        built: dict[str, Path] = {}
        errors: dict[str, str] = {}
        progress(f"converting {len(names)} candidates ({', '.join(names)}), {threads} at a time")
        with ThreadPoolExecutor(max_workers=threads) as pool:
            jobs = {pool.submit(convert_run, run_dir, tmp / name, replace(options, precision=name), config.timeout_s, target): name
                    for name in names}
            for job in as_completed(jobs):
                name = jobs[job]
                try:
                    built[name] = job.result()
                    progress(f"  {name}: converted and verified")
                except HybridEdgeError as exc:
                    errors[name] = _one_line(exc)
                    progress(f"  {name}: error: {errors[name]}")
        rows: dict[str, Candidate] = {name: Candidate(name, error=err) for name, err in errors.items()}
        for name, path in built.items():
            try:
                rows[name] = _row(name, path, config.budget)
            except HybridEdgeError as exc:
                rows[name] = Candidate(name, error=_one_line(exc))
        measurable = {n: built[n] for n in names if n in built and rows[n].error is None}
        progress(f"measuring per-frame latency of {len(measurable)} bundles ({config.latency_frames} steps each, 1 thread)")
        latency = measure_latency(measurable, config.latency_frames, config.seed) if measurable else {}
        load = os.getloadavg()[0]
        candidates = [replace(rows[n], latency_ms=latency.get(n)) for n in names]
        best = choose(candidates, config.objective)
        keras = read_verify_report(built[best.precision])
        report = SearchReport(
            budget=config.budget, objective=config.objective, candidates=tuple(candidates), chosen=best.precision,
            cpu=cpu_model(), keras_accuracy=keras.accuracy_keras if keras else None,
            latency_frames=LATENCY_ROUNDS * max(1, -(-config.latency_frames // LATENCY_ROUNDS)), latency_threads=1,
            load_average=round(load, 2), skipped=skipped,
        )
        chosen = built[best.precision]
        write_search_report(chosen, report)
        write_manifest(chosen, load_manifest(chosen))  # re-hash: search.json is a bundle file too
        chosen.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir, report
