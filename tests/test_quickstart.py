"""The quickstart end to end on a tiny model: timed steps, report.html/report.md, summary, quiet output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import TINY_SPEC

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ("import sys; from pathlib import Path; from benchmarks.quickstart import QuickstartConfig, run_quickstart; "
          "run_quickstart(QuickstartConfig(out=Path(sys.argv[1]), model='test_cnn_lstm', dataset=sys.argv[2], epochs=2))")


def test_tiny_quickstart_writes_the_report_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(ROOT), HYBRID_EDGE_PROGRESS="lines")
    spec = TINY_SPEC.rsplit(",seed=", 1)[0]  # the quickstart appends its own seed
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), spec], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert list(report["steps_seconds"]) == ["data", "train", "convert", "evaluate", "report"]
    assert all(v >= 0 for v in report["steps_seconds"].values())
    assert [b["precision"] for b in report["bundles"]] == ["float32", "int8"]
    int8 = report["bundles"][1]
    verify = json.loads((out / "bundles" / "int8" / "verify.json").read_text())
    assert int8["verify"]["long_stream_agreement"] == verify["long_stream"]["step_agreement"]
    page = (out / "report.html").read_text()
    assert page.count("<img ") == 5 and "Conversion check against the Keras model" in page
    assert "int8 is " in (out / "report.md").read_text()
    assert f"({(out / 'report.html').resolve().as_uri()})" in proc.stdout
    assert (out / "summary.txt").read_text().strip() in proc.stdout
    assert "steps: data " in proc.stdout
    # TensorFlow's own lines went to the log file, not the terminal
    assert "absl::InitializeLog" not in proc.stderr and "I0000 " not in proc.stderr
    assert (out / "tensorflow.log").is_file()
