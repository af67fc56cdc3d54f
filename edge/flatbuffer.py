"""A bounds-checked reader of the TFLite ``Model`` flatbuffer (numpy/struct only).

The interpreter trusts its file: a flipped byte in an offset, a count or an index
can make it read out of bounds and crash the process. This reader walks the
parts of the schema that hold offsets and indices — root table, vtables,
``version``, ``operator_codes``, ``subgraphs`` (tensors with their quantization,
operators, inputs, outputs), ``buffers`` and ``signature_defs`` — and checks every offset, length
and index before anything is loaded. Field numbers follow
``tensorflow/compiler/mlir/lite/schema/schema.fbs``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import BundleError

SCHEMA_VERSION = 3
MAX_TENSOR_TYPE = 18  # BFLOAT16 in schema v3
MAX_BUILTIN_CODE = 255
CUSTOM_CODE = 32  # BuiltinOperator.CUSTOM: the op's name is its custom code
# bytes per element of each TensorType (0 = variable/unknown: not size-checked)
_ITEM_SIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 0, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: 0, 14: 0,
              15: 4, 16: 2, 17: 0, 18: 2}
_U8, _U16, _I32, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<i", "<I", "<Q"))
_SIZES = {"u8": 1, "i32": 4, "u32": 4, "u64": 8}


class StructureError(BundleError):
    """The flatbuffer does not hold a well-formed TFLite model."""


#: TensorType -> numpy dtype name, for the types a bundle can feed or read
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the flatbuffer declares it (``shape_signature`` has -1 for dynamic dimensions)."""

    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    type: int
    scale: float = 0.0
    zero_point: int = 0

    @property
    def dtype(self) -> str:
        return TENSOR_TYPES.get(self.type, f"type{self.type}")


@dataclass(frozen=True)
class OperatorInfo:
    """One operator of the main subgraph, in execution order."""

    name: str  # the builtin op name (``FULLY_CONNECTED``) or the custom code (``FlexMatrixDeterminant``)
    custom: bool
    inputs: tuple[TensorInfo | None, ...]  # None: an omitted optional input
    outputs: tuple[TensorInfo, ...]
    input_indices: tuple[int, ...] = ()  # tensor indices in the main subgraph (-1: omitted)
    output_indices: tuple[int, ...] = ()


def builtin_op_name(code: int) -> str:
    """The schema's name of a builtin operator code (``BUILTIN_<code>`` where no schema module is installed)."""
    return _builtin_names().get(code, f"BUILTIN_{code}")


@functools.lru_cache(maxsize=1)
def _builtin_names() -> dict[int, str]:
    try:  # ai-edge-litert ships the generated schema; legacy tflite-runtime does not
        from ai_edge_litert.schema_py_generated import BuiltinOperator
    except ImportError:
        return {}
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


@dataclass(frozen=True)
class SignatureInfo:
    """A signature: its key and the tensors behind its input and output names."""

    key: str
    inputs: tuple[tuple[str, TensorInfo], ...]
    outputs: tuple[tuple[str, TensorInfo], ...]


@dataclass(frozen=True)
class ModelInfo:
    """What the structure check learned about a model."""

    version: int
    subgraphs: int
    tensors: int
    operators: int
    buffers: int
    builtin_codes: tuple[int, ...]
    custom_ops: tuple[str, ...]
    signatures: tuple[str, ...]
    signature_io: tuple[SignatureInfo, ...] = ()  # subgraph 0's inputs/outputs by tensor name when there is no signature
    metadata: tuple[tuple[str, bytes], ...] = ()  # (name, buffer bytes) of each metadata entry
    ops: tuple[OperatorInfo, ...] = ()  # the main subgraph's operators, in execution order

    def metadata_buffer(self, name: str) -> bytes | None:
        return next((data for n, data in self.metadata if n == name), None)


