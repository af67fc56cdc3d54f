"""Keras graph -> TFLite flatbuffer with one format's settings, builtin ops only.

``TFLiteConverter.from_keras_model`` is unreliable with Keras 3, so graphs are
exported as a SavedModel first. After conversion the op list is checked: a
bundle never contains Flex (SELECT_TF_OPS) or custom ops, and an integer-only
format contains no float compute op.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converters.calibrate import representative_dataset
from converters.formats import Format
from edge.compat import NEEDS_CUSTOM_OPS, NEEDS_FLEX_OPS, converter_error_codes, keras_input_name
from edge.errors import ConversionError, UnquantizedOpError
from edge.flatbuffer import check_model_bytes

# ops that only move or reinterpret data; allowed to stay float in integer graphs
_FLOAT_OK = {"QUANTIZE", "DEQUANTIZE"}
_FLOAT_TYPES = {0, 1, 10, 18}  # TensorType FLOAT32, FLOAT16, FLOAT64, BFLOAT16
# On some graphs (an unrolled int8 bidirectional window) the quantizer now and then leaves one of these
# float, though it has integer kernels; another run quantizes it (converters.isolate retries).
_INT8_KERNEL_OPS = ("SPLIT", "SPLIT_V", "CONCATENATION", "RESHAPE", "STRIDED_SLICE", "SLICE", "PACK", "UNPACK", "TRANSPOSE")


def export_saved_model(model: Any, directory: Path) -> Path:
    """Export a Keras model's inference function as a SavedModel with fully static shapes.

    Keras exports a polymorphic batch dimension by default, which adds
    SHAPE/STRIDED_SLICE/PACK ops to every reshape (and SPACE_TO_BATCH_ND around
    dilated convolutions) — dynamic shapes the Edge TPU cannot map. Our graphs
    are batch 1, so the signature says so.
    """
    import tensorflow as tf

    names = [keras_input_name(t) for t in model.inputs]
    specs = [tf.TensorSpec(tuple(t.shape), t.dtype, name=name) for name, t in zip(names, model.inputs)]
    signature = [dict(zip(names, specs))] if isinstance(model.input, dict) else specs
    model.export(str(directory), format="tf_saved_model", verbose=False, input_signature=signature)
    return directory


def make_converter(saved_model_dir: Path, fmt: Format, samples: list[dict[str, np.ndarray]] | None) -> Any:
    """A configured ``TFLiteConverter`` for ``fmt`` (calibration samples keyed by input name)."""
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
    conv.target_spec.supported_ops = {
        "builtins": [tf.lite.OpsSet.TFLITE_BUILTINS],
        "int8": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8],
        "int16x8": [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8],
    }[fmt.ops]
    if fmt.io_type != "float32":
        io = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}[fmt.io_type]
        conv.inference_input_type = io
        conv.inference_output_type = io
    return conv


def convert_graph(model: Any, fmt: Format, samples: list[dict[str, np.ndarray]] | None, what: str) -> bytes:
    """Export ``model`` and convert it; ``what`` names it in errors (model and precision)."""
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-sm-") as tmp:
        saved = export_saved_model(model, Path(tmp) / "saved_model")
        conv = make_converter(saved, fmt, samples)
        try:
            flatbuffer = conv.convert()
        except Exception as exc:  # the converter raises many types; report the first line
            text = str(exc)
            first = next((l.strip() for l in text.splitlines() if l.strip()), type(exc).__name__)
            if converter_error_codes(exc) & {NEEDS_FLEX_OPS, NEEDS_CUSTOM_OPS}:
                first = "an op would need SELECT_TF_OPS (TensorFlow ops inside TFLite), which bundles do not allow: " + first
            raise ConversionError(f"{what}: TFLite conversion to {fmt.name} failed: {first[:400]}") from None
    check_ops(flatbuffer, fmt, what)
    return flatbuffer


def check_ops(flatbuffer: bytes, fmt: Format, what: str) -> None:
    """Refuse Flex/custom ops always, and float compute ops in integer-only formats (op list: :mod:`edge.flatbuffer`).

    Raises:
        UnquantizedOpError: an op with integer kernels was left float (the quantizer's miss: worth a retry).
        ConversionError: a Flex/custom op, or a float op with no integer kernel.
    """
    for op in check_model_bytes(flatbuffer, what).ops:
        if op.custom:
            raise ConversionError(f"{what}: the {fmt.name} graph contains {op.name}, which needs SELECT_TF_OPS or a custom op; bundles allow builtin ops only")
        if fmt.integer_only and op.name not in _FLOAT_OK:
            floats = [t.name for t in op.outputs if t.type in _FLOAT_TYPES]
            if floats:
                error = UnquantizedOpError if op.name in _INT8_KERNEL_OPS else ConversionError
                raise error(f"{what}: {fmt.name} is integer-only but op {op.name} has no integer kernel here (float tensor {floats[0]!r}); use float32/dynamic, or --streaming for recurrent models")


def tie_state_quantization(flatbuffer: bytes, pairs: list[tuple[str, str]]) -> bytes:
    """Give each state input the quantization of the state output that feeds it.

    The converter calibrates a state's input and output tensors separately, so
    they get slightly different scales: every step the runtime would re-round
    the state (and clip it to the narrower range), and those errors add up over
    a long stream. Kernels read scale and zero point from the tensor when the
    interpreter prepares, so setting the input's to the output's makes the
    consuming ops rescale from the output's grid: feedback becomes an exact
    byte copy. ``pairs`` are (signature input name, signature output name).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    sig = model.signatureDefs[0]
    graph = model.subgraphs[sig.subgraphIndex]
    ins = {t.name.decode() if isinstance(t.name, bytes) else t.name: t.tensorIndex for t in sig.inputs}
    outs = {t.name.decode() if isinstance(t.name, bytes) else t.name: t.tensorIndex for t in sig.outputs}
    changed = False
    for in_name, out_name in pairs:
        src, dst = graph.tensors[outs[out_name]], graph.tensors[ins[in_name]]
        q_src, q_dst = src.quantization, dst.quantization
        if src.type != dst.type or q_src is None or q_dst is None or q_src.scale is None or q_dst.scale is None:
            continue  # float states carry no quantization
        if len(q_src.scale) != 1 or len(q_dst.scale) != 1:
            continue
        q_dst.scale, q_dst.zeroPoint = list(q_src.scale), list(q_src.zeroPoint)
        q_dst.min, q_dst.max = q_src.min, q_src.max
        changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else flatbuffer
