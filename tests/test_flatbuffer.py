"""The TFLite structure check: real models pass, targeted and random corruptions are caught."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import read_bundle, sha256_file
from edge.errors import BundleError
from edge.flatbuffer import StructureError, _Reader, check_model_bytes, read_model


def _model(tiny_bundles: dict[str, Path], precision: str = "int8") -> bytes:
    return (tiny_bundles[precision] / "model.tflite").read_bytes()


def _fields(data: bytes):
    """Positions of a few fields to corrupt, found with the reader itself."""
    r = _Reader(data, "m")
    model = r.table(r.target(0, "root"), "Model")
    sg = model.tables(2, "subgraphs")[0]
    tensor0 = sg.tables(0, "tensors")[0]
    op = next(o for o in sg.tables(3, "operators") if o.field(0) is not None)  # opcode 0 may be omitted
    inputs_start, _ = sg.vector(1, 4)
    return {
        "version": model.field(0),
        "tensor_buffer": tensor0.field(2),
        "opcode_index": op.field(0),
        "subgraph_input": inputs_start,
        "buffers_vector": r.target(model.field(4), "buffers"),
    }


def _poke(data: bytes, pos: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, pos, value)
    return bytes(out)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_real_models_pass(tiny_bundles: dict[str, Path], precision: str) -> None:
    info = read_model(tiny_bundles[precision] / "model.tflite")
    assert info.version == 3 and info.subgraphs >= 1 and info.operators > 0 and info.tensors > 0
    assert "serving_default" in info.signatures and info.custom_ops == ()


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_op_list_is_the_interpreters(tiny_bundles: dict[str, Path], precision: str) -> None:
    """The reader's op list (names, tensors, dtypes) is the one the interpreter executes before delegation."""
    from ai_edge_litert.interpreter import Interpreter

    from edge.compat import ops_details

    path = tiny_bundles[precision] / "model.tflite"
    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    expected = [(d["op_name"], [tensors[i]["name"] for i in d["outputs"]], [np.dtype(tensors[i]["dtype"]).name for i in d["outputs"]])
                for d in ops_details(interpreter)]
    ops = read_model(path).ops
    assert [(op.name, [t.name for t in op.outputs], [t.dtype for t in op.outputs]) for op in ops] == expected
    assert "FULLY_CONNECTED" in {op.name for op in ops} and not any(op.custom for op in ops)


def test_load_failures_are_told_apart(tiny_bundles: dict[str, Path]) -> None:
    """A model no kernel set loads is a BundleError, not a delegate's refusal; a good one loads either way."""
    from edge.errors import DelegateRefused
    from edge.interpreter import make_interpreter

    data = _model(tiny_bundles)
    broken = _poke(data, _fields(data)["opcode_index"], 999)  # past the structure check's back: the interpreter's own refusal
    for delegate in ("xnnpack", "none"):
        with pytest.raises(BundleError) as err:
            make_interpreter(broken, delegate=delegate)
        assert not isinstance(err.value, DelegateRefused)
        assert make_interpreter(data, delegate=delegate).get_signature_runner("serving_default")


@pytest.mark.parametrize("field,value,message", [
    ("version", 2, "schema version 2"),
    ("tensor_buffer", 1_000_000, "buffer index 1000000"),
    ("opcode_index", 999, "opcode index 999"),
    ("subgraph_input", 99_999, "tensor index 99999"),
    ("buffers_vector", 0x0FFFFFFF, "runs past the end"),
])
def test_targeted_corruptions(tiny_bundles: dict[str, Path], field: str, value: int, message: str) -> None:
    data = _model(tiny_bundles)
    pos = _fields(data)[field]
    with pytest.raises(StructureError, match=message):
        check_model_bytes(_poke(data, pos, value))


def test_root_offset_and_truncation(tiny_bundles: dict[str, Path]) -> None:
    data = _model(tiny_bundles)
    with pytest.raises(StructureError, match="outside"):
        check_model_bytes(_poke(data, 0, len(data) + 100))
    for cut in (20, len(data) // 3, len(data) - 50):
        with pytest.raises(StructureError):
            check_model_bytes(data[:cut])


def test_random_mutations_only_raise_structure_errors(tiny_bundles: dict[str, Path]) -> None:
    """The checker itself must never fail with anything but a StructureError."""
    data = _model(tiny_bundles)
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(300):
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 8))):
            buf[pos] = int(rng.integers(0, 256))
        try:
            check_model_bytes(bytes(buf))
        except StructureError:
            rejected += 1
    assert 0 < rejected < 300


def test_rehashed_corrupt_bundle_is_refused(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    """A byte flip with a consistent sha256 (rewritten manifest) still never reaches the interpreter."""
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundles["int8"], bundle)
    model = bundle / "model.tflite"
    data = model.read_bytes()
    model.write_bytes(_poke(data, _fields(data)["tensor_buffer"], 77_777))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["model.tflite"]["sha256"] = sha256_file(model)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="malformed TFLite flatbuffer.*buffer index 77777"):
        read_bundle(bundle)
