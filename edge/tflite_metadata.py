"""TFLite model metadata (the tflite-support schema, ``metadata_schema.fbs``), read without TensorFlow.

A model written by the TFLite metadata writers (Model Maker, Edge Impulse, the
Task Library's examples) carries a ``TFLITE_METADATA`` buffer (a ``ModelMetadata``
flatbuffer, identifier ``M001``) and packs its associated files (the labels) as a
zip archive appended to the flatbuffer. This module reads what an importer needs:
the model name, the input's normalization (mean/std), its colour space, and the
labels of the score output. Every offset is bounds-checked by the same reader as
the model itself.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from edge.flatbuffer import StructureError, _Reader, _Table

METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
_NORMALIZATION = 1  # ProcessUnitOptions.NormalizationOptions
_AXIS_LABELS = 2  # AssociatedFileType.TENSOR_AXIS_LABELS
_IMAGE_PROPERTIES = 2  # ContentProperties.ImageProperties
_COLOR = {1: "rgb", 2: "grayscale"}


@dataclass(frozen=True)
class TensorInfo:
    """What the metadata says about one tensor."""

    name: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    color: str = ""
    labels_file: str = ""


@dataclass(frozen=True)
class ModelMetadata:
    """The parts of a model's metadata an importer uses."""

    name: str
    description: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    files: dict[str, bytes]  # the associated files packed into the model

    def labels(self, output: int = 0) -> tuple[str, ...]:
        """The axis labels of output ``output`` (one per line of its labels file), or () when none."""
        if output >= len(self.outputs) or not self.outputs[output].labels_file:
            return ()
        data = self.files.get(self.outputs[output].labels_file)
        if data is None:
            raise StructureError(f"metadata names labels file {self.outputs[output].labels_file!r} but the model does not pack it")
        return tuple(line.strip() for line in data.decode("utf-8").splitlines() if line.strip())


def _floats(t: _Table, field: int) -> tuple[float, ...]:
    start, n = t.vector(field, 4)
    return tuple(float(v) for v in np.frombuffer(t.r.data, "<f4", n, start)) if n else ()


def _union(t: _Table, type_field: int, what: str) -> tuple[int, _Table | None]:
    kind = t.scalar(type_field, "u8")
    p = t.field(type_field + 1)
    return (kind, None) if not kind or p is None else (kind, t.r.table(t.r.target(p, what), what))


def _tensor(t: _Table) -> TensorInfo:
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    for unit in t.tables(4, "process_units"):
        kind, opts = _union(unit, 0, "process unit options")
        if kind == _NORMALIZATION and opts is not None:
            mean, std = _floats(opts, 0), _floats(opts, 1)
    color = ""
    p = t.field(3)
    if p is not None:
        content = t.r.table(t.r.target(p, "content"), "content")
        kind, props = _union(content, 0, "content properties")
        if kind == _IMAGE_PROPERTIES and props is not None:
            color = _COLOR.get(props.scalar(0, "u8"), "")
    labels = next((f.string(0) or "" for f in t.tables(6, "associated_files") if f.scalar(2, "u8") == _AXIS_LABELS), "")
    return TensorInfo(t.string(0) or "", mean, std, color, labels)


def parse_metadata(buffer: bytes, model_bytes: bytes, name: str = "model") -> ModelMetadata:
    """Parse a ``TFLITE_METADATA`` buffer; ``model_bytes`` is the whole file (its zip holds the associated files).

    Raises:
        StructureError: the buffer is not a well-formed ``ModelMetadata``.
    """
    r = _Reader(buffer, f"{name} metadata")
    if r.size < 8 or buffer[4:8] != IDENTIFIER:
        raise r.fail("no M001 identifier")
    root = r.table(r.target(0, "root table"), "ModelMetadata")
    subgraphs = root.tables(3, "subgraph_metadata")
    inputs = outputs = ()
    if subgraphs:
        inputs = tuple(_tensor(t) for t in subgraphs[0].tables(2, "input_tensor_metadata"))
        outputs = tuple(_tensor(t) for t in subgraphs[0].tables(3, "output_tensor_metadata"))
    return ModelMetadata(root.string(0) or "", root.string(1) or "", inputs, outputs, packed_files(model_bytes))


def packed_files(model_bytes: bytes) -> dict[str, bytes]:
    """The files packed into a model as an appended zip archive (empty when there are none)."""
    if b"PK\x05\x06" not in model_bytes[-65557:]:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
            return {i.filename: z.read(i) for i in z.infolist() if i.file_size < 16 << 20}
    except (zipfile.BadZipFile, struct.error):
        return {}
