"""Import a ``.tflite`` made by another tool as a bundle, so every command serves it (no TensorFlow).

What the file says is read from the flatbuffer (:mod:`edge.flatbuffer`: signatures,
tensor shapes, dtypes, quantization, custom ops) and its TFLite metadata
(:mod:`edge.tflite_metadata`: labels, normalization); what it does not say is
asked for with one line per missing item. Recurrent state tensors (the
kws_streaming layout: a state input and the output that feeds it next step)
are paired from ``--state INPUT:OUTPUT`` or by name and shape when that is
unambiguous. The bundle is written through :mod:`edge.bundle` with a golden
pair computed here (the model's own output on a seeded input), then read back
and self-tested.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import adapters
from edge.bundle import (
    MODEL_FILE, GraphSpec, InputKind, Manifest, Mode, Runtime, Source, StateSpec, TensorSpec, Window,
    check_tflite_header, read_bundle, sha256_file, write_golden, write_manifest,
)
from edge.errors import BundleError, ModelImportError
from edge.flatbuffer import SignatureInfo, TensorInfo, read_model
from edge.preprocess import Preprocessing
from edge.tflite_metadata import METADATA_NAME, ModelMetadata, parse_metadata
from edge.versions import library_versions

EDGETPU_OP = "edgetpu-custom-op"
_PRECISION = {"int8": "int8", "uint8": "uint8", "int16": "int16x8", "float32": "float32", "float16": "float16"}


@dataclass(frozen=True)
class ImportOptions:
    """What the user tells ``hybrid-edge import`` (None: infer from the file)."""

    labels: tuple[str, ...] | None = None
    preprocess: dict[str, str] = field(default_factory=dict)  # size=HxW, color, scale, mean=a/b/c, std=a/b/c
    states: tuple[tuple[str, str], ...] = ()  # (input, output) signature names
    mode: str | None = None
    name: str | None = None
    signature: str | None = None
    seed: int = 0


def parse_preprocess(text: str) -> dict[str, str]:
    """``size=96x96,color=rgb,scale=0.00392,mean=0.5/0.5/0.5,std=0.5/0.5/0.5`` -> a dict (lists use ``/``)."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("size", "color", "scale", "mean", "std", "resize"):
            raise ModelImportError(f"--preprocess: {item!r} is not one of size=HxW, color=rgb|bgr, scale=X, mean=A/B/C, std=A/B/C, resize=area|linear")
        out[key] = value
    return out


def parse_labels(text: str) -> tuple[str, ...]:
    """``--labels``: a file with one label per line, or ``a,b,c``."""
    path = Path(text)
    if path.is_file():
        return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if "," not in text and ("/" in text or text.endswith(".txt")):
        raise ModelImportError(f"--labels: {text}: file not found")
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _signature(sigs: tuple[SignatureInfo, ...], wanted: str | None, path: Path) -> SignatureInfo:
    if wanted is not None:
        for s in sigs:
            if s.key == wanted:
                return s
        raise ModelImportError(f"{path.name}: no signature {wanted!r} (it has {', '.join(s.key for s in sigs)})")
    if len(sigs) > 1:
        raise ModelImportError(f"{path.name}: {len(sigs)} signatures ({', '.join(s.key for s in sigs)}); choose one with --signature")
    if not sigs[0].key:
        raise ModelImportError(f"{path.name}: the model has no signature; re-export it with a signature (TF converter >= 2.7 writes serving_default)")
    return sigs[0]


def _stem(name: str) -> str:
    """A tensor name without the usual in/out decorations, for pairing states by name."""
    return re.sub(r"(^|_)(in|input|out|output|new|next|prev)(_|$)|:\d+$", "_", name.lower()).strip("_")


