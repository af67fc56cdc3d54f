"""``convert --precision auto`` on a tiny LSTM: search.json, the budget, error rows, ``--strict``, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import SEARCH_REPORT, read_bundle
from edge.bundle.search_report import Budget, Candidate, Objective, read_search_report
from test_converters import _train, ts_dir  # noqa: F401  (ts_dir: the tiny .ts set, a fixture)

TINY = ["--calibration-samples", "40", "--stream-steps", "60", "--verify-sequences", "6"]
ROW_KEYS = {"precision", "accuracy", "agreement", "stream_agreement", "latency_ms", "size_bytes", "meets_budget", "error"}

CRASHY = '''
import ctypes
from dataclasses import replace

from converters.convert import convert_in_process


def convert(run_dir, out_dir, options):
    if options.precision == "int16x8":
        ctypes.string_at(0)  # read address 0: SIGSEGV, as the TFLite converter does on some graphs
    if options.precision == "int8":  # all integer (int8 cell states, calibrated ranges): its long stream drifts from Keras
        options = replace(options, recurrent_state="int8", cell_range_percentile=100.0, gate_range="full")
    return convert_in_process(run_dir, out_dir, options)
'''


@pytest.fixture(scope="module")
def run(ts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``test_rnn`` (causal conv + 2 LSTMs) trained two epochs on a tiny 3-class .ts set."""
    return _train("test_rnn", f"ucr:{ts_dir}", tmp_path_factory.mktemp("runs") / "rnn")


