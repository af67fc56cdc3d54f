"""Static analysis of a bundle's graphs from the LiteRT interpreter alone (no TensorFlow).

Per graph: the op list with counts, parameters, multiply-accumulates per
invoke and per frame (convolutions, depthwise convolutions, fully connected —
an LSTM/GRU step is fully-connected ops plus elementwise gates), file size, an
estimated tensor arena (peak bytes of simultaneously live activations), and an
Edge TPU verdict per op from Coral's documented supported-op list. The Edge TPU
compiler maps ops in order until the first unsupported one; that op and every
op after it run on the CPU, so one early unsupported op costs the whole graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.flatbuffer import read_model
from edge.interpreter import load_backend

# Coral "TensorFlow models on the Edge TPU", supported operations (TFLite builtin names).
EDGETPU_OPS: dict[str, str] = {
    "ADD": "", "AVERAGE_POOL_2D": "no fused activation", "CONCATENATION": "no fused activation; constant inputs only as zero padding",
    "CONV_2D": "", "DEPTHWISE_CONV_2D": "", "EXPAND_DIMS": "", "FULLY_CONNECTED": "default weight format; 1-D output",
    "L2_NORMALIZATION": "", "LOGISTIC": "", "LSTM": "unidirectional only", "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only",
    "MAXIMUM": "", "MAX_POOL_2D": "no fused activation", "MEAN": "x/y reduction only", "MINIMUM": "", "MUL": "",
    "PACK": "not along the batch dimension", "PAD": "x/y padding only", "PRELU": "1-D alpha", "QUANTIZE": "",
    "REDUCE_MAX": "not along the batch dimension", "REDUCE_MIN": "not along the batch dimension", "RELU": "", "RELU6": "",
    "RELU_N1_TO_1": "", "RESHAPE": "large reshapes may not map", "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output", "RSQRT": "", "SLICE": "", "SOFTMAX": "1-D input, max 16000 elements",
    "SPACE_TO_DEPTH": "", "SPLIT": "not along the batch dimension", "SQUEEZE": "", "STRIDED_SLICE": "", "SUB": "", "SUM": "x/y reduction only",
    "SQUARED_DIFFERENCE": "", "TANH": "", "TRANSPOSE": "", "TRANSPOSE_CONV": "",
}
# ops whose constant operands are shapes, axes or indices, not learned parameters
_SHAPE_OPERAND_OPS = {"RESHAPE", "STRIDED_SLICE", "SLICE", "PAD", "PADV2", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN",
                      "TRANSPOSE", "EXPAND_DIMS", "GATHER", "TILE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
                      "SPLIT", "SPLIT_V", "BROADCAST_TO", "FILL", "SQUEEZE"}


@dataclass(frozen=True)
class OpInfo:
    """One op in execution order with its cost and Edge TPU verdict."""

    index: int
    name: str
    macs: int
    output_shape: tuple[int, ...]
    output_dtype: str
    edgetpu: str  # "tpu" or "cpu: <reason>"


@dataclass(frozen=True)
class GraphAnalysis:
    """Everything ``inspect`` reports about one flatbuffer."""

    file: str
    size_bytes: int
    ops: tuple[OpInfo, ...]
    parameters: int
    parameter_bytes: int
    macs: int
    frames_per_invoke: int
    arena_bytes: int
    io_bytes: int
    tpu_ops: int
    first_cpu_op: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def macs_per_frame(self) -> float:
        return self.macs / max(1, self.frames_per_invoke)


def _nbytes(t: dict[str, Any]) -> int:
    return int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize if len(t["shape"]) else np.dtype(t["dtype"]).itemsize


def op_macs(name: str, inputs: list[dict[str, Any] | None], outputs: list[dict[str, Any]]) -> int:
    """Multiply-accumulates of one op from its tensor shapes (0 for ops we do not count)."""
    if not outputs or not inputs or inputs[0] is None:
        return 0
    out = outputs[0]["shape"]
    w = inputs[1]["shape"] if len(inputs) > 1 and inputs[1] is not None else None
    if name == "CONV_2D" and w is not None:  # filter (Cout, kh, kw, Cin)
        return int(np.prod(out)) * int(w[1] * w[2] * w[3])
    if name == "DEPTHWISE_CONV_2D" and w is not None:  # filter (1, kh, kw, Cout)
        return int(np.prod(out)) * int(w[1] * w[2])
    if name == "FULLY_CONNECTED" and w is not None:  # weights (units, in)
        return int(np.prod(out)) * int(w[-1])
    if name == "TRANSPOSE_CONV" and len(inputs) > 2 and inputs[2] is not None:  # (shape, filter, input)
        f, x = inputs[1]["shape"], inputs[2]["shape"]
        return int(np.prod(x)) * int(f[0] * f[1] * f[2])
    if name == "BATCH_MATMUL" and w is not None:
        return int(np.prod(out)) * int(inputs[0]["shape"][-1])
    return 0


def _edgetpu_problem(name: str, tensors: list[dict[str, Any]]) -> str | None:
    if name not in EDGETPU_OPS:
        return f"{name} is not on the Edge TPU op list"
    for t in tensors:
        dtype = np.dtype(t["dtype"]).name
        if dtype not in ("int8", "uint8", "int32"):
            return f"{dtype} tensor (the Edge TPU needs 8-bit quantized tensors)"
        if any(int(v) < 0 for v in t.get("shape_signature", t["shape"])):
            return "dynamic tensor shape"
        dims = [int(v) for v in t["shape"]]
        if len(dims) > 3 and any(v > 1 for v in dims[:-3]):
            return f"tensor {dims} has more than 3 non-trivial dimensions"
    return None


def analyze_graph(path: str | Path, frames_per_invoke: int = 1) -> GraphAnalysis:
    """Analyse one ``.tflite`` file: op list from :mod:`edge.flatbuffer`, tensors from the LiteRT interpreter (nothing is invoked)."""
    path = Path(path)
    backend = load_backend()
    interpreter = backend.module.Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = [{"index": k, "op_name": op.name, "inputs": op.input_indices, "outputs": op.output_indices}
           for k, op in enumerate(read_model(path).ops)]
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    produced = {int(i) for op in ops for i in op["outputs"]}
    constants: dict[int, bool] = {}  # index -> counts as a parameter
    first_use: dict[int, int] = {i: 0 for i in graph_inputs}
    last_use: dict[int, int] = {i: len(ops) for i in graph_outputs}
    infos: list[OpInfo] = []
    first_cpu: str | None = None
    for op in ops:
        k, name = int(op["index"]), op["op_name"]
        ins = [tensors.get(int(i)) if int(i) >= 0 else None for i in op["inputs"]]
        outs = [tensors[int(i)] for i in op["outputs"]]
        for pos, i in enumerate(int(v) for v in op["inputs"]):
            if i < 0:
                continue
            if i not in produced and i not in graph_inputs:
                is_param = name not in _SHAPE_OPERAND_OPS or pos == (1 if name == "SPLIT" else 0)
                constants[i] = constants.get(i, False) or is_param
            else:
                last_use[i] = max(last_use.get(i, k), k)
        for i in (int(v) for v in op["outputs"]):
            first_use.setdefault(i, k)
            last_use.setdefault(i, k)
        activations = [t for t in ins + outs if t is not None and t["index"] not in constants]
        problem = _edgetpu_problem(name, activations)
        if problem and first_cpu is None:
            first_cpu = f"{name} (op {k}): {problem}"
        verdict = "tpu" if not problem and first_cpu is None else f"cpu: {problem}" if problem else "cpu: after the first unsupported op"
        out0 = outs[0] if outs else {"shape": (), "dtype": np.float32}
        infos.append(OpInfo(k, name, op_macs(name, ins, outs), tuple(int(v) for v in out0["shape"]), np.dtype(out0["dtype"]).name, verdict))
    params = [tensors[i] for i, is_param in constants.items() if is_param]
    live = [(first_use[i], last_use.get(i, first_use[i]), _nbytes(tensors[i])) for i in first_use if i in tensors]
    arena = max((sum(b for s, e, b in live if s <= k <= e) for k in range(len(ops) + 1)), default=0)
    return GraphAnalysis(
        file=path.name,
        size_bytes=path.stat().st_size,
        ops=tuple(infos),
        parameters=sum(int(np.prod(t["shape"])) for t in params),
        parameter_bytes=sum(_nbytes(t) for t in params),
        macs=sum(o.macs for o in infos),
        frames_per_invoke=frames_per_invoke,
        arena_bytes=arena,
        io_bytes=sum(_nbytes(tensors[i]) for i in graph_inputs | graph_outputs),
        tpu_ops=sum(o.edgetpu == "tpu" for o in infos),
        first_cpu_op=first_cpu,
        counts=dict(Counter(o.name for o in infos).most_common()),
    )


def format_analysis(a: GraphAnalysis) -> list[str]:
    """Printable lines for one graph."""
    lines = [
        f"graph     {a.file}: {a.size_bytes} bytes, {len(a.ops)} ops, {a.parameters} parameters ({a.parameter_bytes} bytes)",
        f"compute   {a.macs_per_frame / 1e6:.3f} M MACs per frame ({a.macs / 1e6:.3f} M per invoke of {a.frames_per_invoke} frame(s))",
        f"memory    estimate: {a.arena_bytes / 1024:.1f} KiB peak live activations (tensor arena), {a.parameter_bytes / 1024:.1f} KiB weights",
        "ops       " + ", ".join(f"{n} x{c}" for n, c in a.counts.items()),
    ]
    if a.tpu_ops == len(a.ops):
        lines.append(f"edgetpu   all {len(a.ops)} ops are on the Edge TPU list (int8, static shapes); compile with edgetpu_compiler")
    else:
        lines.append(f"edgetpu   {a.tpu_ops}/{len(a.ops)} ops would map; CPU from {a.first_cpu_op}")
    return lines
