"""Prove a converted bundle right: run it the way the runtime does and compare with Keras.

The bundle is run through :class:`edge.streaming.StreamingSession` step by step
over whole held-out sequences with states fed back, and compared with the Keras
model on the dataset's test split. A long stream (test sequences concatenated,
no resets) measures per-step agreement and state drift against the float step
model. Integer graphs get a per-layer error report from TFLite's
``QuantizationDebugger`` fed with the same name-keyed calibration samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converters.calibrate import is_masked
from converters.streaming import FloatIsland, StepModel
from edge import adapters
from edge.compat import debugger_interpreter, ops_details
from edge.bundle import Mode, read_bundle
from edge.bundle.verify_report import RATIO_TOLERANCE, FrameByFrame, LongStream, ProbError, StateDrift, VerifyReport
from edge.metrics import describe_disagreements, disagreements
from edge.streaming import StreamingSession

DEBUG_SAMPLES = 100
WORST_LAYERS = 5


def _encoder(session: StreamingSession, raw_is_frames: bool):
    """Raw test item -> encoded model input, through the runtime's own preprocessing for frames."""
    spec = session.frame_spec.as_adapter_spec()

    def encode(raw: np.ndarray, value: np.ndarray) -> np.ndarray:
        if raw_is_frames:
            return session.encode(raw)
        return adapters.quantize(value, spec)

    return encode


def _stream(session: StreamingSession, encode, raw_seq: np.ndarray, seq: np.ndarray, mask: float | None) -> np.ndarray | None:
    """Feed one whole sequence (no reset here); return the last raw probabilities."""
    out = None
    for raw, value in zip(raw_seq, seq):
        if is_masked(value, mask):
            continue
        out = session.step_encoded(encode(raw, value))
    return out


def _keras_step_fn(step: StepModel):
    import tensorflow as tf

    fn = tf.function(lambda feeds: step.model(feeds, training=False), reduce_retracing=True)

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(v) for v in fn(feeds)]

    return run


def verify_bundle(
    bundle_dir: Path,
    model: Any,
    ref_step: StepModel,
    dataset: Any,
    verify_sequences: int,
    stream_steps: int,
    debug: list[LayerDebug],
) -> dict[str, Any]:
    """Everything ``verify.json`` holds; see the module docstring.

    Args:
        bundle_dir: the finished (not yet renamed) bundle.
        model: the trained Keras model (sequence level reference).
        ref_step: the float Keras step model (or window/single graph) for step-level references.
        dataset: the run's dataset; its test split is used.
        verify_sequences: limit on test sequences (0: all).
        stream_steps: length of the long no-reset stream.
        debug: each integer graph as converted, for the per-layer report.
    """
    bundle = read_bundle(bundle_dir)
    session = StreamingSession(bundle)
    n = len(dataset.test.y) if verify_sequences <= 0 else min(verify_sequences, len(dataset.test.y))
    raw_x, y = dataset.test.x[:n], np.asarray(dataset.test.y[:n])
    x = bundle.preprocessing.normalize(raw_x)  # the bundle's own: what the runtime applies
    raw_is_frames = raw_x.dtype == np.uint8 and ref_step.input_kind in ("clip", "image")
    encode = _encoder(session, raw_is_frames)
    probs_spec = bundle.graphs[-1].output("probabilities").as_adapter_spec()
    mask = ref_step.mask_value if session.mode is Mode.STREAMING else None

    keras_probs = np.asarray(model.predict(x, batch_size=32, verbose=0), np.float32)
    lite_probs = []
    for i in range(n):
        session.reset()
        if session.mode is Mode.STREAMING:
            raw_out = _stream(session, encode, raw_x[i], x[i], mask)
        elif session.mode is Mode.WINDOW:  # the session's window holds exactly the clip after T frames
            frames = np.stack([encode(r, v) for r, v in zip(raw_x[i], x[i])])[None]
            raw_out = session.runners[0].run({session.frame_spec.name: frames})[session.probs_spec.name]
        else:
            raw_out = session.step_encoded(encode(raw_x[i], x[i]))
        lite_probs.append(adapters.get_scores(raw_out, probs_spec))
    lp = np.stack(lite_probs)
    lite_pred, keras_pred = lp.argmax(1), keras_probs.argmax(1)
    err = np.abs(lp - keras_probs)
    num_classes = keras_probs.shape[1]
    streaming = session.mode is Mode.STREAMING
    report = VerifyReport(
        precision=bundle.precision,
        mode=session.mode.value,
        sequences=int(n),
        agreement=float(np.mean(lite_pred == keras_pred)),
        disagreements=disagreements(lp, keras_probs),
        accuracy_keras=float(np.mean(keras_pred == y)),
        accuracy_tflite=float(np.mean(lite_pred == y)),
        prob_error=ProbError(float(err.max()), float(err.mean())),
        degenerate=bool(num_classes > 1 and len(np.unique(lite_pred)) == 1),
        predicted_classes=int(len(np.unique(lite_pred))),
        frame_by_frame=_frame_by_frame(session, encode, ref_step, raw_x[:5], x[:5], probs_spec) if streaming else None,
        long_stream=_long_stream(session, encode, ref_step, raw_x, x, y, probs_spec, stream_steps) if streaming else None,
        per_layer=[_layer_report(d, bundle.delegate) for d in debug],
    )
    return replace(report, warnings=tuple(_warnings(report)))


