"""Keras graph -> TFLite flatbuffer with one format's settings, builtin ops only.

``TFLiteConverter.from_keras_model`` is unreliable with Keras 3, so graphs are
exported as a SavedModel first. After conversion the op list is checked: a
bundle never contains Flex (SELECT_TF_OPS) or custom ops, and an integer-only
format contains no float compute op — but for a float island
(:class:`converters.streaming.FloatIsland`): the running-mean update of a
pooling layer (``pool_k_step``), always, and the element-wise update of a
recurrent layer (``rnn_k_update``) when asked, which stay float32 with their
states (:func:`convert_graph`'s ``island``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converters.calibrate import representative_dataset
from converters.formats import Format
from converters.streaming import FloatIsland
from edge.compat import NEEDS_CUSTOM_OPS, NEEDS_FLEX_OPS, converter_error_codes, keras_input_name
from edge.errors import ConversionError, UnquantizedOpError
from edge.flatbuffer import builtin_op_name, check_model_bytes

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


def convert_graph(
    model: Any, fmt: Format, samples: list[dict[str, np.ndarray]] | None, what: str,
    island: FloatIsland = FloatIsland(),
) -> bytes:
    """Export ``model`` and convert it; ``what`` names it in errors (model and precision).

    ``island`` names the states that stay float32 in an int8 graph, with the
    layers that update them (the running mean; the recurrent updates if asked).
    """
    allowed: set[str] = set()
    if island and fmt.ops == "int16x8":
        raise ConversionError(
            f"{what}: {fmt.name} cannot keep the running mean float32 (TFLite's 16x8 quantizer has no DIV "
            "and excludes no op); use int8 (the mean stays float32 there), dynamic or float16"
        )
    with tempfile.TemporaryDirectory(prefix="hybrid-edge-sm-") as tmp:
        saved = export_saved_model(model, Path(tmp) / "saved_model")
        conv = make_converter(saved, fmt, samples)
        try:
            if island and fmt.ops == "int8":
                flatbuffer, allowed = _convert_keeping_float(conv, island)
            else:
                flatbuffer = conv.convert()
        except Exception as exc:  # the converter raises many types; report the first line
            text = str(exc)
            first = next((l.strip() for l in text.splitlines() if l.strip()), type(exc).__name__)
            if converter_error_codes(exc) & {NEEDS_FLEX_OPS, NEEDS_CUSTOM_OPS}:
                first = "an op would need SELECT_TF_OPS (TensorFlow ops inside TFLite), which bundles do not allow: " + first
            raise ConversionError(f"{what}: TFLite conversion to {fmt.name} failed: {first[:400]}") from None
    check_ops(flatbuffer, fmt, what, allowed)
    return flatbuffer


def _convert_keeping_float(conv: Any, island: FloatIsland) -> tuple[bytes, set[str]]:
    """Quantize everything but ``island``'s updates and states; returns the flatbuffer and the float tensors' names.

    The converter's own steps, with one change: calibrate, quantize with the
    update's tensors denylisted (MLIR quantizer), connect the state inputs and
    outputs to the float tensors directly (the quantizer wraps every input in
    QUANTIZE/DEQUANTIZE), then give the other inputs and outputs the format's type.
    """
    import tensorflow as tf
    from tensorflow.compiler.mlir.lite import types_pb2
    from tensorflow.lite.python import convert as tfl_convert

    io = conv.inference_input_type
    calibrated = _calibrate(conv)
    deny = float_island_nodes(calibrated, island)
    quantized = tfl_convert.mlir_quantize(
        calibrated,
        disable_per_channel=conv._experimental_disable_per_channel,  # noqa: SLF001
        inference_type=types_pb2.QUANTIZED_INT8,  # int16x8 is refused before: its quantizer excludes no op
        input_data_type=tf.float32,
        output_data_type=tf.float32,
        denylisted_nodes=deny,
    )
    rewired, floats = _float_state_io(quantized, island.pairs, island.inputs)
    rewired, edges = float_edges(rewired)
    rewired = canonical_parts(rewired)
    floats |= edges
    if io not in (None, tf.float32):
        rewired = _integer_io(rewired, io, {name for name, _ in island.pairs} | set(island.inputs))
    return rewired, floats | set(deny)


def float_edges(flatbuffer: bytes) -> tuple[bytes, set[str]]:
    """Take out the int8 round trips the quantizer leaves at a float island's edges; returns the flatbuffer and the
    names of the tensors made float.

    The quantizer runs some ops int8 between float ones even when they are
    denylisted (measured on an LSTM step: the float gate sum was quantized only
    to be split and dequantized again, and ``h' = o tanh(c')`` multiplied int8
    copies of two float tensors). Two rewrites, each exact in float and one
    rounding fewer:

    - ``QUANTIZE -> SPLIT -> DEQUANTIZE`` on every output: a float ``SPLIT``;
    - ``MUL`` of two ``QUANTIZE`` d float tensors into an int8 one: a float
      ``MUL`` and one ``QUANTIZE`` to the same int8 tensor (scale kept).

    A rewritten ``QUANTIZE`` must feed nothing else, and no graph output changes.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    ops, consumers = _op_names(model), _readers(graph)
    producer = {int(t): op for op in graph.operators for t in op.outputs}
    outputs = {int(t) for t in graph.outputs}

    def sole(t: int, kind: str) -> Any:
        """The one op reading ``t``, when it is a ``kind`` and ``t`` is no graph output."""
        readers = consumers.get(t, [])
        return readers[0] if len(readers) == 1 and ops[readers[0].opcodeIndex] == kind and t not in outputs else None

    def made_by(t: int, kind: str) -> Any:
        op = producer.get(t)
        return op if op is not None and ops[op.opcodeIndex] == kind else None

    dropped: set[int] = set()
    after: dict[int, Any] = {}  # id(op) -> the op to run right after it
    made: set[str] = set()
    for op in graph.operators:
        kind = ops[op.opcodeIndex]
        if kind == "SPLIT":
            src = int(op.inputs[1])
            quantize = made_by(src, "QUANTIZE")
            dequantize = [sole(int(t), "DEQUANTIZE") for t in op.outputs]
            if quantize is None or sole(src, "SPLIT") is None or None in dequantize:
                continue
            op.inputs[1] = quantize.inputs[0]
            op.outputs = np.array([int(d.outputs[0]) for d in dequantize], dtype=np.int32)
            dropped |= {id(quantize), *map(id, dequantize)}
            made |= {_text(graph.tensors[int(t)].name) for t in op.outputs}
        elif kind == "MUL":
            quantizes = [made_by(int(t), "QUANTIZE") for t in op.inputs]
            out = int(op.outputs[0])
            if None in quantizes or any(sole(int(t), "MUL") is None for t in op.inputs) or graph.tensors[out].type != schema.TensorType.INT8:
                continue
            model.buffers.append(schema.BufferT())
            tensor = schema.TensorT()
            tensor.shape = np.array(graph.tensors[out].shape, dtype=np.int32)
            tensor.type, tensor.buffer = schema.TensorType.FLOAT32, len(model.buffers) - 1
            tensor.name = _text(graph.tensors[out].name) + "_float"
            graph.tensors.append(tensor)
            requantize = schema.OperatorT()
            requantize.opcodeIndex = quantizes[0].opcodeIndex
            requantize.inputs = np.array([len(graph.tensors) - 1], dtype=np.int32)
            requantize.outputs = np.array([out], dtype=np.int32)
            op.inputs = np.array([int(q.inputs[0]) for q in quantizes], dtype=np.int32)
            op.outputs = np.array([len(graph.tensors) - 1], dtype=np.int32)
            after[id(op)] = requantize
            dropped |= set(map(id, quantizes))
            made.add(tensor.name)
    if not made:
        return flatbuffer, made
    ordered = []
    for op in graph.operators:
        if id(op) not in dropped:
            ordered += [op] + ([after[id(op)]] if id(op) in after else [])
    graph.operators = ordered
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), made


