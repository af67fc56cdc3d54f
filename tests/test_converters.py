"""Converters on tiny models: step models, calibration, safety, every bundle kind, verify.json."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converters.calibrate import collect_samples, extreme_sequences, validate_samples
from converters.convert import ConvertOptions, check_options
from converters.isolate import convert_run
from edge.bundle import VERIFY_REPORT, Mode, read_bundle, sha256_file
from edge.errors import ConversionError
from edge.streaming import StreamingSession

LABELS = ("slow", "fast", "flat")


def write_ts(path: Path, n: int, seed: int) -> None:
    """A tiny 3-class, 3-dimension, variable-length UEA ``.ts`` file (class = frequency)."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName tiny", "@timeStamps false", "@missing false", "@univariate false", "@dimensions 3",
             "@equalLength false", f"@classLabel true {' '.join(LABELS)}", "@data"]
    for i in range(n):
        label = i % 3
        t = np.arange(rng.integers(8, 13))
        freq = (0.3, 1.2, 0.0)[label]
        dims = [np.sin(freq * t + k) + 0.1 * rng.normal(size=len(t)) + (0.5 if label == 2 else 0) for k in range(3)]
        lines.append(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{LABELS[label]}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ts") / "tiny"
    d.mkdir()
    write_ts(d / "tiny_TRAIN.ts", 30, 0)
    write_ts(d / "tiny_TEST.ts", 12, 1)
    return d


def _train(name: str, spec: str, out: Path) -> Path:
    from training.train import TrainConfig, train

    return train(name, spec, out, TrainConfig(epochs=2, batch_size=8, seed=1, patience=2), progress=lambda m: None)


@pytest.fixture(scope="module")
def runs(ts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny runs: a 2-layer LSTM with causal conv + masking, a GRU, a separable CNN, a bidirectional RNN."""
    root = tmp_path_factory.mktemp("runs")
    seq = f"ucr:{ts_dir}"
    return {
        "test_rnn": _train("test_rnn", seq, root / "rnn"),
        "test_rnn_gru": _train("test_rnn_gru", seq, root / "gru"),
        "test_rnn_bidir": _train("test_rnn_bidir", seq, root / "bidir"),
        "test_tcn": _train("test_tcn", seq, root / "tcn"),
        "test_cnn": _train("test_cnn", "synthetic-shapes:classes=3,size=16,images=8", root / "cnn"),
    }


def _convert(run: Path, out: Path, precision: str, mode: str = "auto", recurrent_state: str = "float") -> Path:
    return convert_run(run, out, ConvertOptions(precision, calibration_samples=40, mode=mode, stream_steps=60, verify_sequences=6,
                                                recurrent_state=recurrent_state))


def _verify(bundle: Path) -> dict:
    return json.loads((bundle / "verify.json").read_text())


def _searched(note: str, pattern: str) -> tuple[float, dict[float, float]]:
    """(chosen candidate, {candidate: mean L1 to Keras}) from one search's line of a calibration note."""
    import re

    line = next(part for part in note.split("; ") if re.search(pattern, part))
    tried = {float(c): float(d) for c, d in re.findall(r"([\d.]+): ([\d.]+)", line.split("sequences (", 1)[1])}
    return float(re.search(pattern, line).group(1)), tried


def _check_gate_search(note: str) -> float:
    """The gate range search's line: the distinct candidates tried, the best kept (or none to try); the factor."""
    from converters.cellrange import GATE_FACTORS

    if "gate pre-activation range: as calibrated (within +-6" in note:
        return 1.0  # every gate range already inside the steep part: nothing to narrow, nothing streamed
    chosen, tried = _searched(note, r"gate pre-activation range: ([\d.]+) x")
    assert list(tried) == [f for f in GATE_FACTORS if f in tried] and 1.0 in tried and len(tried) >= 2
    assert tried[chosen] == min(tried.values())
    return chosen


def _check_search_gates(f32: Path, i8: Path) -> None:
    """The gate range search on a real int8 graph (``flat=0``: the tiny model's gates never leave +-6): every
    factor tried once, the one streaming closest to the reference kept, its graph returned."""
    from types import SimpleNamespace

    from converters import cellrange
    from converters.tflite import narrow_gate_ranges

    b = read_bundle(i8)
    step = SimpleNamespace(state_pairs=[(s.input, s.output) for s in b.states], frame_input="sample", mask_value=None)
    sequences = [np.random.default_rng(i).normal(size=(12, 3)).astype(np.float32) for i in range(6)]
    f32_pairs = [(s.input, s.output) for s in read_bundle(f32).states]
    reference = cellrange._stream((f32 / "model.tflite").read_bytes(), sequences, "sample", f32_pairs, None)
    graph = (i8 / "model.tflite").read_bytes()
    chosen, kept, trials = cellrange.search_gates(step, cellrange.gate_candidates(graph, flat=0.0), sequences, reference)
    l1 = {t.candidate: t.prob_l1 for t in trials}
    assert list(l1) == list(cellrange.GATE_FACTORS) and l1[chosen] == min(l1.values())
    assert kept == narrow_gate_ranges(graph, chosen, flat=0.0)
    unchanged = cellrange._stream(graph, sequences, "sample", step.state_pairs, None)
    assert l1[1.0] == pytest.approx(float(np.abs(unchanged - reference).sum(axis=1).mean()))
    assert len(set(l1.values())) > 1  # narrowing changes what the graph computes


def _check_narrowed_gates(flatbuffer: bytes, sums: bool) -> None:
    """Narrowing the gate range by 0.5 rescales the int8 x·W output, the gate sum and its splits where those are
    int8 (``sums``: an all-integer LSTM), and nothing else; by default never inside +-6 (where sigmoid and tanh are
    steep) nor past the calibrated range."""
    from converters.tflite import narrow_gate_ranges
    from edge.interpreter import make_interpreter

    assert narrow_gate_ranges(flatbuffer, 1.0) is flatbuffer

    def ranges(data: bytes) -> tuple[dict[str, tuple[float, float]], Any]:
        it = make_interpreter(data, num_threads=1, delegate="none")
        out = {}
        for d in it.get_tensor_details():
            scales, zeros = d["quantization_parameters"]["scales"], d["quantization_parameters"]["zero_points"]
            if d["dtype"] == np.int8 and len(scales) == 1:  # activations (weights are per channel)
                out[f"{d['index']}:{d['name']}"] = ((-128 - zeros[0]) * scales[0], (127 - zeros[0]) * scales[0])
        return out, it

    before, _ = ranges(flatbuffer)
    kept, _ = ranges(narrow_gate_ranges(flatbuffer, 0.5))
    for k in (k for k in before if kept[k] != before[k]):
        (lo, hi), want = before[k], (max(before[k][0], min(before[k][0] / 2, -6.0)), min(before[k][1], max(before[k][1] / 2, 6.0)))
        assert kept[k] == pytest.approx(want, abs=(hi - lo) / 100)
    after, it = ranges(narrow_gate_ranges(flatbuffer, 0.5, flat=0.0))  # the rescale itself, on every gate tensor
    changed = {k for k in before if before[k] != after[k]}
    projections = {k for k in changed if "_x_1/MatMul" in k}
    assert projections and all("/rnn_" in k for k in changed)  # each layer's input projection, its sums and splits
    assert bool({k for k in changed - projections if "split" not in k}) == sums  # splits of a product move its bytes
    assert all(after[k] == pytest.approx((before[k][0] / 2, before[k][1] / 2), abs=before[k][1] / 100) for k in changed)
    runner = it.get_signature_runner("serving_default")
    feeds = {k: np.zeros(v["shape"], v["dtype"]) for k, v in runner.get_input_details().items()}
    assert all(np.all(np.isfinite(v.astype(np.float32))) for v in runner(**feeds).values())  # still prepares and runs


def _check_float_update(flatbuffer: bytes) -> None:
    """An int8 graph with float recurrent updates: the matrix products int8, everything between them float (the gate
    sum, its split, ``h' = o tanh(c')``): no int8 round trip at the island's edges (``float_edges``)."""
    from edge.compat import ops_details
    from edge.interpreter import make_interpreter

    it = make_interpreter(flatbuffer, num_threads=1, delegate="none")
    dtype = {d["index"]: d["dtype"] for d in it.get_tensor_details()}
    ops = ops_details(it)
    made_by = {int(t): op["op_name"] for op in ops for t in op["outputs"]}
    assert {dtype[int(op["outputs"][0])] for op in ops if op["op_name"] == "FULLY_CONNECTED"} == {np.int8}
    for op in ops:
        if op["op_name"] in ("ADD", "MUL", "LOGISTIC", "TANH"):
            assert {dtype[int(t)] for t in op["inputs"] if t >= 0} == {np.float32}, op
        if op["op_name"] == "SPLIT":  # a float sum split in float; an int8 product's split only moves its bytes
            assert made_by[int(op["inputs"][1])] in ("ADD", "FULLY_CONNECTED"), op


# --- step models and calibration (in process, no conversion) ---------------------------------------------


@pytest.mark.parametrize("name", ["test_rnn", "test_rnn_gru", "test_cnn_gru", "test_tcn"])
def test_step_model_equals_keras_with_state_fed_back(name: str) -> None:
    import keras

    from converters.streaming import build_step_model
    from training.registry import create_model

    keras.utils.set_random_seed(0)
    model = create_model(name)
    shape = [8 if v is None else int(v) for v in model.inputs[0].shape[1:]]
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    x[0, :3] = 0.0  # front padding: masked where the mask reaches the recurrent layers
    ref = model.predict(x, verbose=0)
    step = build_step_model(model)
    for seq, want in zip(x, ref):
        states = {s.name: np.zeros(s.shape, np.float32) for s in step.states}
        for frame in seq:
            if step.mask_value is not None and np.all(frame == step.mask_value):
                continue
            outs = step.model({step.frame_input: frame[None], **states})
            states = {s.name: np.asarray(outs[s.output_index]) for s in step.states}
        np.testing.assert_allclose(np.asarray(outs[0])[0], want, atol=1e-5)
    if name == "test_rnn":
        assert [s.kind for s in step.states] == ["conv_buffer", "lstm_h", "lstm_c", "lstm_h", "lstm_c"]
    if name == "test_tcn":  # a dilated second conv keeps 4 past inputs; padding is skipped at every depth
        assert [(s.name, s.shape) for s in step.states] == [
            ("buffer_0", (1, 2, 3)), ("buffer_1", (1, 4, 8)), ("pool_0_mean", (1, 8)), ("pool_0_count", (1, 1))]
        assert step.mask_value == 0.0


def test_bidirectional_refused_for_streaming() -> None:
    from converters.streaming import build_step_model
    from training.registry import create_model

    with pytest.raises(ConversionError, match="Bidirectional.*reads future frames.*--window"):
        build_step_model(create_model("test_rnn_bidir"))


def test_calibration_is_dict_keyed_and_includes_zero_state() -> None:
    import keras

    from converters.streaming import build_step_model
    from training.registry import create_model

    keras.utils.set_random_seed(0)
    step = build_step_model(create_model("test_rnn_gru"))
    seqs = np.random.default_rng(1).normal(size=(4, 5, 3)).astype(np.float32)
    seqs[1, 2, 0], seqs[2, 4, 2] = 9.0, -9.0  # the set's extremes sit in sequences the spread (0 and 3) misses
    samples = collect_samples(step, seqs, 10)
    names = {t.name.split(":")[0] for t in step.model.inputs}
    assert all(set(s) == names for s in samples)  # keyed by the step model's input names, not by position
    extremes = extreme_sequences(seqs, np.full(4, 5))
    assert {1, 2} <= set(extremes)
    assert len(samples) == 5 * len(set(extremes) | {0, 3})  # whole sequences of five steps: the extremes', then the spread
    frames = np.concatenate([s[step.frame_input] for s in samples])
    np.testing.assert_array_equal(frames.max(0), seqs.reshape(-1, 3).max(0))  # the int8 input range covers every value
    np.testing.assert_array_equal(frames.min(0), seqs.reshape(-1, 3).min(0))
    for first in samples[::5]:  # each sequence starts from the zero state
        assert all(not first[s.name].any() for s in step.states)
    assert all(samples[1][s.name].any() for s in step.states)  # later steps carry real float states


def test_nan_and_constant_calibration_refused_by_name() -> None:
    good = [{"frame": np.full((1, 2), float(i), np.float32), "state_0_h": np.full((1, 2), i / 3, np.float32)} for i in range(3)]
    validate_samples(good)
    bad = [dict(s) for s in good]
    bad[1]["state_0_h"] = np.array([[0.1, np.nan]], np.float32)
    with pytest.raises(ConversionError, match="'state_0_h' contains NaN or Inf"):
        validate_samples(bad)
    const = [{**s, "frame": np.ones((1, 2), np.float32)} for s in good]
    with pytest.raises(ConversionError, match="'frame' is constant"):
        validate_samples(const)


def test_cell_state_range_clipped_at_percentile() -> None:
    from converters.calibrate import clip_states
    from converters.streaming import StepState

    cell = StepState("state_0_c", 2, (1, 4), "lstm_c")
    samples = [{"state_0_c": np.full((1, 4), float(v), np.float32), "state_0_h": np.full((1, 4), float(v), np.float32)} for v in range(-100, 101)]
    clipped = clip_states(samples, [cell], 90.0)
    c = np.stack([s["state_0_c"] for s in clipped])
    assert c.max() == pytest.approx(90.0) and c.min() == pytest.approx(-90.0)
    assert np.stack([s["state_0_h"] for s in clipped]).max() == 100.0  # other inputs untouched


def test_lambda_layer_refused(tmp_path: Path) -> None:
    import keras

    from converters.convert import load_run
    from converters.streaming import check_safe
    from edge.errors import UnsafeModelError

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)))
    with pytest.raises(UnsafeModelError, match="'double' is a Lambda layer"):
        check_safe(model)
    model.save(tmp_path / "model.keras")
    (tmp_path / "model_card.json").write_text("{}")
    with pytest.raises(UnsafeModelError, match="refused to load.*Lambda"):
        load_run(tmp_path)