def _steps_together(session, encode, run, ref_step: StepModel, probs_spec, raw_seq, seq, states: dict[str, np.ndarray]):
    """Step the bundle and the Keras step model over one sequence's real steps.

    Yields (bundle probabilities, Keras outputs) per step; ``states`` holds the
    Keras recurrent states and is updated in place (the session owns its own).
    """
    for raw, value in zip(raw_seq, seq):
        if is_masked(value, ref_step.mask_value):
            continue
        lite = adapters.get_scores(session.step_encoded(encode(raw, value)), probs_spec)
        outs = run({ref_step.frame_input: value[None].astype(np.float32), **states})
        states.update({s.name: outs[s.output_index] for s in ref_step.states})
        yield lite, outs


def _frame_by_frame(session, encode, ref_step: StepModel, raw_x, x, probs_spec) -> FrameByFrame:
    """Bundle vs Keras step model after every frame of a few whole sequences."""
    run = _keras_step_fn(ref_step)
    worst, steps = 0.0, 0
    for raw_seq, seq in zip(raw_x, x):
        session.reset()
        states = {s.name: np.zeros(s.shape, np.float32) for s in ref_step.states}
        for lite, outs in _steps_together(session, encode, run, ref_step, probs_spec, raw_seq, seq, states):
            worst = max(worst, float(np.abs(lite - outs[0].reshape(-1)).max()))
            steps += 1
    return FrameByFrame(steps, worst)


