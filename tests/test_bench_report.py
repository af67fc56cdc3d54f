"""``hybrid-edge bench``: run rules, same-seed reproducibility, reference comparison, and the HTML report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_SPEC

BLOCK_TF = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; from edge.cli import main; sys.exit(main(sys.argv[1:]))"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TF, "bench", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def window_bundle(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run as a whole-window float32 bundle (the naive deployment)."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    return convert_run(tiny_run, tmp_path_factory.mktemp("window") / "float32", ConvertOptions("float32", mode="window", verify=False))


@pytest.fixture(scope="module")
def bench_runs(tiny_bundles: dict[str, Path], window_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two identical-seed bench runs (float32 + int8 streaming, float32 window) with accuracy; the second compares to the first."""
    root = tmp_path_factory.mktemp("bench")
    common = [str(tiny_bundles["float32"]), str(tiny_bundles["int8"]), str(window_bundle), "--threads", "1,2", "--runs", "30",
              "--min-seconds", "0.2", "--repeats", "2", "--warmup", "5", "--dataset", TINY_SPEC, "--limit", "7", "--seed", "4"]
    first = bench(*common, "--out", str(root / "a"), "--save-reference", "thisbox")
    assert first.returncode == 0, first.stderr
    second = bench(*common, "--out", str(root / "b"), "--compare-to", str(root / "a" / "reference-thisbox.json"))
    assert second.returncode in (0, 1), second.stderr  # 1 = a regression was marked (timing noise on a shared box)
    return root / "a", root / "b"


def test_results_follow_run_rules_and_record_the_machine(bench_runs: tuple[Path, Path]) -> None:
    doc = json.loads((bench_runs[0] / "results.json").read_text())
    assert len(doc["results"]) == 6
    for r in doc["results"]:
        lat = r["latency_ms"]
        assert lat["count"] >= 2 * 30 and r["measured_seconds"] >= 2 * 0.2
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        sp = r["p50_spread_ms"]
        assert sp["repeats"] == 2 and sp["min"] <= sp["median"] <= sp["max"]
        assert r["init_ms"] > 0 and r["first_inference_ms"] > 0 and r["peak_rss_mb"] > 10
        assert r["delegate"]["applied"] == "xnnpack" and r["delegate"]["delegate_partitions"] >= 1 and r["delegate"]["xnnpack_created"]
        assert r["energy_estimated"] == r["energy_source"].startswith("estimate:")
        assert r["items"] == 7 and sum(map(sum, r["confusion"])) == 7 and "macro_f1" in r
        assert "probs" not in r
    f32 = [r for r in doc["results"] if r["precision"] == "float32"]
    assert all(r["agreement_with_float"] == 1.0 for r in f32)
    m = doc["machine"]
    assert m["cores"] >= 1 and m["cpu_model"] and "ai-edge-litert" in m["versions"] and len(m["load_average"]) == 3
    rows = {(p["precision"], p["threads"]): p for p in doc["precisions"]}
    assert rows[("int8", 1)]["size_ratio_vs_float32"] < 1.0


def test_streaming_and_window_bundles_are_paired_per_frame(bench_runs: tuple[Path, Path]) -> None:
    doc = json.loads((bench_runs[0] / "results.json").read_text())
    window = [r for r in doc["results"] if r["mode"] == "window"]
    assert len(window) == 2 and all(r["window_frames"] == 6 for r in window)
    # the window bundle classifies the same clips as the streaming one (same float function)
    assert all(r["agreement_with_float"] == 1.0 for r in window)
    pairs = doc["streaming_vs_window"]
    assert [(p["precision"], p["threads"]) for p in pairs] == [("float32", 1), ("float32", 2)]
    for p in pairs:
        assert p["speedup"] == pytest.approx(p["window_p50_ms"] / p["streaming_p50_ms"])
        assert p["target_speedup"] == pytest.approx(0.9 * 6) and p["meets_target"] == (p["speedup"] >= 5.4)


def test_same_seed_same_accuracy_fields(bench_runs: tuple[Path, Path]) -> None:
    a, b = (json.loads((d / "results.json").read_text())["results"] for d in bench_runs)
    keys = ("accuracy", "macro_f1", "confusion", "agreement_with_float", "items")
    assert [{k: r[k] for k in keys} for r in a] == [{k: r[k] for k in keys} for r in b]