def test_select_tf_ops_refused() -> None:
    """An op without a TFLite builtin kernel is refused, never shipped as a Flex op."""
    import keras

    from converters.formats import get_format
    from converters.tflite import convert_graph

    inp = keras.Input((3, 3), batch_size=1)
    model = keras.Model(inp, keras.layers.Lambda(lambda t: keras.ops.linalg.det(t))(inp))
    with pytest.raises(ConversionError, match="SELECT_TF_OPS"):
        convert_graph(model, get_format("float32"), None, "det")


# --- conversions in worker processes --------------------------------------------------------------------


def test_lstm_stack_int8_streaming_bundle(runs: dict[str, Path], tmp_path: Path) -> None:
    f32 = _convert(runs["test_rnn"], tmp_path / "f32", "float32")
    i8 = _convert(runs["test_rnn"], tmp_path / "i8", "int8", recurrent_state="int8")
    b = read_bundle(i8)
    assert b.mode is Mode.STREAMING and b.preprocessing.pad_value == 0.0 and b.preprocessing.scale == 1.0
    assert [s.name for s in b.states] == ["buffer_0", "state_0_h", "state_0_c", "state_1_h", "state_1_c"]
    assert b.states[0].shape == (1, 4, 3)  # (kernel 3 - 1) * dilation 2 past inputs of 3 features
    assert {s.dtype for s in b.graphs[0].inputs} == {"int8"}  # --recurrent-state int8: all integer
    assert b.manifest.files[VERIFY_REPORT].sha256 == sha256_file(i8 / VERIFY_REPORT)
    v = _verify(i8)
    assert v["sequences"] == 6 and v["long_stream"]["steps"] >= 60
    differ = v["disagreements"]  # a count of the 6 sequences, with Keras's lead over its second class at each
    assert differ["count"] == round((1 - v["agreement"]) * 6) and len(differ["reference_leads"]) == differ["count"]
    assert set(v["long_stream"]["state_drift"]) == {s.name for s in b.states}
    worst = [w["rmse_over_scale"] for w in v["per_layer"][0]["worst"] if w["rmse_over_scale"] == w["rmse_over_scale"]]  # not NaN
    assert worst and worst == sorted(worst, reverse=True) and 0.0 < worst[0] < 100.0  # int8 rounds: some error, in steps
    assert v["prob_error"]["max"] < 0.2
    # the cell-state range was searched on validation/training sequences: the chosen percentile scored best
    note = b.manifest.calibration.states
    chosen, tried = _searched(note, r"LSTM cell-state range: ([\d.]+)th percentile")
    assert len(tried) == 7 and tried[chosen] == min(tried.values())
    # then the gate pre-activation range, on the chosen cell range's graph; the per-layer report quantizes as it
    assert v["per_layer"][0]["gate_range_factor"] == _check_gate_search(note)
    _check_narrowed_gates((i8 / "model.tflite").read_bytes(), sums=True)  # all integer: the gate sums are int8
    _check_search_gates(f32, i8)
    assert "range" not in read_bundle(f32).manifest.calibration.states  # float32: nothing to search
    vf = _verify(f32)
    assert vf["agreement"] == 1.0 and vf["frame_by_frame"]["max_abs_prob_error"] < 1e-5
    assert vf["disagreements"] == {"count": 0, "reference_leads": []}
    assert vf["long_stream"]["step_agreement"] == 1.0
    s = vf["long_stream"]  # same predictions -> same per-step accuracy against the labels of the sequences playing
    hits = s["step_accuracy_reference"] * s["steps"]  # a share of the steps, scored against the playing sequence's label
    assert hits == pytest.approx(round(hits)) and s["step_accuracy_converted"] == s["step_accuracy_reference"]


