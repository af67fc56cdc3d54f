"""Read and verify a bundle directory before any model is loaded.

A bundle carries its own truth in ``manifest.json``: the files with sha256 and
size, the tensor specs of each graph (names, shapes, dtypes, quantization), the
recurrent state specs, labels, preprocessing and provenance. Everything is
checked here so a tampered or truncated model is refused with one clear line
instead of reaching the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BundleError
from edge.preprocess import Preprocessing

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"  # SSHSIG over the exact bytes of manifest.json (hybrid-edge sign)
SIGNATURE_NAMESPACE = "hybrid-edge-bundle"
GOLDEN = "golden.npz"
VERIFY_REPORT = "verify.json"
FORMAT = "hybrid-edge-bundle"
FORMAT_VERSION = 1
TFLITE_IDENTIFIER = b"TFL3"
_ROLES_IN = {"frame", "sample", "state", "features"}
_ROLES_OUT = {"probabilities", "state", "features"}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_sha256(path: str | Path) -> str:
    """The identity of a bundle: sha256 of its ``manifest.json`` bytes (which pin every file's sha256)."""
    return sha256_file(Path(path) / MANIFEST)


def golden_prefix(graph: int, graphs: int) -> str:
    """Key prefix of a graph's arrays in ``golden.npz``: none for one graph, ``g<i>_`` for several.

    The arrays are ``<prefix>in_<input name>`` and ``<prefix>out_<output name>``.
    """
    return f"g{graph}_" if graphs > 1 else ""


def check_tflite_header(path: Path) -> None:
    """Cheap structural checks of a TFLite flatbuffer: identifier and root offset."""
    size = path.stat().st_size
    if size < 16:
        raise BundleError(f"{path.name}: {size} bytes is too small to be a TFLite model")
    with open(path, "rb") as fh:
        head = fh.read(8)
    (root,) = struct.unpack("<I", head[:4])
    if head[4:8] != TFLITE_IDENTIFIER:
        raise BundleError(f"{path.name}: not a TFLite flatbuffer (identifier {head[4:8]!r}, expected b'TFL3')")
    if root < 8 or root + 4 > size:
        raise BundleError(f"{path.name}: root table offset {root} is outside the {size}-byte file")


@dataclass(frozen=True)
class TensorSpec:
    """One signature input or output of a graph."""

    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> "TensorSpec":
        q = d.get("quantization") or {}
        return cls(
            name=str(d["name"]),
            role=str(d["role"]),
            shape=tuple(int(v) for v in d["shape"]),
            dtype=str(d["dtype"]),
            scale=float(q.get("scale", 0.0)),
            zero_point=int(q.get("zero_point", 0)),
        )

    def as_adapter_spec(self) -> dict[str, Any]:
        """The mapping :mod:`edge.adapters` functions take."""
        return {"dtype": self.dtype, "quantization": (self.scale, self.zero_point)}


@dataclass(frozen=True)
class StateSpec:
    """A recurrent state: fed to ``input``, read back from ``output`` after each step."""

    name: str
    input: str
    output: str
    shape: tuple[int, ...]
    initial: str = "zeros"


@dataclass(frozen=True)
class GraphSpec:
    """One flatbuffer of the bundle and its signature."""

    file: str
    signature: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, role: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.role == role:
                return spec
        raise BundleError(f"{self.file}: no input with role {role!r}")

    def output(self, role: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.role == role:
                return spec
        raise BundleError(f"{self.file}: no output with role {role!r}")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: paths, graphs, states and metadata from the manifest."""

    path: Path
    manifest: dict[str, Any]
    graphs: tuple[GraphSpec, ...]
    states: tuple[StateSpec, ...]
    labels: tuple[str, ...]
    preprocessing: Preprocessing

    @property
    def precision(self) -> str:
        return str(self.manifest.get("precision", "unknown"))

    @property
    def mode(self) -> str:
        return str(self.manifest.get("mode", "streaming"))

    @property
    def delegate(self) -> str:
        """The CPU path the converter proved the graphs load with: ``xnnpack`` unless the manifest says
        otherwise (XNNPACK refuses some integer graphs that the reference kernels run)."""
        value = (self.manifest.get("runtime") or {}).get("delegate", "xnnpack")
        if value not in ("xnnpack", "none"):
            raise BundleError(f"{self.path}: manifest runtime.delegate {value!r} is not xnnpack or none")
        return str(value)

    def model_path(self, index: int = 0) -> Path:
        return self.path / self.graphs[index].file

    def size_bytes(self) -> int:
        """Total size of the model flatbuffers."""
        return sum(self.model_path(i).stat().st_size for i in range(len(self.graphs)))


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise BundleError(f"{where}: missing field {key!r}")
    return d[key]


def _load_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"{path}: not a bundle directory")
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST}; is this a bundle written by `hybrid-edge convert`?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
    return manifest


def _verify_files(path: Path, manifest: dict[str, Any]) -> None:
    files = _require(manifest, "files", MANIFEST)
    for name, meta in files.items():
        file_path = path / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{MANIFEST}: file name {name!r} leaves the bundle")
        if not file_path.is_file():
            raise BundleError(f"{path}: file {name} listed in the manifest is missing")
        size = file_path.stat().st_size
        if size != int(meta["size"]):
            raise BundleError(f"{name}: size {size} bytes differs from the manifest's {meta['size']} (truncated or replaced)")
        digest = sha256_file(file_path)
        if digest != meta["sha256"]:
            raise BundleError(f"{name}: sha256 mismatch (manifest {meta['sha256'][:12]}…, file {digest[:12]}…); the file is corrupt or was modified")
        if name.endswith(".tflite"):
            check_tflite_header(file_path)
            from edge.flatbuffer import read_model

            read_model(file_path)  # offsets, counts and indices in bounds before any interpreter sees it


def _parse_graphs(manifest: dict[str, Any]) -> tuple[GraphSpec, ...]:
    graphs = []
    for i, g in enumerate(_require(manifest, "graphs", MANIFEST)):
        where = f"{MANIFEST} graphs[{i}]"
        if _require(g, "file", where) not in manifest["files"]:
            raise BundleError(f"{where}: file {g['file']!r} is not listed in files")
        try:
            inputs = tuple(TensorSpec.from_manifest(s) for s in _require(g, "inputs", where))
            outputs = tuple(TensorSpec.from_manifest(s) for s in _require(g, "outputs", where))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: malformed tensor spec ({exc})") from None
        for spec in inputs:
            if spec.role not in _ROLES_IN:
                raise BundleError(f"{where}: input {spec.name!r} has unknown role {spec.role!r}")
        for spec in outputs:
            if spec.role not in _ROLES_OUT:
                raise BundleError(f"{where}: output {spec.name!r} has unknown role {spec.role!r}")
        graphs.append(GraphSpec(g["file"], g.get("signature", "serving_default"), inputs, outputs))
    if not graphs:
        raise BundleError(f"{MANIFEST}: no graphs")
    return tuple(graphs)


def _parse_states(manifest: dict[str, Any], graphs: tuple[GraphSpec, ...]) -> tuple[StateSpec, ...]:
    last = graphs[-1]
    in_names = {s.name: s for s in last.inputs}
    out_names = {s.name: s for s in last.outputs}
    states = []
    for d in manifest.get("states", []):
        st = StateSpec(d["name"], d["input"], d["output"], tuple(int(v) for v in d["shape"]), d.get("initial", "zeros"))
        if st.input not in in_names or st.output not in out_names:
            raise BundleError(f"{MANIFEST}: state {st.name!r} refers to unknown tensors {st.input!r}/{st.output!r}")
        if in_names[st.input].shape != st.shape or out_names[st.output].shape != st.shape:
            raise BundleError(f"{MANIFEST}: state {st.name!r} shape {st.shape} differs from its tensors")
        states.append(st)
    return tuple(states)


def read_bundle(path: str | Path) -> Bundle:
    """Read ``path/manifest.json`` and verify every file before anything loads.

    Raises:
        BundleError: with a one-line reason (missing file, sha256 or size mismatch,
            not a TFLite flatbuffer, malformed flatbuffer structure, inconsistent specs).
    """
    path = Path(path)
    manifest = _load_manifest(path)
    _verify_files(path, manifest)
    graphs = _parse_graphs(manifest)
    states = _parse_states(manifest, graphs)
    labels = tuple(str(v) for v in manifest.get("labels", []))
    probs = graphs[-1].output("probabilities")
    if labels and probs.shape[-1] != len(labels):
        raise BundleError(f"{MANIFEST}: {len(labels)} labels but the model outputs {probs.shape[-1]} classes")
    try:
        pre = Preprocessing.from_manifest(_require(manifest, "preprocessing", MANIFEST))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{MANIFEST}: malformed preprocessing block ({exc})") from None
    return Bundle(path, manifest, graphs, states, labels, pre)