def pair_states(sig: SignatureInfo, given: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The (input, output) state pairs: those given, else matched by shape and dtype (and name if needed)."""
    ins, outs = dict(sig.inputs), dict(sig.outputs)
    if given:
        for i, o in given:
            if i not in ins or o not in outs:
                raise ModelImportError(f"--state {i}:{o}: the signature has inputs {sorted(ins)} and outputs {sorted(outs)}")
            if ins[i].shape != outs[o].shape or ins[i].type != outs[o].type:
                raise ModelImportError(f"--state {i}:{o}: shapes {list(ins[i].shape)} and {list(outs[o].shape)} or dtypes differ")
        return given
    if len(ins) < 2:
        return ()
    pairs, used = [], set()
    for i, ti in ins.items():
        same = [o for o, to in outs.items() if o not in used and to.shape == ti.shape and to.type == ti.type]
        named = [o for o in same if _stem(o) == _stem(i)]
        pick = named if len(named) == 1 else same if len(same) == 1 and len(outs) > 1 else []
        if pick:
            pairs.append((i, pick[0]))
            used.add(pick[0])
    if len(pairs) != len(ins) - 1:
        raise ModelImportError(
            f"cannot tell which of the inputs {sorted(ins)} are recurrent states; name each with --state INPUT:OUTPUT")
    return tuple(pairs)


def _layout(main: TensorInfo, has_state: bool, requested: str | None) -> tuple[Mode, InputKind, str, int]:
    """Mode, input kind, role and frames per item from the main input's shape."""
    shape = main.shape
    if len(shape) == 4:
        mode, kind, role, frames = (Mode.STREAMING, InputKind.CLIP, "frame", 1) if has_state else (Mode.SINGLE, InputKind.IMAGE, "frame", 1)
    elif len(shape) == 5:
        mode, kind, role, frames = Mode.WINDOW, InputKind.CLIP, "frame", shape[1]
    elif len(shape) == 2 or len(shape) == 3 and shape[1] == 1:
        mode, kind, role, frames = (Mode.STREAMING if has_state else Mode.SINGLE), InputKind.SEQUENCE, "sample", 1
    elif len(shape) == 3:
        mode, kind, role, frames = Mode.WINDOW, InputKind.SEQUENCE, "sample", shape[1]
    else:
        raise ModelImportError(f"input {main.name!r} of shape {list(shape)} is neither frames (1,H,W,C), clips (1,T,H,W,C) nor samples (1,F)")
    if requested is not None and requested != mode.value:
        raise ModelImportError(f"--mode {requested}: an input of shape {list(shape)}"
                               f"{' with recurrent states' if has_state else ''} is {mode.value}")
    if mode is Mode.SINGLE and kind is InputKind.SEQUENCE:
        raise ModelImportError(f"input {main.name!r} takes one sample {list(shape)} with no state: not a sequence model (give --state for its states)")
    return mode, kind, role, frames


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split("/"))
    except ValueError:
        raise ModelImportError(f"--preprocess {what}={text!r}: expected numbers separated by /") from None


def _preprocessing(main: TensorInfo, role: str, given: dict[str, str], meta: ModelMetadata | None) -> Preprocessing:
    """The bundle's preprocessing: --preprocess, else the metadata's normalization; missing items are errors."""
    norm = meta.inputs[0] if meta and meta.inputs else None
    size, channels = (main.shape[-3:-1], main.shape[-1]) if role == "frame" else (None, 3)
    if "size" in given and role == "frame":
        want = tuple(int(v) for v in re.split("[x,]", given["size"]))
        if want != tuple(size):
            raise ModelImportError(f"--preprocess size={given['size']}: the model's input is {size[0]}x{size[1]}")
    if "scale" in given:
        scale = float(given["scale"])
        mean = _floats(given["mean"], "mean") if "mean" in given else ()
        std = _floats(given["std"], "std") if "std" in given else tuple(1.0 for _ in mean)
    elif norm is not None and norm.mean:  # the metadata normalizes raw values: (x - mean) / std
        scale, mean, std = 1.0, norm.mean, norm.std
    else:
        hint = "scale=0.00392156862745098 for [0, 1] inputs, or scale=1,mean=127.5,std=127.5 for [-1, 1]" if role == "frame" else "scale=1 (and mean=/std= per feature)"
        raise ModelImportError(f"preprocessing: the file carries no normalization metadata; give --preprocess {hint}")
    if len(mean) == 1 and channels > 1 and role == "frame":
        mean, std = mean * channels, std * channels
    try:
        return Preprocessing(scale=scale, size=None if size is None else (int(size[0]), int(size[1])),
                             color=given.get("color", "rgb"), channels=int(channels), mean=mean, std=std,
                             resize=given.get("resize", "area"))
    except ValueError as exc:
        raise ModelImportError(f"--preprocess: {exc}") from None


def _spec(name: str, t: TensorInfo, role: str) -> TensorSpec:
    if t.dtype not in _PRECISION:
        raise ModelImportError(f"tensor {name!r} has type {t.dtype}, which a bundle cannot feed or read")
    return TensorSpec(name, role, tuple(t.shape), t.dtype, t.scale, t.zero_point)


def _golden(path: Path, graph: GraphSpec, pre: Preprocessing, delegate: str, seed: int) -> tuple[dict, dict]:
    """The model's own output on a seeded input from a zero state."""
    from edge.interpreter import make_interpreter

    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in graph.inputs:
        if spec.role == "state":
            value = np.zeros(spec.shape, np.float32)
        elif spec.role == "frame":
            value = pre.normalize(rng.integers(0, 256, spec.shape, dtype=np.uint8))
        else:
            value = rng.standard_normal(spec.shape).astype(np.float32)
        feeds[spec.name] = adapters.quantize(value, spec.as_adapter_spec())
    runner = make_interpreter(path, delegate=delegate).get_signature_runner(graph.signature)
    return feeds, runner(**feeds)