def convert(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "convert", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def auto_bundle(run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("auto") / "rnn-auto"
    proc = convert(str(run), "--precision", "auto", "--candidates", "float32,int8,int16x8", "--strict", "--out", str(out), *TINY)
    return out, proc


def test_choice_is_the_fastest_in_budget_else_the_closest_flagged() -> None:
    from converters.search import choose

    budget = Budget(max_drop=1.0, min_stream_agreement=0.98)
    assert budget.shortfall(0.99, 1.0, None) == 0.0  # no stream (window bundle): only accuracy counts
    assert budget.shortfall(0.95, 1.0, 0.97) == pytest.approx(0.04 + 0.01)

    def row(p: str, acc: float, stream: float, ms: float, size: int) -> Candidate:
        miss = budget.shortfall(acc, 1.0, stream)
        return Candidate(p, acc, acc, stream, ms, size, meets_budget=miss == 0, shortfall=miss)

    rows = [row("float32", 1.0, 1.0, 0.30, 4000), row("int16x8", 0.995, 0.99, 0.40, 1500),
            row("int8", 0.93, 0.96, 0.10, 1000), Candidate("mixed", error="converter crashed")]
    assert choose(rows, Objective.LATENCY).precision == "float32"
    assert choose(rows, Objective.SIZE).precision == "int16x8"
    none_meet = [row("int8", 0.93, 0.96, 0.10, 1000), row("uint8-io", 0.97, 0.97, 0.12, 1000), rows[-1]]
    assert choose(none_meet, Objective.LATENCY).precision == "uint8-io"  # shortfall 0.01 + 0.01 < 0.06 + 0.02


def test_auto_writes_search_json_and_keeps_the_fastest_in_budget(auto_bundle: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = auto_bundle
    assert proc.returncode == 0, proc.stderr  # --strict: the chosen bundle meets the budget
    doc = json.loads((out / SEARCH_REPORT).read_text())
    assert doc["budget"] == {"max_drop": 1.0, "min_stream_agreement": 0.98} and doc["objective"] == "latency"
    assert doc["cpu"] and doc["latency_frames"] >= 300 and doc["latency_threads"] == 1
    assert [c["precision"] for c in doc["candidates"]] == ["float32", "int8", "int16x8"]
    keras = doc["keras_accuracy"]
    for c in doc["candidates"]:
        assert ROW_KEYS <= set(c) and c["error"] is None
        v = json.loads((out / "verify.json").read_text()) if c["precision"] == doc["chosen"] else None
        assert c["meets_budget"] == (c["accuracy"] >= keras - 0.01 and c["stream_agreement"] >= 0.98)
        assert c["latency_ms"] > 0 and c["size_bytes"] > 1000
        if v is not None:  # the chosen row is the moved bundle's own verify.json and size
            assert (c["accuracy"], c["agreement"], c["stream_agreement"]) == (
                v["accuracy_tflite"], v["agreement"], v["long_stream"]["step_agreement"])
            assert c["size_bytes"] == read_bundle(out).size_bytes()
    chosen = next(c for c in doc["candidates"] if c["precision"] == doc["chosen"])
    meeting = [c for c in doc["candidates"] if c["meets_budget"]]
    assert chosen["meets_budget"] and chosen["latency_ms"] == min(c["latency_ms"] for c in meeting)
    bundle = read_bundle(out, strict_files=True)  # search.json is hashed in the manifest; nothing else is left over
    assert SEARCH_REPORT in bundle.manifest.files and bundle.precision == doc["chosen"]
    assert [p.name for p in out.parent.iterdir()] == ["rnn-auto"]  # the other candidates are gone
    lines = proc.stdout.splitlines()
    assert lines[-7].split()[:2] == ["precision", "accuracy"] and f"chose {doc['chosen']}: the fastest of" in proc.stdout
    assert sum(line.split()[0] in ("float32", "int8", "int16x8") for line in lines[-6:-3]) == 3


def test_inspect_and_report_show_the_search(auto_bundle: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    from benchmarks.bench import BenchConfig, run_bench
    from benchmarks.report import to_html, to_markdown

    out, _ = auto_bundle
    chosen = read_search_report(out).chosen
    shown = subprocess.run([sys.executable, "-m", "edge", "inspect", str(out)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and f"searched  chose {chosen}" in shown.stdout
    doc = run_bench([out], BenchConfig(runs=10, min_seconds=0.0, warmup=2, repeats=1), progress=lambda line: None)
    (tmp_path / "results.json").write_text(json.dumps(doc))
    md = to_markdown(doc)
    assert f"## Precision search for test_rnn ({out}): chose {chosen}" in md
    assert md.count("| int16x8 |") == 1 and "<th>stream agreement</th>" in to_html(doc)
    again = subprocess.run([sys.executable, "-m", "edge", "report", str(tmp_path / "results.json")], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "Precision search for test_rnn" in (tmp_path / "report.html").read_text()


def test_a_crashing_candidate_is_an_error_row_and_a_missed_budget_is_flagged(
        run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from converters.convert import ConvertOptions
    from converters.search import SearchConfig, search_precision

    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "crashy.py").write_text(CRASHY)
    monkeypatch.setenv("PYTHONPATH", f"{mods}:{Path(__file__).resolve().parents[1]}")
    options = ConvertOptions("auto", calibration_samples=40, stream_steps=60, verify_sequences=6)
    # a budget crashy's int8 cannot hold (its 60-step stream agreement is below 1), so nothing meets it
    config = SearchConfig(budget=Budget(0.0, 1.0), candidates=("int8", "int16x8"))
    out, report = search_precision(run, tmp_path / "b", options, config, target="crashy:convert", progress=lambda line: None)
    crashed, int8 = report.candidates[1], report.candidates[0]
    assert crashed.precision == "int16x8" and "SIGSEGV" in crashed.error and "\n" not in crashed.error
    assert crashed.latency_ms is None and not crashed.meets_budget
    assert int8.error is None and int8.stream_agreement < 1.0 and not int8.meets_budget and int8.shortfall > 0
    assert report.chosen == "int8" and read_search_report(out) == report and read_bundle(out).precision == "int8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "mods"]


def test_strict_fails_a_bundle_that_misses_its_targets(run: Path, tmp_path: Path) -> None:
    # an all-int8 cell state clipped to its median: made to miss
    proc = convert(str(run), "--precision", "int8", "--recurrent-state", "int8", "--cell-range-percentile", "50", "--strict",
                   "--out", str(tmp_path / "int8"), *TINY)
    warnings = json.loads((tmp_path / "int8" / "verify.json").read_text())["warnings"]
    assert warnings, "precondition: this int8 misses a target"
    assert proc.returncode == 2 and "WARNING" in proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "--strict: int8 misses the converter's targets" in proc.stderr
    refused = convert(str(run), "--precision", "auto", "--strict", "--no-verify", "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and "drop --no-verify" in refused.stderr and not (tmp_path / "x").exists()
    bad = convert(str(run), "--precision", "auto", "--candidates", "int4", "--out", str(tmp_path / "y"))
    assert bad.returncode == 2 and "unknown precision 'int4'" in bad.stderr


def test_budget_counts_an_exact_drop_as_held() -> None:
    """Keras's float32 accuracy (0.36000001) one point above a bundle's 0.35 holds a 1-point budget."""
    b = Budget(max_drop=1.0, min_stream_agreement=0.98)
    assert b.shortfall(0.35, float(np.float32(0.36)), 0.98) == 0.0
    assert b.shortfall(0.34, 0.36, 0.98) > 0.009
