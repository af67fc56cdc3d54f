"""Run conversions in a worker subprocess: a segfault becomes a one-line error.

The TFLite converter (and the first interpreter load of a fresh flatbuffer) can
abort the whole process on some models. The parent writes nothing it has not
seen finish: the worker fills a temporary directory, and only a worker that
exited cleanly gets its directory renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from converters.convert import ConvertOptions
from edge.errors import ConversionError, HybridEdgeError

ERROR_FILE = ".error.json"


def convert_run(run_dir: str | Path, out_dir: str | Path, options: ConvertOptions, timeout: float = 1800) -> Path:
    """Convert ``run_dir`` into a bundle at ``out_dir`` in a subprocess; atomic on success."""
    from converters.formats import get_format

    get_format(options.precision)  # validate before spawning anything
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir)
    if out_dir.exists():
        raise ConversionError(f"{out_dir}: already exists; choose another --out or remove it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    cmd = [sys.executable, "-m", "converters.worker", str(run_dir), str(tmp), json.dumps(asdict(options))]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, env=_quiet_env())
        _raise_for_worker(proc.returncode, tmp, proc.stderr.decode(errors="replace"), options)
        tmp.rename(out_dir)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"conversion to {options.precision} timed out after {timeout:.0f}s") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _raise_for_worker(returncode: int, tmp: Path, stderr: str, options: ConvertOptions) -> None:
    if returncode == 0:
        return
    error_file = tmp / ERROR_FILE
    if returncode > 0 and error_file.is_file():
        raise ConversionError(json.loads(error_file.read_text())["message"])
    if returncode < 0:
        name = signal.Signals(-returncode).name
        raise ConversionError(f"the converter process crashed with {name} while converting to {options.precision}; no bundle was written")
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    raise ConversionError(f"the converter process failed (exit {returncode}) converting to {options.precision}: {tail[0][:300]}")


def run_worker(argv: list[str]) -> int:
    """Worker entry: ``run_dir out_dir options_json``; expected errors go to ``.error.json``."""
    run_dir, out_dir, raw = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    options = ConvertOptions(**raw)
    try:
        from converters.convert import convert_in_process

        convert_in_process(run_dir, out_dir, options)
    except HybridEdgeError as exc:
        (out_dir / ERROR_FILE).write_text(json.dumps({"message": str(exc)}))
        return 3
    return 0