@pytest.mark.parametrize("name", ["test_rnn", "test_rnn_gru"])
def test_int8_keeps_the_recurrent_state_float(name: str, runs: dict[str, Path], tmp_path: Path) -> None:
    """By default an int8 bundle keeps each LSTM cell state (GRU state) and its element-wise update float32:
    the matrix products stay int8, the state keeps its resolution, and the long stream follows Keras."""
    options = ConvertOptions("int8", calibration_samples=400, stream_steps=60, verify_sequences=6)  # full ranges
    i8 = convert_run(runs[name], tmp_path / "i8", options)
    b = read_bundle(i8)
    dtypes = {s.name: s.dtype for s in b.graphs[0].inputs}
    if name == "test_rnn":
        assert dtypes == {"sample": "int8", "buffer_0": "int8", "state_0_h": "int8", "state_0_c": "float32",
                          "state_1_h": "int8", "state_1_c": "float32"}
        assert "LSTM cell-state range" not in b.manifest.calibration.states  # a float cell needs no int8 range
    else:
        assert dtypes == {"sample": "int8", "state_0_h": "float32"}
    factor = _check_gate_search(b.manifest.calibration.states)  # the gates' int8 range is searched all the same
    _check_narrowed_gates((i8 / "model.tflite").read_bytes(), sums=False)  # the sums run in the float update
    _check_float_update((i8 / "model.tflite").read_bytes())
    v = _verify(i8)
    assert v["agreement"] == 1.0 and v["long_stream"]["step_agreement"] >= 0.98
    assert v["per_layer"][0]["worst"]  # the per-layer report runs on the same island
    assert v["per_layer"][0]["gate_range_factor"] == factor  # ... and the gate range the bundle has
    with pytest.raises(ConversionError, match="must be one of float, int8"):
        check_options(ConvertOptions("int8", recurrent_state="int4"))
    with pytest.raises(ConversionError, match="--gate-range must be one of search, full; got 'half'"):
        check_options(ConvertOptions("int8", gate_range="half"))