def _long_stream(session, encode, ref_step: StepModel, raw_x, x, y, probs_spec, min_steps: int) -> LongStream:
    """Concatenated test sequences, no resets: per-step agreement and state drift vs float.

    Each step is also scored against the label of the sequence playing, for the
    float reference and the converted bundle alike (a model trained only from
    a zero state can do far worse here than on single sequences).
    """
    run = _keras_step_fn(ref_step)
    session.reset()
    states = {s.name: np.zeros(s.shape, np.float32) for s in ref_step.states}
    agree, perr, hit_ref, hit_lite = [], [], [], []
    drift: dict[str, list[float]] = {s.name: [] for s in ref_step.states}
    scale = {s.name: 0.0 for s in ref_step.states}
    i = 0
    while len(agree) < min_steps:
        raw_seq, seq, label = raw_x[i % len(x)], x[i % len(x)], int(y[i % len(x)])
        i += 1
        for lite, outs in _steps_together(session, encode, run, ref_step, probs_spec, raw_seq, seq, states):
            ref = outs[0].reshape(-1)
            agree.append(int(lite.argmax()) == int(ref.argmax()))
            hit_ref.append(int(ref.argmax()) == label)
            hit_lite.append(int(lite.argmax()) == label)
            perr.append(float(np.abs(lite - ref).max()))
            lite_states = session.state_values()
            for name in drift:
                drift[name].append(float(np.abs(lite_states[name] - states[name]).mean()))
                scale[name] = max(scale[name], float(np.abs(states[name]).max()))
    steps = len(agree)
    tenth = max(1, steps // 10)
    return LongStream(
        steps=steps,
        sequences_concatenated=i,
        reference="float Keras step model (same graph as the float32 bundle)",
        step_agreement=float(np.mean(agree)),
        step_accuracy_reference=float(np.mean(hit_ref)),
        step_accuracy_converted=float(np.mean(hit_lite)),
        prob_error=ProbError(float(np.max(perr)), float(np.mean(perr))),
        state_drift={
            name: StateDrift(float(np.mean(v[:tenth])), float(np.mean(v[-tenth:])), float(np.max(v)), scale[name])
            for name, v in drift.items()
        },
    )


@dataclass(frozen=True)
class LayerDebug:
    """One integer graph as the converter made it: its step model and format, the calibration samples it was
    converted with (cell states clipped as searched), its float island, and the gate range factor applied after."""

    step: StepModel
    fmt: Any
    samples: list[dict[str, np.ndarray]]
    island: FloatIsland
    gate_factor: float = 1.0


def _layer_report(d: LayerDebug, delegate: str = "xnnpack") -> dict[str, Any]:
    """Worst layers of an integer graph by RMSE in units of the tensor's quantization step.

    The debugger quantizes the graph afresh from the same samples; the gate
    range the converter narrowed (:func:`converters.tflite.narrow_gate_ranges`)
    is narrowed the same way in the debug model, so its errors are the bundle's.
    ``delegate`` is the bundle's CPU path: where XNNPACK refused the graph, the
    debug model runs on the reference kernels too.
    """
    import tensorflow as tf

    from converters.tflite import calibrate_only, export_saved_model, float_island_nodes, make_converter, narrow_gate_ranges

    step, fmt, samples, island = d.step, d.fmt, d.samples, d.island

    subset = samples[:: max(1, len(samples) // DEBUG_SAMPLES)][:DEBUG_SAMPLES]
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-dbg-") as tmp:
        saved = export_saved_model(step.model, Path(tmp) / "saved_model")
        options = None
        if island:  # the float updates stay float, as in the bundle
            deny = float_island_nodes(calibrate_only(saved, fmt, subset), island)
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny)
        conv = make_converter(saved, fmt, subset)
        order: list[str] = []

        def positional():  # the debugger feeds inputs by position: map names -> its input order
            for s in subset:
                yield [s[k] for k in order]

        debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=positional, debug_options=options)
        if delegate == "none" or d.gate_factor != 1.0:  # the debugger builds its interpreter with the default delegates
            resolver = tf.lite.experimental.OpResolverType
            debugger_interpreter(debugger, tf.lite.Interpreter(
                model_content=narrow_gate_ranges(debugger.quant_model, d.gate_factor),
                experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES if delegate == "none" else resolver.AUTO))
        quant = debugger_interpreter(debugger)  # no public accessor for the debug model's inputs and scales
        order.extend(_match_input(d["name"], list(subset[0])) for d in quant.get_input_details())
        debugger.run()
    scales = _verified_scales(quant)
    layers = []
    for name, metrics in debugger.layer_statistics.items():
        scale = scales.get(name, 0.0)
        rmse = math.sqrt(float(metrics["mean_squared_error"]))
        layers.append({
            "tensor": _short_name(name),
            "rmse": rmse,
            "rmse_over_scale": rmse / scale if scale else math.nan,
            "max_abs_error": float(metrics["max_abs_error"]),
        })
    layers.sort(key=lambda d: -1.0 if math.isnan(d["rmse_over_scale"]) else d["rmse_over_scale"], reverse=True)
    return {"graph": step.model.name, "samples": len(subset), "layers": len(layers), "gate_range_factor": d.gate_factor,
            "worst": layers[:WORST_LAYERS]}


def _verified_scales(quant: Any) -> dict[str, float]:
    """NumericVerify output name -> quantization scale of the integer tensor it checks."""
    tensors = {t["index"]: t for t in quant.get_tensor_details()}
    out = {}
    for op in ops_details(quant):
        if op["op_name"] in ("NUMERIC_VERIFY", "NumericVerify") and op["outputs"].size:
            q = tensors[op["inputs"][0]]
            scales = q.get("quantization_parameters", {}).get("scales", [])
            out[tensors[op["outputs"][0]]["name"]] = float(scales[0]) if len(scales) else float(q["quantization"][0])
    return out


def _short_name(name: str) -> str:
    """``NumericVerify/model/frame_encoder/conv_0/BiasAdd;...:33`` -> ``frame_encoder/conv_0/BiasAdd``."""
    first = name.removeprefix("NumericVerify/").split(";")[0].rsplit(":", 1)[0]
    parts = [p.removesuffix("_1") for p in first.split("/")]
    return "/".join(parts[1:] if len(parts) > 1 else parts)


def _match_input(detail_name: str, keys: list[str]) -> str:
    """Signature input ``serving_default_state_0_h:0`` -> sample key ``state_0_h``."""
    base = detail_name.split(":")[0]
    for key in sorted(keys, key=len, reverse=True):
        if base == key or base.endswith("_" + key):
            return key
    raise ValueError(f"debug model input {detail_name!r} matches none of {keys}")


def _warnings(report: VerifyReport) -> list[str]:
    out = []
    if report.degenerate:
        out.append("degenerate output: the converted model predicts one class for every test sequence")
    if report.agreement < 0.97 - RATIO_TOLERANCE:
        differ = f" ({describe_disagreements(report.disagreements, 'Keras')})" if report.disagreements else ""
        out.append(f"top-1 agreement with Keras {report.agreement:.3f} is below 0.97{differ}")
    if abs(report.accuracy_tflite - report.accuracy_keras) > 0.02 + RATIO_TOLERANCE:  # exactly 2 points is within
        out.append(f"accuracy {report.accuracy_tflite:.3f} differs from Keras {report.accuracy_keras:.3f} by more than 2 points")
    stream = report.long_stream
    if stream and stream.step_agreement < 0.98:
        out.append(f"long-stream step agreement {stream.step_agreement:.3f} is below 0.98")
    return out


def require_targets(report: VerifyReport, bundle: Path) -> None:
    """``--strict``: raise when the bundle misses the converter's own targets (any verify warning).

    Raises:
        ConversionError: naming the first missed target; the bundle stays where it was written.
    """
    from edge.errors import ConversionError

    if report.warnings:
        more = f" (+{len(report.warnings) - 1} more)" if len(report.warnings) > 1 else ""
        raise ConversionError(f"--strict: {report.precision} misses the converter's targets: {report.warnings[0]}{more}; "
                              f"the bundle was written to {bundle}")


def summary(report: VerifyReport) -> str:
    """A few printable lines of a verify report."""
    lines = [
        f"verify    {report.sequences} test sequences ({report.mode}): agreement {report.agreement:.3f}, "
        f"accuracy keras {report.accuracy_keras:.3f} / tflite {report.accuracy_tflite:.3f}, "
        f"prob error max {report.prob_error.max:.4f} mean {report.prob_error.mean:.5f}"
    ]
    if report.frame_by_frame is not None:
        f = report.frame_by_frame
        lines.append(f"frames    {f.steps} steps vs Keras step model: max abs prob error {f.max_abs_prob_error:.2e}")
    if report.long_stream is not None:
        s = report.long_stream
        lines.append(f"stream    {s.steps} steps, no reset: step agreement {s.step_agreement:.3f}, per-step accuracy "
                     f"float {s.step_accuracy_reference:.3f} / converted {s.step_accuracy_converted:.3f}, "
                     f"worst state drift (last 10%) {s.worst_drift:.4f}")
    for layer_rep in report.per_layer:
        worst = ", ".join(f"{w['tensor']} ({w['rmse_over_scale']:.2f})" for w in layer_rep["worst"][:3])
        factor = layer_rep.get("gate_range_factor", 1.0)
        narrowed = f" (gate range x{factor:g}, tails clipped)" if factor != 1.0 else ""
        lines.append(f"layers    {layer_rep['graph']}{narrowed}: worst RMSE/scale: {worst}")
    lines += [f"WARNING   {w}" for w in report.warnings]
    if report.warnings and report.precision != "float32":
        lines.append("hint      `convert RUN --precision auto` converts every precision, verifies each like this and keeps "
                     "the fastest within the accuracy budget (docs/converting.md, \"Choosing the precision\")")
    return "\n".join(lines)