def canonical_parts(flatbuffer: bytes) -> bytes:
    """The same graph in the same bytes: number the parts of every ``SPLIT`` in the order of the parts.

    TFLite's quantizer creates the ``DEQUANTIZE`` of each part of a split in no
    fixed order, so two conversions of one model number those ops and their
    output tensors differently (same function, other bytes). Here each split's
    part tensors (its own outputs, or the outputs of the one ``DEQUANTIZE``
    that reads each of them) take their indices in ascending order of the
    part, and those ``DEQUANTIZE`` ops run in that order. Only tensors that
    differ in nothing but name and index are renumbered; readers follow.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    ops, readers = _op_names(model), _readers(graph)
    outputs = {int(t) for t in graph.outputs}
    renumber: dict[int, int] = {}  # tensor -> the tensor its readers read instead
    place: dict[int, Any] = {}  # position in graph.operators -> the op to put there
    position = {id(op): i for i, op in enumerate(graph.operators)}

    def sort(parts: list[int]) -> list[int]:
        if outputs & set(parts) or not _interchangeable(model, [graph.tensors[t] for t in parts]):
            return parts
        renumber.update((t, k) for t, k in zip(parts, sorted(parts)) if t != k)
        return sorted(parts)

    for op in graph.operators:
        if ops[op.opcodeIndex] != "SPLIT":
            continue
        dequantize = [readers.get(int(t), []) for t in op.outputs]
        at = sorted(position[id(r[0])] for r in dequantize if r)
        if all(len(r) == 1 and ops[r[0].opcodeIndex] == "DEQUANTIZE" for r in dequantize) and at[-1] - at[0] == len(at) - 1:
            dequantize = [r[0] for r in dequantize]  # one after another: reordered, they still run before any reader
            for d, t in zip(dequantize, sort([int(d.outputs[0]) for d in dequantize])):
                d.outputs = np.array([t], dtype=np.int32)
            place.update(zip(at, dequantize))
        else:
            op.outputs = np.array(sort([int(t) for t in op.outputs]), dtype=np.int32)
    if not renumber and all(graph.operators[i] is d for i, d in place.items()):
        return flatbuffer
    graph.operators = [place.get(i, op) for i, op in enumerate(graph.operators)]
    for op in graph.operators:
        op.inputs = np.array([renumber.get(int(t), int(t)) for t in op.inputs], dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _interchangeable(model: Any, tensors: list[Any]) -> bool:
    """Tensors that differ in nothing but name and index: type, shape (and its signature), quantization
    (and its axis), no data and no variable or sparse ones."""
    def key(t: Any) -> tuple[Any, ...] | None:
        data = model.buffers[t.buffer].data
        if (data is not None and len(data)) or t.isVariable or t.sparsity is not None:
            return None
        q = t.quantization
        quant = None if q is None else (q.quantizedDimension, *(None if v is None else tuple(np.ravel(v))
                                                                for v in (q.scale, q.zeroPoint, q.min, q.max)))
        signature = None if t.shapeSignature is None else tuple(t.shapeSignature)
        return t.type, tuple(t.shape), signature, quant

    keys = {key(t) for t in tensors}
    return len(keys) == 1 and None not in keys


def _integer_io(flatbuffer: bytes, io: Any, float_inputs: set[str]) -> bytes:
    """``modify_model_io_type`` for every input and output but the float states.

    A float state input can also feed a QUANTIZE (a GRU's state feeds an int8
    matrix product as well as its float update); the converter's function would
    turn that input to int8 and orphan the float consumers. It only looks at the
    graph's inputs list, so the float states are left out of it and put back at
    their places afterwards (the signature keeps them throughout)."""
    from tensorflow.lite.python import util as tfl_util
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    sig, graph = model.signatureDefs[0], model.subgraphs[0]
    keep = {t.tensorIndex: _text(t.name) for t in sig.inputs if _text(t.name) in float_inputs}
    slots = [keep.get(i) for i in graph.inputs]  # the float state's signature name, or None
    graph.inputs = [i for i in graph.inputs if i not in keep]
    changed = tfl_util.modify_model_io_type(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), io, io)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(changed))
    sig, graph = model.signatureDefs[0], model.subgraphs[0]
    by_name = {_text(t.name): t.tensorIndex for t in sig.inputs}
    rest = iter(list(graph.inputs))
    graph.inputs = [by_name[name] if name else next(rest) for name in slots]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def float_island_nodes(calibrated: bytes, island: FloatIsland) -> list[str]:
    """Names of the tensors the quantizer must leave float: those of the island's layers and its state outputs."""
    outputs = _signature_tensors(calibrated)[1]
    names = _tensor_names(calibrated)
    # a layer's name as a whole path component, with Keras's call index (``bn_0_1``): ``bn_1`` is not ``bn_10``
    inside = re.compile(r"(^|/)(" + "|".join(map(re.escape, island.layers)) + r")(_\d+)?(/|;|:|$)")
    return sorted({n for n in names if inside.search(n)} | {names[outputs[out]] for _, out in island.pairs})