def test_tcn_int8_keeps_the_running_mean_float(runs: dict[str, Path], tmp_path: Path) -> None:
    """Convolutions and classifier in int8; the running mean in float32, exact over a long stream; the samples,
    the first convolution and its buffer in float32 unless ``first_layer="int8"``.

    In int8 the increment (x - m) / n of the mean falls below one quantization
    step after a few dozen steps and the mean freezes: the 600-step sequence
    below changes its signal half-way, so a frozen mean would keep the first
    half's decision and probabilities.
    """
    import keras

    from training.registry import load_keras_model

    options = ConvertOptions("int8", calibration_samples=1000, stream_steps=60, verify_sequences=6)  # every train step: full ranges
    i8 = convert_run(runs["test_tcn"], tmp_path / "i8", options)
    b = read_bundle(i8)
    dtypes = {s.name: s.dtype for s in b.graphs[0].inputs}
    assert dtypes == {"sample": "float32", "buffer_0": "float32", "buffer_1": "int8", "pool_0_mean": "float32", "pool_0_count": "float32"}
    all_int8 = read_bundle(convert_run(runs["test_tcn"], tmp_path / "all", replace(options, first_layer="int8", verify=False)))
    assert {s.name: s.dtype for s in all_int8.graphs[0].inputs} == {**dtypes, "sample": "int8", "buffer_0": "int8"}
    v = _verify(i8)
    assert v["agreement"] == 1.0 and v["long_stream"]["step_agreement"] >= 0.97
    model = load_keras_model(runs["test_tcn"] / "model.keras")
    t = np.arange(300)[:, None]  # 300 steps like the "fast" class, then 300 like "flat" (the ranges calibrated on)
    x = np.concatenate([np.sin(1.2 * t + np.arange(3)), np.sin(0 * t + np.arange(3)) + 0.5]).astype(np.float32)
    normalized = b.preprocessing.normalize(x)
    pooled = keras.Model(model.inputs, model.get_layer("pool").output)
    session = StreamingSession(b)
    means = []
    assert len(x) == 600
    for i, sample in enumerate(x):
        raw = session.step_encoded(session.encode(sample))
        if i in (299, 599):
            want = model.predict(normalized[None, : i + 1], verbose=0)[0]
            assert np.abs(_scores(raw, session) - want).max() < 0.05
            mean = pooled.predict(normalized[None, : i + 1], verbose=0)[0]
            assert np.abs(session.state_values()["pool_0_mean"][0] - mean).max() < 0.02
            means.append(mean)
    assert np.abs(means[1] - means[0]).max() > 0.2  # the second half moved the mean: a frozen one would fail above
    with pytest.raises(ConversionError, match="int16x8 cannot keep the running mean float32"):
        _convert(runs["test_tcn"], tmp_path / "i16", "int16x8")
    assert session.state_values()["pool_0_count"][0, 0] == 600.0