def _first_load(path: Path) -> Runtime:
    """XNNPACK where it takes the graph, else the reference kernels (recorded with the reason)."""
    from edge.interpreter import make_interpreter

    try:
        make_interpreter(path, delegate="xnnpack")
        return Runtime()
    except BundleError as first:
        try:
            make_interpreter(path, delegate="none")
        except BundleError as exc:
            raise ModelImportError(f"{path.name} does not load here: {exc}") from None
        return Runtime("none", f"XNNPACK refused {path.name}: {first}")


def import_model(model: str | Path, out: str | Path, options: ImportOptions = ImportOptions()) -> Path:
    """Write a bundle for a foreign ``.tflite`` at ``out``; returns ``out``.

    Raises:
        ModelImportError: one line per thing that cannot be inferred or served
            (custom ops without a kernel, dynamic shapes, several signatures, missing
            labels or preprocessing).
        BundleError: the file is not a well-formed TFLite flatbuffer.
    """
    model, out = Path(model), Path(out)
    if not model.is_file():
        raise ModelImportError(f"{model}: file not found")
    if out.exists():
        raise ModelImportError(f"{out}: exists; choose a new bundle directory")
    check_tflite_header(model)
    info = read_model(model)
    data = model.read_bytes()
    edgetpu = EDGETPU_OP in info.custom_ops
    unknown = sorted(set(info.custom_ops) - {EDGETPU_OP})
    if unknown:
        raise ModelImportError(f"{model.name}: custom op {unknown[0]} has no kernel in this runtime")
    sig = _signature(info.signature_io, options.signature, model)
    for name, t in (*sig.inputs, *sig.outputs):
        if any(d < 0 for d in t.shape_signature[1:]):
            raise ModelImportError(f"{model.name}: tensor {name!r} has a dynamic shape {list(t.shape_signature)} that cannot be pinned to one step")
    meta_buf = info.metadata_buffer(METADATA_NAME)
    meta = parse_metadata(meta_buf, data, model.name) if meta_buf else None
    pairs = pair_states(sig, options.states)
    state_in, state_out = {i for i, _ in pairs}, {o for _, o in pairs}
    mains = [(n, t) for n, t in sig.inputs if n not in state_in]
    if len(mains) != 1:
        raise ModelImportError(f"{model.name}: {len(mains)} inputs besides the states ({', '.join(n for n, _ in mains) or 'none'}); "
                               "a bundle feeds exactly one (name the states with --state INPUT:OUTPUT)")
    main_name, main = mains[0]
    mode, kind, role, frames = _layout(main, bool(pairs), options.mode)
    scores = [(n, t) for n, t in sig.outputs if n not in state_out]
    if len(scores) != 1:
        raise ModelImportError(f"{model.name}: {len(scores)} outputs besides the states ({', '.join(n for n, _ in scores)}); "
                               "a bundle needs exactly one score output")
    labels = options.labels or (meta.labels() if meta else ())
    classes = scores[0][1].shape[-1]
    if not labels:
        raise ModelImportError(f"labels: the file carries none; give --labels FILE or --labels a,b,c ({classes} classes)")
    if len(labels) != classes:
        raise ModelImportError(f"labels: {len(labels)} given but the model outputs {classes} classes")
    pre = _preprocessing(main, role, options.preprocess, meta)
    ins = dict(sig.inputs)
    outs = dict(sig.outputs)
    graph = GraphSpec(
        MODEL_FILE, sig.key,
        tuple(sorted((_spec(main_name, main, role), *(_spec(i, ins[i], "state") for i in state_in)), key=lambda s: s.name)),
        tuple(sorted((_spec(scores[0][0], scores[0][1], "probabilities"), *(_spec(o, outs[o], "state") for o in state_out)),
                     key=lambda s: s.name)),
        precision=_PRECISION[main.dtype],
    )
    states = tuple(StateSpec(i, i, o, tuple(ins[i].shape)) for i, o in pairs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copyfile(model, tmp / MODEL_FILE)
        runtime = Runtime() if edgetpu else _first_load(tmp / MODEL_FILE)
        if not edgetpu:  # an Edge TPU graph runs only on the TPU: its self-test runs on the board
            write_golden(tmp, [_golden(tmp / MODEL_FILE, graph, pre, runtime.delegate, options.seed)])
        manifest = Manifest(
            name=options.name or (meta.name if meta and meta.name else model.stem), precision=graph.precision, mode=mode,
            input_kind=kind, graphs=(graph,), preprocessing=pre, states=states, labels=tuple(labels),
            window=Window(frames=frames), source=Source(model_sha256=sha256_file(model), imported=model.name),
            runtime=runtime, versions=library_versions(), edgetpu_compiled=edgetpu,
        )
        write_manifest(tmp, manifest)
        read_bundle(tmp)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out