def calibrate_only(saved_model_dir: Path, fmt: Format, samples: list[dict[str, np.ndarray]]) -> bytes:
    """The float flatbuffer with calibration statistics, before quantization."""
    return _calibrate(make_converter(saved_model_dir, fmt, samples))


def _calibrate(conv: Any) -> bytes:
    """Run ``conv``'s calibration only (float I/O): the route of tf.lite's QuantizationDebugger."""
    import tensorflow as tf

    conv.inference_input_type = conv.inference_output_type = tf.float32
    conv._experimental_calibrate_only = True  # noqa: SLF001
    return conv.convert()


def _tensor_names(flatbuffer: bytes) -> list[str]:
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer)).subgraphs[0]
    return [_text(t.name) for t in graph.tensors]


def _signature_tensors(flatbuffer: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """(input name -> tensor index, output name -> tensor index) of the first signature."""
    from tensorflow.lite.tools import flatbuffer_utils

    sig = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer)).signatureDefs[0]
    return {_text(t.name): t.tensorIndex for t in sig.inputs}, {_text(t.name): t.tensorIndex for t in sig.outputs}


def _float_state_io(flatbuffer: bytes, pairs: tuple[tuple[str, str], ...], inputs: tuple[str, ...] = ()) -> tuple[bytes, set[str]]:
    """Feed each float state input (and each of ``inputs``) straight to its float consumers and output each float
    state's float tensor.

    Raises:
        ConversionError: a state did not stay float32 (the quantizer changed its shape of graph).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    sig = model.signatureDefs[0]
    graph = model.subgraphs[sig.subgraphIndex]
    code = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in model.operatorCodes]
    quantize, dequantize = schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE
    ins = {_text(t.name): t for t in sig.inputs}
    outs = {_text(t.name): t for t in sig.outputs}
    ops = graph.operators

    def consumers(tensor: int) -> list[Any]:
        return [op for op in ops if tensor in list(op.inputs)]

    def feed(i: int) -> None:
        """Connect input tensor ``i``'s float consumers to it, past the QUANTIZE -> DEQUANTIZE the quantizer added."""
        for q_op in [op for op in consumers(i) if code[op.opcodeIndex] == quantize]:
            q = q_op.outputs[0]
            for dq_op in [op for op in consumers(q) if code[op.opcodeIndex] == dequantize]:
                d = dq_op.outputs[0]
                for op in consumers(d):
                    op.inputs = [i if t == d else t for t in op.inputs]
                ops.remove(dq_op)
            if not consumers(q):
                ops.remove(q_op)

    floats: set[str] = set()
    for name in inputs:
        i = ins[name].tensorIndex
        feed(i)
        if graph.tensors[i].type != schema.TensorType.FLOAT32:
            raise ConversionError(f"input {name!r} did not stay float32 in the quantized graph")
        floats.add(_text(graph.tensors[i].name))
    for in_name, out_name in pairs:
        i = ins[in_name].tensorIndex
        feed(i)
        o = outs[out_name].tensorIndex
        producer = next((op for op in ops if o in list(op.outputs)), None)
        if producer is not None and code[producer.opcodeIndex] == quantize:
            f = producer.inputs[0]
            outs[out_name].tensorIndex = f
            graph.outputs = [f if t == o else t for t in graph.outputs]
            if not consumers(o):
                ops.remove(producer)
            o = f
        for name, t in ((in_name, i), (out_name, o)):
            if graph.tensors[t].type != schema.TensorType.FLOAT32:
                raise ConversionError(f"state {name!r} did not stay float32 in the quantized graph")
            floats.add(_text(graph.tensors[t].name))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), floats


