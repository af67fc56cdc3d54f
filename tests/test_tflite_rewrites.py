"""Rewrites of converted flatbuffers that need no conversion: hand-built graphs in the shapes TFLite's quantizer
leaves, checked byte for byte and through the interpreter."""

from __future__ import annotations

from typing import Any

import numpy as np


def _split_round_trip(swap: bool) -> bytes:
    """A graph as TFLite's quantizer leaves a float island's edge: x -> QUANTIZE -> SPLIT -> DEQUANTIZE x2 -> SUB,
    with the two DEQUANTIZE ops and their outputs in one order or (``swap``) the other, as two runs of it may."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    BO = schema.BuiltinOperator
    model, graph = schema.ModelT(), schema.SubGraphT()
    model.version, model.buffers, model.operatorCodes, model.subgraphs = 3, [schema.BufferT()], [], [graph]
    graph.tensors, graph.operators = [], []
    for code in (BO.QUANTIZE, BO.SPLIT, BO.DEQUANTIZE, BO.SUB):
        c = schema.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
        model.operatorCodes.append(c)

    def tensor(name: str, shape: list[int], dtype: int, data: bytes | None = None, scale: float = 0.0) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array(shape, np.int32), dtype, 0
        if data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(data, np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        if scale:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = np.array([scale], np.float32), np.array([0], np.int64)
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    def op(code: int, inputs: list[int], outputs: list[int], options: Any = None, kind: int = 0) -> None:
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, np.array(inputs, np.int32), np.array(outputs, np.int32)
        o.builtinOptionsType, o.builtinOptions = kind, options
        graph.operators.append(o)

    F, I8 = schema.TensorType.FLOAT32, schema.TensorType.INT8
    x, axis = tensor("x", [1, 8], F), tensor("axis", [], schema.TensorType.INT32, np.int32(1).tobytes())
    q, a, b = tensor("q", [1, 8], I8, scale=0.1), tensor("a", [1, 4], I8, scale=0.1), tensor("b", [1, 4], I8, scale=0.1)
    first, second = tensor("part_0", [1, 4], F), tensor("part_1", [1, 4], F)
    if swap:
        first, second = second, first
    out = tensor("out", [1, 4], F)
    split = schema.SplitOptionsT()
    split.numSplits = 2
    op(0, [x], [q])
    op(1, [axis, q], [a, b], split, schema.BuiltinOptions.SplitOptions)
    for part, value in ((b, second), (a, first))[::-1 if swap else 1]:
        op(2, [part], [value])
    op(3, [first, second], [out], schema.SubOptionsT(), schema.BuiltinOptions.SubOptions)
    graph.inputs, graph.outputs = np.array([x], np.int32), np.array([out], np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_split_parts_get_the_same_bytes_in_either_order() -> None:
    """The quantizer's run-to-run order of a split's DEQUANTIZE ops no longer reaches the bundle's bytes, whether
    the split stays int8 (a GRU's product) or ``float_edges`` makes it float (an LSTM's gate sum, then exact)."""
    from converters.tflite import canonical_parts, float_edges
    from edge.interpreter import make_interpreter

    x = np.array([[0.123, -0.456, 0.789, 1.5, 0.01, 0.02, -0.03, 2.25]], np.float32)

    def run(flatbuffer: bytes) -> np.ndarray:
        interp = make_interpreter(flatbuffer)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])

    one, other = _split_round_trip(False), _split_round_trip(True)
    assert one != other and canonical_parts(one) == canonical_parts(other)
    rounded = run(one)
    np.testing.assert_array_equal(run(canonical_parts(other)), rounded)
    assert np.abs(rounded - (x[:, :4] - x[:, 4:])).max() > 1e-3  # int8 parts: rounded to steps of 0.1
    (one, made), (other, _) = float_edges(one), float_edges(other)
    assert made == {"part_0", "part_1"} and one != other and canonical_parts(one) == canonical_parts(other)
    np.testing.assert_allclose(run(canonical_parts(other)), x[:, :4] - x[:, 4:], atol=1e-6)  # a float split: exact