def _scores(raw: np.ndarray, session: StreamingSession) -> np.ndarray:
    from edge import adapters

    return adapters.get_scores(raw, session.probs_spec.as_adapter_spec()).reshape(-1)


def test_gru_int16x8_and_window(runs: dict[str, Path], tmp_path: Path) -> None:
    b16 = read_bundle(_convert(runs["test_rnn_gru"], tmp_path / "i16", "int16x8"))
    assert {s.dtype for s in b16.graphs[0].inputs} == {"int16"}
    assert _verify(b16.path)["prob_error"]["max"] < 0.05
    win = read_bundle(_convert(runs["test_rnn_gru"], tmp_path / "win", "float32", mode="window"))
    assert win.mode is Mode.WINDOW and not win.states
    assert win.graphs[0].input("sample").shape[:2] == (1, 12)  # fixed T (longest sequence), batch 1
    assert _verify(win.path)["agreement"] == 1.0


def test_bidirectional_window_float_and_int8(runs: dict[str, Path], tmp_path: Path) -> None:
    b = read_bundle(_convert(runs["test_rnn_bidir"], tmp_path / "w", "float32"))  # auto: window
    assert b.mode is Mode.WINDOW and _verify(b.path)["prob_error"]["max"] < 1e-4
    with pytest.raises(ConversionError, match="cannot stream.*Bidirectional"):
        _convert(runs["test_rnn_bidir"], tmp_path / "s", "float32", mode="streaming")
    assert not (tmp_path / "s").exists()
    # the unrolled int8 window converts for some weights and keeps a float op for others
    # (it depends on the trained model): either a verified integer bundle or one clear line
    try:
        i8 = read_bundle(_convert(runs["test_rnn_bidir"], tmp_path / "i8", "int8"))
    except ConversionError as exc:
        assert str(exc).startswith("test_rnn_bidir (int8, window): ") and "\n" not in str(exc)
        assert "no integer kernel" in str(exc) or "does not load" in str(exc)
        assert not (tmp_path / "i8").exists()
    else:
        assert i8.mode is Mode.WINDOW and {s.dtype for s in i8.graphs[0].inputs} == {"int8"}
        assert _verify(i8.path)["prob_error"]["max"] < 0.2