class _Reader:
    """Offset arithmetic with a bounds check on every read."""

    def __init__(self, data: bytes, name: str):
        self.data = data
        self.size = len(data)
        self.name = name

    def fail(self, what: str) -> StructureError:
        return StructureError(f"{self.name}: malformed TFLite flatbuffer ({what})")

    def _get(self, fmt: struct.Struct, pos: int, what: str) -> int:
        if pos < 0 or pos + fmt.size > self.size:
            raise self.fail(f"{what} at byte {pos} is outside the {self.size}-byte file")
        return fmt.unpack_from(self.data, pos)[0]

    def u8(self, pos: int, what: str) -> int:
        return self._get(_U8, pos, what)

    def u32(self, pos: int, what: str) -> int:
        return self._get(_U32, pos, what)

    def i32(self, pos: int, what: str) -> int:
        return self._get(_I32, pos, what)

    def u64(self, pos: int, what: str) -> int:
        return self._get(_U64, pos, what)

    def aligned(self, pos: int, size: int, what: str) -> None:
        """Flatbuffers align every scalar to its size (the interpreter's verifier insists)."""
        if pos % size:
            raise self.fail(f"{what} at byte {pos} is not {size}-byte aligned")

    def table(self, pos: int, what: str) -> "_Table":
        self.aligned(pos, 4, what)
        vt = pos - self.i32(pos, f"{what} vtable offset")
        self.aligned(vt, 2, f"{what} vtable")
        vt_size = self._get(_U16, vt, f"{what} vtable")
        tbl_size = self._get(_U16, vt + 2, f"{what} vtable")
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.size:
            raise self.fail(f"{what} vtable size {vt_size}")
        if tbl_size < 4 or pos + tbl_size > self.size:
            raise self.fail(f"{what} table size {tbl_size}")
        fields = [self._get(_U16, vt + 4 + 2 * i, f"{what} vtable") for i in range((vt_size - 4) // 2)]
        for f in fields:
            if f and f + 1 > tbl_size:
                raise self.fail(f"{what} field offset {f} beyond its {tbl_size}-byte table")
        return _Table(self, pos, fields, what)

    def target(self, pos: int, what: str) -> int:
        """Follow a uoffset stored at ``pos``."""
        self.aligned(pos, 4, what)
        off = self.u32(pos, what)
        dest = pos + off
        if off == 0 or dest >= self.size:
            raise self.fail(f"{what} offset {off} at byte {pos} points outside the file")
        return dest

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """``(start, length)`` of a vector whose uoffset is at ``pos``; elements bounds-checked."""
        v = self.target(pos, what)
        self.aligned(v, 4, f"{what} length")
        n = self.u32(v, f"{what} length")
        if v + 4 + n * elem > self.size:
            raise self.fail(f"{what} of {n} elements runs past the end of the file")
        return v + 4, n

    def string(self, pos: int, what: str) -> str:
        start, n = self.vector(pos, 1, what)
        if start + n >= self.size or self.data[start + n] != 0:
            raise self.fail(f"{what} is not NUL-terminated")
        try:
            return self.data[start:start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None


class _Table:
    def __init__(self, r: _Reader, pos: int, fields: list[int], what: str):
        self.r, self.pos, self.fields, self.what = r, pos, fields, what

    def field(self, i: int) -> int | None:
        """Absolute position of field ``i``, or None when absent."""
        return self.pos + self.fields[i] if i < len(self.fields) and self.fields[i] else None

    def scalar(self, i: int, kind: str, default: int = 0) -> int:
        p = self.field(i)
        if p is None:
            return default
        self.r.aligned(p, _SIZES[kind], f"{self.what} field {i}")
        return getattr(self.r, kind)(p, f"{self.what} field {i}")

    def vector(self, i: int, elem: int) -> tuple[int, int]:
        p = self.field(i)
        return (0, 0) if p is None else self.r.vector(p, elem, f"{self.what} field {i}")

    def tables(self, i: int, what: str) -> list[_Table]:
        start, n = self.vector(i, 4)
        return [self.r.table(self.r.target(start + 4 * k, what), f"{what}[{k}]") for k in range(n)]

    def ints(self, i: int) -> list[int]:
        start, n = self.vector(i, 4)
        return [self.r.i32(start + 4 * k, f"{self.what} field {i}") for k in range(n)]

    def string(self, i: int) -> str | None:
        p = self.field(i)
        return None if p is None else self.r.string(p, f"{self.what} field {i}")


_ZP_RANGE = {9: (-128, 127), 3: (0, 255), 7: (-32768, 32767), 17: (-8, 7)}  # int8, uint8, int16, int4


def _check_quantization(r: _Reader, tensor: _Table, ttype: int, shape: list[int], where: str) -> tuple[float, int]:
    """Scales finite and positive, zero points inside the type, per-channel counts matching the shape.

    Returns the first (scale, zero point), (0.0, 0) when the tensor is not quantized.
    """
    p = tensor.field(4)
    if p is None:
        return 0.0, 0
    q = r.table(r.target(p, f"{where} quantization"), f"{where}.quantization")
    s_start, n_scale = q.vector(2, 4)
    z_start, n_zp = q.vector(3, 8)
    if n_zp and n_scale and n_zp != n_scale:
        raise r.fail(f"{where} has {n_scale} scales but {n_zp} zero points")
    scales = np.frombuffer(r.data, "<f4", n_scale, s_start) if n_scale else np.zeros(0, np.float32)
    if n_scale and not (np.isfinite(scales).all() and (scales >= 0).all()):
        raise r.fail(f"{where} quantization scale is negative or not finite")
    if n_zp and ttype in _ZP_RANGE:
        lo, hi = _ZP_RANGE[ttype]
        zps = np.frombuffer(r.data, "<i8", n_zp, z_start)
        if zps.min() < lo or zps.max() > hi:
            raise r.fail(f"{where} zero point {int(zps.min() if zps.min() < lo else zps.max())} outside [{lo}, {hi}]")
    if n_scale > 1:
        dim = q.scalar(6, "i32")
        if not 0 <= dim < len(shape) or shape[dim] != n_scale:
            raise r.fail(f"{where} has {n_scale} per-channel scales for dimension {dim} of shape {shape}")
    if not n_scale:
        return 0.0, 0
    return float(scales[0]), int(np.frombuffer(r.data, "<i8", 1, z_start)[0]) if n_zp else 0


def check_model_bytes(data: bytes, name: str = "model") -> ModelInfo:
    """Walk a TFLite flatbuffer and check every offset, length and index.

    Raises:
        StructureError: with what is wrong and where.
    """
    r = _Reader(data, name)
    if r.size < 16 or data[4:8] != b"TFL3":
        raise r.fail("no TFL3 identifier")
    model = r.table(r.target(0, "root table"), "Model")
    version = model.scalar(0, "u32")
    if version != SCHEMA_VERSION:
        raise r.fail(f"schema version {version}, expected {SCHEMA_VERSION}")

    builtin, custom, code_names = [], [], []
    op_codes = model.tables(1, "operator_codes")
    for k, oc in enumerate(op_codes):
        code = max(oc.scalar(0, "u8"), oc.scalar(3, "i32"))
        if not 0 <= code <= MAX_BUILTIN_CODE:
            raise r.fail(f"operator_codes[{k}] builtin code {code}")
        builtin.append(code)
        name_ = oc.string(1)
        if name_ is not None:
            custom.append(name_)
        code_names.append(name_)

    buffers = model.tables(4, "buffers")
    buffer_bytes, buffer_spans = [], []
    for k, buf in enumerate(buffers):
        start, n = buf.vector(0, 1)
        offset, size = buf.scalar(1, "u64"), buf.scalar(2, "u64")
        if offset > 1 and offset + size > r.size:
            raise r.fail(f"buffers[{k}] external data {offset}+{size} outside the file")
        buffer_bytes.append(n if offset <= 1 else size)
        buffer_spans.append((start, n) if offset <= 1 else (offset, size))

    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise r.fail("no subgraphs")
    n_tensors_total = n_ops_total = 0
    tensor_counts, infos, main_ops = [], [], []
    for g, sg in enumerate(subgraphs):
        tensors = sg.tables(0, f"subgraphs[{g}].tensors")
        nt = len(tensors)
        tensor_counts.append(nt)
        infos.append([])
        for t, tensor in enumerate(tensors):
            where = f"subgraphs[{g}].tensors[{t}]"
            tname = tensor.string(3) or ""  # the name: the interpreter decodes it as UTF-8
            ttype = tensor.scalar(1, "u8")
            if ttype > MAX_TENSOR_TYPE:
                raise r.fail(f"{where} type {ttype}")
            b = tensor.scalar(2, "u32")
            if b >= len(buffers):
                raise r.fail(f"{where} buffer index {b} >= {len(buffers)} buffers")
            shape = tensor.ints(0)
            elements = 1
            for d in shape:
                if d < -1:
                    raise r.fail(f"{where} dimension {d}")
                elements *= max(d, 1)
                if elements > 1 << 31:
                    raise r.fail(f"{where} shape {shape} is implausibly large")
            scale, zero_point = _check_quantization(r, tensor, ttype, shape, where)
            infos[g].append(TensorInfo(tname, tuple(shape), tuple(tensor.ints(7)) or tuple(shape), ttype, scale, zero_point))
            item = _ITEM_SIZE.get(ttype, 0)
            if buffer_bytes[b] and item and all(d >= 0 for d in shape) and buffer_bytes[b] < elements * item:
                raise r.fail(f"{where} shape {shape} needs {elements * item} bytes, buffer {b} has {buffer_bytes[b]}")
        for field, what in ((1, "inputs"), (2, "outputs")):
            for i in sg.ints(field):
                if not 0 <= i < nt:
                    raise r.fail(f"subgraphs[{g}].{what} tensor index {i} not in [0, {nt})")
        ops = sg.tables(3, f"subgraphs[{g}].operators")
        for o, op in enumerate(ops):
            code = op.scalar(0, "u32")
            if code >= len(op_codes):
                raise r.fail(f"subgraphs[{g}].operators[{o}] opcode index {code} >= {len(op_codes)}")
            for field, what in ((1, "inputs"), (2, "outputs"), (8, "intermediates")):
                for i in op.ints(field):
                    if not -1 <= i < nt:
                        raise r.fail(f"subgraphs[{g}].operators[{o}].{what} tensor index {i} not in [-1, {nt})")
            op.vector(5, 1)  # custom_options: bounds only
            if g == 0:
                custom_op = builtin[code] == CUSTOM_CODE
                name_ = code_names[code] if custom_op and code_names[code] else builtin_op_name(builtin[code])
                main_ops.append((name_, custom_op, list(op.ints(1)), [i for i in op.ints(2) if i >= 0]))
        sg.string(4)
        n_tensors_total += nt
        n_ops_total += len(ops)

    signatures, signature_io = [], []
    for s, sig in enumerate(model.tables(7, "signature_defs")):
        g = sig.scalar(4, "u32")
        if g >= len(subgraphs):
            raise r.fail(f"signature_defs[{s}] subgraph index {g} >= {len(subgraphs)}")
        io = []
        for field in (0, 1):
            maps = []
            for m, tm in enumerate(sig.tables(field, f"signature_defs[{s}].{'inputs' if field == 0 else 'outputs'}")):
                key = tm.string(0) or ""
                idx = tm.scalar(1, "u32")
                if idx >= tensor_counts[g]:
                    raise r.fail(f"signature_defs[{s}] tensor index {idx} >= {tensor_counts[g]}")
                maps.append((key, infos[g][idx]))
            io.append(tuple(maps))
        signatures.append(sig.string(2) or "")
        signature_io.append(SignatureInfo(signatures[-1], io[0], io[1]))
    if not signature_io:  # an older converter: the main subgraph's inputs and outputs, by tensor name
        sg = subgraphs[0]
        signature_io.append(SignatureInfo("", *(tuple((infos[0][i].name, infos[0][i]) for i in sg.ints(f)) for f in (1, 2))))
    metadata = []
    for k, md in enumerate(model.tables(6, "metadata")):
        b = md.scalar(1, "u32")
        if b >= len(buffers):
            raise r.fail(f"metadata[{k}] buffer index out of range")
        start, n = buffer_spans[b]
        metadata.append((md.string(0) or "", bytes(data[start:start + n])))
    ops = tuple(
        OperatorInfo(name_, custom_op, tuple(infos[0][i] if i >= 0 else None for i in ins), tuple(infos[0][i] for i in outs),
                     tuple(ins), tuple(outs))
        for name_, custom_op, ins, outs in main_ops
    )
    return ModelInfo(version, len(subgraphs), n_tensors_total, n_ops_total, len(buffers),
                     tuple(builtin), tuple(custom), tuple(signatures), tuple(signature_io), tuple(metadata), ops)


def read_model(path: str | Path) -> ModelInfo:
    """:func:`check_model_bytes` on a file."""
    path = Path(path)
    return check_model_bytes(path.read_bytes(), path.name)