def _op_names(model: Any) -> list[str]:
    """The builtin op name of each operator code of a flatbuffer model object (index: ``op.opcodeIndex``)."""
    return [builtin_op_name(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in model.operatorCodes]


def _readers(graph: Any) -> dict[int, list[Any]]:
    """Tensor index -> the ops of ``graph`` that read it, in graph order."""
    readers: dict[int, list[Any]] = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(int(t), []).append(op)
    return readers


def _text(name: bytes | str) -> str:
    """A flatbuffer object's name: ``flatbuffer_utils`` gives bytes."""
    return name.decode() if isinstance(name, bytes) else name


def check_ops(flatbuffer: bytes, fmt: Format, what: str, float_tensors: set[str] = frozenset()) -> None:
    """Refuse Flex/custom ops always, and float compute ops in integer-only formats (op list: :mod:`edge.flatbuffer`).

    Raises:
        UnquantizedOpError: an op with integer kernels was left float (the quantizer's miss: worth a retry).
        ConversionError: a Flex/custom op, or a float op with no integer kernel.
    """
    for op in check_model_bytes(flatbuffer, what).ops:
        if op.custom:
            raise ConversionError(f"{what}: the {fmt.name} graph contains {op.name}, which needs SELECT_TF_OPS or a custom op; bundles allow builtin ops only")
        if fmt.integer_only and op.name not in _FLOAT_OK:
            floats = [t.name for t in op.outputs if t.type in _FLOAT_TYPES and t.name not in float_tensors]
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
    ins = {_text(t.name): t.tensorIndex for t in sig.inputs}
    outs = {_text(t.name): t.tensorIndex for t in sig.outputs}
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


#: a recurrent layer's input projection in a step model (``rnn_k_x``, see converters.streaming._split_cell)
_GATE_INPUT = re.compile(r"(^|/)rnn_\d+_x(_\d+)?/")
#: gate pre-activations beyond +-GATE_FLAT read as saturated (sigmoid within 0.25 % of 0 or 1, tanh closer still):
#: a narrowed range always keeps them
GATE_FLAT = 6.0
#: ops whose int8 output must keep their input's scale and zero point (they move bytes, they do not rescale)
_SAME_QUANT_OPS = ("SPLIT", "SPLIT_V", "RESHAPE", "SQUEEZE")


def narrow_gate_ranges(flatbuffer: bytes, factor: float, flat: float = GATE_FLAT) -> bytes:
    """Shrink the int8 range of each recurrent layer's gate pre-activations by ``factor`` (1: unchanged).

    Calibration sets a tensor's range from the extremes it saw. An LSTM's input
    projection ``x·W + b`` and its gate sum ``x·W + h·U + b`` are long-tailed
    (measured on PickupGestureWiimoteZ, ``rnn`` seed 2: 98 % of the values in
    -2.3..4.5, extremes -10 and 17), so one int8 step is 0.12 where the sigmoid
    and tanh that read them are steepest, while beyond about +-6 they are flat.
    A narrower range clips the tails and rounds the rest more finely; it never
    ends inside ``[-flat, flat]``, where the functions are not flat (nor grows
    past the calibrated range). Kernels read scale and zero point when the interpreter prepares (as
    in :func:`tie_state_quantization`), so the change is a rescale of the same
    ops: the int8 output of each ``rnn_k_x`` fully-connected op, of the ``ADD``
    that sums it with ``h·U`` where that sum is int8 (``--recurrent-state int8``;
    with a float update it is float, :func:`float_edges`), and of the ops that
    only split or reshape those.
    """
    if factor == 1.0:
        return flatbuffer
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    ops = _op_names(model)
    changed = False
    for graph in model.subgraphs:
        consumers = _readers(graph)

        def quant(t: int) -> Any:
            tensor = graph.tensors[t]
            q = tensor.quantization
            int8 = tensor.type == schema.TensorType.INT8 and q is not None and q.scale is not None and len(q.scale) == 1
            return q if int8 else None

        narrowed: set[int] = set()

        def narrow(t: int) -> bool:
            if t in narrowed:  # once per tensor, however many narrowed products it sums
                return False
            narrowed.add(t)
            q = quant(t)
            s, z = float(q.scale[0]), int(q.zeroPoint[0])
            lo, hi = (-128 - z) * s, (127 - z) * s
            lo, hi = max(lo, min(lo * factor, -flat)), min(hi, max(hi * factor, flat))
            if (hi - lo) / 255.0 >= s:
                return False
            q.scale = [(hi - lo) / 255.0]
            q.zeroPoint = [int(np.clip(round(-128 - lo / q.scale[0]), -128, 127))]
            q.min = q.max = None
            copy_to_moves(t)
            return True

        def copy_to_moves(t: int) -> None:
            for op in consumers.get(t, []):
                if ops[op.opcodeIndex] in _SAME_QUANT_OPS and int(op.inputs[-1 if ops[op.opcodeIndex] == "SPLIT" else 0]) == t:
                    for o in op.outputs:
                        if (q := quant(int(o))) is not None:
                            q.scale, q.zeroPoint, q.min, q.max = list(quant(t).scale), list(quant(t).zeroPoint), None, None
                            copy_to_moves(int(o))

        for op in graph.operators:
            out = int(op.outputs[0])
            if ops[op.opcodeIndex] != "FULLY_CONNECTED" or not _GATE_INPUT.search(_text(graph.tensors[out].name)) or quant(out) is None:
                continue
            changed |= narrow(out)
            for add in consumers.get(out, []):
                if ops[add.opcodeIndex] == "ADD" and quant(int(add.outputs[0])) is not None:
                    changed |= narrow(int(add.outputs[0]))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else flatbuffer