def test_image_cnn_single_frame_int8_and_depthwise_int16x8(runs: dict[str, Path], tmp_path: Path) -> None:
    i8 = read_bundle(_convert(runs["test_cnn"], tmp_path / "i8", "uint8-io"))
    assert i8.mode is Mode.SINGLE and not i8.states
    assert {s.dtype for s in i8.graphs[0].inputs} == {"uint8"}
    session = StreamingSession(i8)
    assert session.mode is Mode.SINGLE
    result = session.step(np.zeros((16, 16, 3), np.uint8))
    assert result.probabilities.shape == (3,)
    # depthwise convolutions convert and run with int16 activations in this TFLite version
    i16 = _convert(runs["test_cnn"], tmp_path / "i16", "int16x8")
    assert _verify(i16)["prob_error"]["max"] < 0.05


def test_mixed_bundle_chains_int8_cnn_into_float_head(tiny_run: Path, tmp_path: Path) -> None:
    mixed = read_bundle(_convert(tiny_run, tmp_path / "m", "mixed"))
    assert [g.file for g in mixed.graphs] == ["front.tflite", "head.tflite"]
    assert mixed.graphs[0].output("features").dtype == "int8"
    assert mixed.graphs[1].input("features").dtype == "float32"
    assert [s.name for s in mixed.states] == ["state_0_h", "state_0_c"]
    v = _verify(mixed.path)
    assert v["prob_error"]["max"] < 0.05 and v["long_stream"]["steps"] >= 60
    assert v["per_layer"][0]["graph"].endswith("_front")
    # one golden pair per graph, the head's fed by the front end's golden output
    from edge.inspect import self_test

    assert self_test(mixed).startswith("passed (2 graphs")
    with np.load(mixed.path / "golden.npz") as golden:
        assert {"g0_in_frame", "g0_out_output_0", "g1_in_features", "g1_in_state_0_c", "g1_out_output_0"} <= set(golden.files)
        scale, zero = mixed.graphs[0].output("features").scale, mixed.graphs[0].output("features").zero_point
        front_out = (golden["g0_out_output_0"].astype(np.float32) - zero) * scale
        np.testing.assert_allclose(golden["g1_in_features"], front_out.reshape(golden["g1_in_features"].shape), rtol=1e-6)


