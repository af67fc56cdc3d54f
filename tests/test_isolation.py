"""A converter worker that really dies is reported as one line; no bundle is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.convert import ConvertOptions
from converters.isolate import convert_run
from edge.errors import ConversionError

CRASHER = '''
import ctypes
import os
from pathlib import Path


def segfault(run_dir, out_dir, options):
    (Path(out_dir) / "model.tflite").write_bytes(b"half a model")  # partial output must not survive
    ctypes.string_at(0)  # read address 0: SIGSEGV


def abort(run_dir, out_dir, options):
    (Path(out_dir) / "manifest.json").write_text("{}")
    os.abort()


def fail(run_dir, out_dir, options):
    raise RuntimeError("converter library bug\\nsecond line of detail")


def order_dependent(run_dir, out_dir, options):
    """Like the quantizer on some graphs: an op left float on the first run only."""
    from edge.errors import UnquantizedOpError

    log = Path(run_dir) / "attempts.log"
    first = not log.exists()
    with open(log, "a") as f:
        f.write(os.environ["PYTHONHASHSEED"] + "\\n")
    (Path(out_dir) / "model.tflite").write_bytes(b"first" if first else b"second")
    if first:
        raise UnquantizedOpError("m (int8, window): the quantizer left op SPLIT float")


def no_kernel(run_dir, out_dir, options):
    from edge.errors import ConversionError

    with open(Path(run_dir) / "attempts.log", "a") as log:
        log.write(os.environ["PYTHONHASHSEED"] + "\\n")
    raise ConversionError("m (int8, window): int8 is integer-only but op ZEROS_LIKE has no integer kernel here (float tensor 'x')")
'''


@pytest.fixture
def crasher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module the worker can import (via PYTHONPATH) whose functions crash, and a fake run dir."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "crasher.py").write_text(CRASHER)
    monkeypatch.setenv("PYTHONPATH", f"{mods}:{Path(__file__).resolve().parents[1]}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_card.json").write_text(json.dumps({"model": "tiny_model"}))
    return run


@pytest.mark.parametrize("target,signal", [("crasher:segfault", "SIGSEGV"), ("crasher:abort", "SIGABRT")])
def test_worker_crash_becomes_one_line_error(crasher: Path, tmp_path: Path, target: str, signal: str) -> None:
    out = tmp_path / "bundles" / "b"
    with pytest.raises(ConversionError) as err:
        convert_run(crasher, out, ConvertOptions("int8"), target=target)
    message = str(err.value)
    assert "\n" not in message
    assert signal in message and "tiny_model" in message and "int8" in message and "no bundle was written" in message
    assert not out.exists()
    assert list((tmp_path / "bundles").iterdir()) == []  # the temporary directory is gone too


def test_unexpected_worker_exception_is_one_line(crasher: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    with pytest.raises(ConversionError, match="RuntimeError: converter library bug") as err:
        convert_run(crasher, out, ConvertOptions("float32"), target="crasher:fail")
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_bad_options_refused_before_spawning(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="unknown precision 'int4'"):
        convert_run(tmp_path, tmp_path / "b", ConvertOptions("int4"))
    with pytest.raises(ConversionError, match="no --window form"):
        convert_run(tmp_path, tmp_path / "b", ConvertOptions("mixed", mode="window"))
    assert not (tmp_path / "b").exists()


def test_quantizer_miss_is_retried_in_a_fresh_worker(crasher: Path, tmp_path: Path) -> None:
    """An op with integer kernels left float is retried; workers run under one fixed PYTHONHASHSEED."""
    out = convert_run(crasher, tmp_path / "b", ConvertOptions("int8"), target="crasher:order_dependent")
    assert (out / "model.tflite").read_bytes() == b"second"
    assert (crasher / "attempts.log").read_text().split() == ["0", "0"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b.")] == []  # the failed attempt left nothing


def test_op_without_integer_kernel_is_not_retried(crasher: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="op ZEROS_LIKE has no integer kernel"):
        convert_run(crasher, tmp_path / "b", ConvertOptions("int8"), target="crasher:no_kernel")
    assert (crasher / "attempts.log").read_text().split() == ["0"]
    assert not (tmp_path / "b").exists()