def test_compare_to_reference_marks_each_entry(bench_runs: tuple[Path, Path], tmp_path: Path) -> None:
    from benchmarks.compare import compare, load_reference

    doc = json.loads((bench_runs[1] / "results.json").read_text())
    rows = doc["comparison"]["rows"]
    assert len(rows) == 6 and all(r["status"] in ("ok", "regression") for r in rows)
    # a reference 2.5x faster than this very run must flag every entry, and one equal to it none
    # (built from run b itself: two runs on a shared box can differ by more than 2x)
    ref = load_reference(bench_runs[0] / "reference-thisbox.json")
    p50 = {(r["name"], r["precision"], r["mode"], r["threads"]): r["latency_ms"]["p50"] for r in doc["results"]}
    for e in ref["entries"]:
        e["p50_ms"] = p50[(e["name"], e["precision"], e["mode"], e["threads"])]
    assert compare(doc, ref)["regressions"] == 0
    for e in ref["entries"]:
        e["p50_ms"] /= 2.5
    strict = compare(doc, ref)
    assert strict["regressions"] == 6 and all("p50 2.50x" in r["problems"][0] for r in strict["rows"])


def test_report_html_renders_every_image_in_chromium(bench_runs: tuple[Path, Path], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (make test installs it)")
    page = (bench_runs[1] / "report.html").read_text()
    assert "src='http" not in page and "<link" not in page  # self-contained
    n_images = page.count("<img ")
    assert n_images == 6  # latency, accuracy, size-vs-latency, energy, confusion, streaming-vs-window
    check = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
             " const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length;"
             " const d = document.createElement('div'); d.id = 'imgcheck'; d.textContent = `images ${ok}/${imgs.length}`;"
             " document.body.appendChild(d); });</script>")
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", check + "</body>"))
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    proc = subprocess.run([chromium, *flags, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"images (\d+)/(\d+)", proc.stdout)
    assert found, proc.stderr[-2000:]
    assert int(found.group(1)) == int(found.group(2)) == n_images
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,3000", checked.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_results_table_replaces_only_between_markers(bench_runs: tuple[Path, Path], tmp_path: Path) -> None:
    from benchmarks.results_table import main

    readme = tmp_path / "README.md"
    readme.write_text("# title\nbefore\n<!-- results:start -->\nold table\n<!-- results:end -->\nafter\n")
    assert main([str(bench_runs[0] / "results.json"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\nbefore\n<!-- results:start -->\n| bundle | model |") and text.endswith("<!-- results:end -->\nafter\n")
    assert "old table" not in text and text.count(" | test_cnn_lstm | ") == 6 and "streaming vs window" in text


def test_shipped_reference_files_are_valid() -> None:
    from benchmarks.compare import load_reference

    files = sorted((Path(__file__).parent.parent / "benchmarks" / "reference").glob("*.json"))
    assert files
    for f in files:
        ref = load_reference(f)
        assert ref["machine"]["cores"] >= 1 and ref["entries"] and all(e["p50_ms"] > 0 for e in ref["entries"])


def test_report_command_rerenders_from_results(bench_runs: tuple[Path, Path], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF.replace("main(sys.argv[1:])", "main(['report', *sys.argv[1:]])"),
                           str(bench_runs[0] / "results.json"), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report.md").read_text()
    assert "| test_cnn_lstm float32 window 1t |" in md and "## Streaming vs window recompute" in md
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 6


def test_report_opens_with_a_summary_and_shows_the_conversion_check(bench_runs: tuple[Path, Path], tiny_bundles: dict[str, Path]) -> None:
    """The first paragraph compares int8 with float32; verify.json's long-stream numbers reach the report."""
    from benchmarks.report import summary_sentence

    doc = json.loads((bench_runs[0] / "results.json").read_text())
    sentence = summary_sentence(doc)
    int8 = next(p for p in doc["precisions"] if p["precision"] == "int8" and p["threads"] == 1)
    assert sentence.startswith(f"int8 is {int8['size_ratio_vs_float32']:.2f}x the size of float32")
    assert f"agrees with it on {100 * int8['agreement_with_float']:.1f} % of the 7 test clips" in sentence
    md = (bench_runs[0] / "report.md").read_text()
    assert sentence in md and sentence.split(" (")[0] in (bench_runs[0] / "report.html").read_text()
    verify = json.loads((tiny_bundles["int8"] / "verify.json").read_text())
    row = next(r for r in doc["results"] if r["precision"] == "int8" and r["mode"] == "streaming")
    assert row["verify"]["long_stream_agreement"] == verify["long_stream"]["step_agreement"]
    assert row["verify"]["agreement_with_keras"] == verify["agreement"]
    differ = verify["disagreements"]
    assert row["verify"]["disagreements"] == differ
    cell = f"{verify['agreement']:.3f}" + (f" ({differ['count']} differ, lead up to {differ['reference_leads'][0]:.3f})" if differ["count"] else "")
    assert f"| {cell} |" in md
    assert "## Conversion check against the Keras model" in md

