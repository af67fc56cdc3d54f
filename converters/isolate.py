"""Run conversions in a worker subprocess: a segfault becomes a one-line error.

The TFLite converter (and the first interpreter load of a fresh flatbuffer) can
abort the whole process on some models — full-int8 conversion of a Keras 3
sequence LSTM segfaults, for one. The parent writes nothing it has not seen
finish: the worker fills a temporary directory, and only a worker that exited
cleanly gets its directory renamed into place.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

from converters.convert import ConvertOptions, check_options
from edge.errors import ConversionError, HybridEdgeError, UnquantizedOpError, error_class
from edge.rundir import RunDir

ERROR_FILE = ".error.json"
CONVERT_TARGET = "converters.convert:convert_in_process"


def convert_run(
    run_dir: str | Path,
    out_dir: str | Path,
    options: ConvertOptions,
    timeout: float = 3600,
    target: str = CONVERT_TARGET,
) -> Path:
    """Convert ``run_dir`` into a bundle at ``out_dir`` in a subprocess; atomic on success.

    ``target`` (``module:function``, called as ``fn(run_dir, out_dir, options)``)
    is the work the worker does; tests point it at a function that crashes.

    Raises:
        ConversionError: bad options, an expected conversion failure, or a worker
            that crashed, failed or timed out — one line naming model and precision.
    """
    check_options(options)  # validate before spawning anything
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir)
    if out_dir.exists():
        raise ConversionError(f"{out_dir}: already exists; choose another --out or remove it")
    what = f"{RunDir(run_dir).model_name()} to {options.precision} ({options.mode})"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(ATTEMPTS - 1):
        try:
            return _convert_once(run_dir, out_dir, options, timeout, target, what)
        except UnquantizedOpError:
            continue
    return _convert_once(run_dir, out_dir, options, timeout, target, what)


# On some graphs (an unrolled int8 bidirectional window: ~1 run in 2 here) the TFLite
# quantizer now and then leaves an op float that it quantizes on another run; the
# runs that succeed give the same bytes. Such a miss is retried in a fresh worker.
ATTEMPTS = 3


def _convert_once(run_dir: Path, out_dir: Path, options: ConvertOptions, timeout: float, target: str, what: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    cmd = [sys.executable, "-m", "converters.worker", target, str(run_dir), str(tmp), json.dumps(asdict(options))]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, env=_worker_env())
        _raise_for_worker(proc.returncode, tmp, proc.stderr.decode(errors="replace"), what)
        (tmp / ERROR_FILE).unlink(missing_ok=True)
        tmp.rename(out_dir)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"converting {what} timed out after {timeout:.0f}s; no bundle was written") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONHASHSEED"] = "0"  # one string-hash order for every conversion: nothing left to chance there
    return env


def _raise_for_worker(returncode: int, tmp: Path, stderr: str, what: str) -> None:
    if returncode == 0:
        return
    error_file = tmp / ERROR_FILE
    if returncode > 0 and error_file.is_file():
        raise _worker_error(json.loads(error_file.read_text()))
    if returncode < 0:
        name = signal.Signals(-returncode).name
        raise ConversionError(f"the converter process crashed with {name} while converting {what}; no bundle was written")
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    raise ConversionError(f"the converter process failed (exit {returncode}) converting {what}: {tail[0][:300]}")


def _worker_error(report: dict) -> HybridEdgeError:
    """The error the worker reported, as its own class (from its ``code``), else a ConversionError."""
    cls = error_class(str(report.get("code", "")))
    return (cls if issubclass(cls, ConversionError) else ConversionError)(report["message"])


def run_worker(argv: list[str]) -> int:
    """Worker entry: ``target run_dir out_dir options_json``; expected errors go to ``.error.json``."""
    target, run_dir, out_dir, raw = argv[0], Path(argv[1]), Path(argv[2]), json.loads(argv[3])
    options = ConvertOptions(**raw)
    module_name, _, func_name = target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        func(run_dir, out_dir, options)
    except HybridEdgeError as exc:
        (out_dir / ERROR_FILE).write_text(json.dumps({"message": str(exc), "code": exc.code}))
        return 3
    except Exception as exc:  # report, do not hide: a bug or an unexpected library error
        traceback.print_exc()
        lines = [l.strip() for l in str(exc).splitlines() if l.strip() and not l.strip().startswith(("File ", "\u2022"))]
        detail = next((l for l in reversed(lines) if "Error" in l or "error" in l), lines[0] if lines else "")
        message = f"converting {options.precision} ({options.mode}) failed: {type(exc).__name__}: {detail[:300]}"
        (out_dir / ERROR_FILE).write_text(json.dumps({"message": message, "code": ConversionError.code}))
        return 4
    return 0
