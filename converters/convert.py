"""Convert a run directory to a bundle (this module runs inside the worker process).

``convert_in_process`` does the TensorFlow work; callers should use
:func:`converters.isolate.convert_run`, which runs it in a subprocess and turns
a crash into a :class:`~edge.errors.ConversionError`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.bundle import tensor_specs, write_manifest
from converters.calibrate import collect_samples, representative_dataset
from converters.formats import Format, get_format
from converters.streaming import StepModel, build_step_model
from edge.errors import ConversionError, DataError
from training.versions import library_versions


@dataclass(frozen=True)
class ConvertOptions:
    """What to convert and how."""

    precision: str = "int8"
    calibration_samples: int = 3200
    seed: int = 0


def load_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load ``model.keras`` with safe_mode on, and the model card."""
    import keras

    card_path = run_dir / "model_card.json"
    model_path = run_dir / "model.keras"
    if not card_path.is_file() or not model_path.is_file():
        raise DataError(f"{run_dir}: not a run directory (needs model.keras and model_card.json)")
    card = json.loads(card_path.read_text())
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except ValueError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ConversionError(f"{model_path}: refused to load: the model contains a Lambda layer (arbitrary code)") from None
        raise ConversionError(f"{model_path}: cannot load ({str(exc).splitlines()[0]})") from None
    return model, card


def tflite_convert(saved_model_dir: Path, fmt: Format, samples: list[dict[str, np.ndarray]] | None) -> bytes:
    """Run the TFLite converter with the format's settings; builtin ops only."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if fmt.optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt.float16:
        conv.target_spec.supported_types = [tf.float16]
    if fmt.calibrate:
        if not samples:
            raise ConversionError(f"{fmt.name} needs calibration samples")
        conv.representative_dataset = representative_dataset(samples)
    ops = {
        "builtins": [tf.lite.OpsSet.TFLITE_BUILTINS],
        "int8": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8],
        "int16x8": [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8],
    }[fmt.ops]
    conv.target_spec.supported_ops = ops
    if fmt.io_type != "float32":
        io = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}[fmt.io_type]
        conv.inference_input_type = io
        conv.inference_output_type = io
    try:
        return conv.convert()
    except Exception as exc:  # the converter raises many types; report the first line
        first = str(exc).strip().splitlines()
        hint = "; an op would need SELECT_TF_OPS, which bundles do not allow" if "Select TF" in str(exc) or "flex" in str(exc).lower() else ""
        raise ConversionError(f"TFLite conversion to {fmt.name} failed: {first[0] if first else type(exc).__name__}{hint}") from None


def _roles(step: StepModel) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    in_roles = {step.frame_input: "frame", **{s.name: "state" for s in step.states}}
    out_roles = {"output_0": "probabilities", **{f"output_{s.output_index}": "state" for s in step.states}}
    states = [
        {"name": s.name, "input": s.name, "output": f"output_{s.output_index}", "shape": [1, s.units], "initial": "zeros"}
        for s in step.states
    ]
    return in_roles, out_roles, states


def convert_in_process(run_dir: Path, out_dir: Path, options: ConvertOptions) -> Path:
    """Build the step model, calibrate, convert and write a complete bundle into ``out_dir``."""
    import keras

    from edge.interpreter import make_interpreter
    from edge.bundle import sha256_file
    from training.data import load_dataset
    from training.train import to_float

    fmt = get_format(options.precision)
    keras.utils.set_random_seed(options.seed)
    model, card = load_run(run_dir)
    step = build_step_model(model)
    dataset = load_dataset(card["dataset"])
    pre = card["preprocessing"]
    samples = None
    if fmt.calibrate:
        samples = collect_samples(step, to_float(dataset.train.x, pre), options.calibration_samples)
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-sm-") as tmp:
        saved = Path(tmp) / "saved_model"
        step.model.export(str(saved), format="tf_saved_model", verbose=False)
        flatbuffer = tflite_convert(saved, fmt, samples)
    model_file = out_dir / "model.tflite"
    model_file.write_bytes(flatbuffer)

    interpreter = make_interpreter(model_file)  # first load happens here, in the worker
    runner = interpreter.get_signature_runner("serving_default")
    in_roles, out_roles, states = _roles(step)
    inputs = tensor_specs(runner.get_input_details(), in_roles)
    outputs = tensor_specs(runner.get_output_details(), out_roles)
    _write_golden(out_dir, interpreter, inputs, to_float(dataset.test.x[0], pre))
    write_manifest(out_dir, {
        "name": card["model"],
        "precision": fmt.name,
        "mode": "streaming",
        "graphs": [{"file": "model.tflite", "signature": "serving_default", "inputs": inputs, "outputs": outputs}],
        "states": states,
        "labels": card["labels"],
        "preprocessing": {**pre, "size": list(card["input"]["shape"][1:3])} if "size" not in pre else pre,
        "window": {"frames": int(card["input"]["shape"][0]), "stride": 1},
        "source": {"run_dir": str(run_dir), "model_sha256": sha256_file(run_dir / "model.keras"), "dataset": card["dataset"]},
        "calibration": {"samples": len(samples) if samples else 0, "states": "float model over train sequences, zero initial state included"},
        "versions": library_versions(),
    })
    return out_dir


def _write_golden(out_dir: Path, interpreter: Any, inputs: list[dict[str, Any]], clip: np.ndarray) -> None:
    """A golden input/output pair (first frame, zero state) for an on-board self-test."""
    from edge import adapters

    runner = interpreter.get_signature_runner("serving_default")
    feeds = {}
    for spec in inputs:
        value = clip[0][None] if spec["role"] == "frame" else np.zeros(spec["shape"], np.float32)
        feeds[spec["name"]] = adapters.quantize(value, {"dtype": spec["dtype"], "quantization": spec["quantization"]})
    outs = runner(**feeds)
    np.savez(out_dir / "golden.npz", **{f"in_{k}": v for k, v in feeds.items()}, **{f"out_{k}": v for k, v in outs.items()})