def test_mixed_refused_without_cnn_front_end(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="no per-step front end"):
        _convert(runs["test_rnn"], tmp_path / "m", "mixed")


def test_cli_convert_one_line_error_and_summary(runs: dict[str, Path], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "edge", "convert", str(runs["test_rnn_bidir"]), "--precision", "float32", "--streaming", "--out", str(tmp_path / "x")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot stream" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    cmd = [sys.executable, "-m", "edge", "convert", str(runs["test_rnn_gru"]), "--precision", "dynamic", "--verify-sequences", "3",
           "--stream-steps", "30", "--out", str(tmp_path / "ok")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verify    3 test sequences (streaming)" in proc.stdout and "stream    " in proc.stdout


def test_interpreter_errors_become_one_readable_line() -> None:
    from converters.convert import _first_line

    raw = "model could not be loaded: " + "failed to create XNNPACK runtime" * 4 + "Node number 991 (TfLiteXNNPackDelegate) failed to prepare.\nmore"
    assert _first_line(raw) == "model could not be loaded: failed to create XNNPACK runtime; node number 991 (TfLiteXNNPackDelegate) failed to prepare."


def test_verify_warnings_count_exactly_two_points_as_within() -> None:
    """Accuracies are ratios of counts, Keras reports them in float32: 0.74 vs 0.76 is within 2 points."""
    from converters.verify import _warnings
    from edge.bundle.verify_report import ProbError, VerifyReport

    def report(keras: float, tflite: float, agreement: float) -> VerifyReport:
        return VerifyReport("int8", "streaming", 50, agreement, keras, tflite, ProbError(0.1, 0.01), False, 10)

    from dataclasses import replace

    assert _warnings(replace(report(0.74, 0.74, 0.96), disagreements={"count": 2, "reference_leads": [0.9, 0.01]})) == [
        "top-1 agreement with Keras 0.960 is below 0.97 (2 differ: Keras led by 0.900, 0.010)"]
    assert _warnings(report(float(np.float32(0.74)), 0.76, 0.97)) == []
    assert _warnings(report(float(np.float32(0.36)), 0.38, 0.97)) == []
    assert len(_warnings(report(0.74, 0.78, 0.96))) == 2


def test_a_summary_with_warnings_points_to_the_precision_search() -> None:
    """A bundle that misses a target says what to try next; one that holds them, or a float32 one, does not."""
    from dataclasses import replace

    from converters.verify import _warnings, summary
    from edge.bundle.verify_report import ProbError, VerifyReport

    missed = VerifyReport("int8", "streaming", 50, 0.96, 0.74, 0.74, ProbError(0.1, 0.01), False, 10)
    missed = replace(missed, warnings=tuple(_warnings(missed)))
    lines = summary(missed).splitlines()
    assert lines[-2].startswith("WARNING   top-1 agreement with Keras 0.960")
    assert lines[-1].startswith("hint      `convert RUN --precision auto`")
    held = VerifyReport("int8", "streaming", 50, 1.0, 0.74, 0.74, ProbError(0.1, 0.01), False, 10)
    assert "hint" not in summary(held)
    assert "hint" not in summary(replace(missed, precision="float32"))
