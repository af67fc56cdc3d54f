"""Bundle analysis from the interpreter alone: parameters, MACs, memory, Edge TPU verdicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.analysis import analyze_graph
from training.models.cnn_rnn import TinyCnnRnnConfig


def _expected_macs(cfg: TinyCnnRnnConfig) -> int:
    """Stride-2 3x3 'same' convs, then Flatten -> embed, LSTM step, classifier — by hand."""
    h, w, c, macs = cfg.height, cfg.width, cfg.channels, 0
    for f in cfg.filters:
        h, w = -(-h // 2), -(-w // 2)
        macs += h * w * f * 9 * c
        c = f
    macs += h * w * c * cfg.embed
    units, inp = cfg.units[0], cfg.embed
    macs += 4 * units * (inp + units)  # input and recurrent kernels of four gates
    return macs + units * cfg.num_classes


@pytest.fixture(scope="module")
def all_int8(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run as an all-integer int8 bundle (``--recurrent-state int8``)."""
    from converters.convert import ConvertOptions
    from converters.isolate import convert_run

    options = ConvertOptions("int8", calibration_samples=60, recurrent_state="int8", verify=False)
    return convert_run(tiny_run, tmp_path_factory.mktemp("all-int8") / "int8", options)


def test_int8_step_graph_counts_and_maps_to_edgetpu(all_int8: Path, tiny_bundles: dict[str, Path], tiny_run: Path) -> None:
    from training.registry import load_keras_model

    a = analyze_graph(all_int8 / "model.tflite")
    model = load_keras_model(tiny_run / "model.keras")
    assert a.parameters == model.count_params()
    assert a.macs == _expected_macs(TinyCnnRnnConfig())
    assert a.counts["CONV_2D"] == 2 and a.counts["FULLY_CONNECTED"] >= 3
    assert "SHAPE" not in a.counts  # static batch-1 export: no dynamic-shape ops
    assert a.tpu_ops == len(a.ops) and a.first_cpu_op is None
    assert 0 < a.arena_bytes < 64 * 1024 and a.size_bytes == (all_int8 / "model.tflite").stat().st_size
    # the default int8 bundle keeps the LSTM update float: the Edge TPU would map the ops before it
    d = analyze_graph(tiny_bundles["int8"] / "model.tflite")
    assert d.parameters == a.parameters and d.macs == a.macs
    assert 0 < d.tpu_ops < len(d.ops) and d.first_cpu_op.startswith("DEQUANTIZE")  # into the float update


def test_float_graph_falls_back_to_cpu_from_first_op(tiny_bundles: dict[str, Path]) -> None:
    a = analyze_graph(tiny_bundles["float32"] / "model.tflite")
    assert a.tpu_ops == 0 and "float32 tensor" in a.first_cpu_op
    assert a.ops[-1].edgetpu.startswith("cpu")
    assert a.parameter_bytes > 3 * analyze_graph(tiny_bundles["int8"] / "model.tflite").parameter_bytes


def test_inspect_cli_prints_analysis(tiny_bundles: dict[str, Path]) -> None:
    proc = subprocess.run([sys.executable, "-m", "edge", "inspect", str(tiny_bundles["int8"])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for needle in ("M MACs per frame", "estimate:", "edgetpu   ", "ops would map", "ops       ", "verified  agreement"):
        assert needle in proc.stdout, proc.stdout


def test_analysis_runs_without_tensorflow(tiny_bundles: dict[str, Path]) -> None:
    script = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from edge.inspect import describe_bundle\n"
        f"text = describe_bundle({str(tiny_bundles['int8'])!r})\n"
        "assert 'MACs per frame' in text and not any(m == 'keras' or m.startswith(('tensorflow.', 'keras.')) for m in sys.modules)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr
