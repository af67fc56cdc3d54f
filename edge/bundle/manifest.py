"""The ``manifest.json`` schema: one typed spec per block, each with ``to_manifest``/``from_manifest``.

This module is the only place a manifest key is spelled: the converter builds a
:class:`Manifest` and writes it through :func:`edge.bundle.write_manifest`; the
runtime reads it through :func:`edge.bundle.read_bundle`. ``from_manifest``
checks what it reads and raises :class:`~edge.errors.BundleError` with one line
(an unknown mode or delegate is refused, not defaulted).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Mapping

from edge.bundle.files import MANIFEST
from edge.errors import BundleError
from edge.preprocess import Preprocessing

FORMAT = "hybrid-edge-bundle"
FORMAT_VERSION = 1


class Mode(enum.Enum):
    """How a bundle consumes frames."""

    STREAMING = "streaming"  # one frame + state per step
    WINDOW = "window"  # the whole last-T-frames clip per step (naive deployment)
    SINGLE = "single"  # one frame, no state (plain classifier)


class InputKind(str, enum.Enum):
    """What one model input item is."""

    CLIP = "clip"  # T uint8 frames
    SEQUENCE = "sequence"  # T float sensor samples
    IMAGE = "image"  # one uint8 frame


DELEGATES = ("xnnpack", "none")  # the CPU paths a bundle can record (edgetpu is asked for at run time)
ROLES_IN = frozenset({"frame", "sample", "state", "features"})
ROLES_OUT = frozenset({"probabilities", "state", "features"})


def _need(d: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise BundleError(f"{where}: expected an object, got {type(d).__name__}")
    if key not in d:
        raise BundleError(f"{where}: missing field {key!r}")
    return d[key]


def _enum(cls: type[enum.Enum], value: Any, where: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise BundleError(f"{where}: unknown value {value!r} (expected one of {allowed})") from None


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
    def from_manifest(cls, d: Mapping[str, Any]) -> "TensorSpec":
        q = d.get("quantization") or {}
        return cls(str(d["name"]), str(d["role"]), tuple(int(v) for v in d["shape"]), str(d["dtype"]),
                   float(q.get("scale", 0.0)), int(q.get("zero_point", 0)))

    def to_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "shape": list(self.shape), "dtype": self.dtype,
                "quantization": {"scale": self.scale, "zero_point": self.zero_point}}

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

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "StateSpec":
        initial = str(d.get("initial", "zeros"))
        if initial != "zeros":
            raise BundleError(f"state {d['name']!r}: initial {initial!r} is not supported (zeros)")
        return cls(str(d["name"]), str(d["input"]), str(d["output"]), tuple(int(v) for v in d["shape"]), initial)

    def to_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "input": self.input, "output": self.output, "shape": list(self.shape), "initial": self.initial}


@dataclass(frozen=True)
class GraphSpec:
    """One flatbuffer of the bundle and its signature."""

    file: str
    signature: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    precision: str = ""  # the format this graph was converted with (split bundles mix two)

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any], where: str) -> "GraphSpec":
        try:
            inputs = tuple(TensorSpec.from_manifest(s) for s in _need(d, "inputs", where))
            outputs = tuple(TensorSpec.from_manifest(s) for s in _need(d, "outputs", where))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: malformed tensor spec ({exc})") from None
        for spec in inputs:
            if spec.role not in ROLES_IN:
                raise BundleError(f"{where}: input {spec.name!r} has unknown role {spec.role!r}")
        for spec in outputs:
            if spec.role not in ROLES_OUT:
                raise BundleError(f"{where}: output {spec.name!r} has unknown role {spec.role!r}")
        return cls(str(_need(d, "file", where)), str(d.get("signature", "serving_default")), inputs, outputs, str(d.get("precision", "")))

    def to_manifest(self) -> dict[str, Any]:
        return {"file": self.file, "signature": self.signature, "precision": self.precision,
                "inputs": [s.to_manifest() for s in self.inputs], "outputs": [s.to_manifest() for s in self.outputs]}

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
class Window:
    """Frames per model input item (``window`` mode feeds them all each step) and the stride between them."""

    frames: int = 1
    stride: int = 1

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Window":
        return cls(int(d.get("frames", 1)), int(d.get("stride", 1)))

    def to_manifest(self) -> dict[str, Any]:
        return {"frames": self.frames, "stride": self.stride}


def portable_dataset_spec(spec: str) -> str:
    """A dataset spec without the host's absolute path (``ucr:/home/me/data/X,seed=0`` -> ``ucr:X,seed=0``)."""
    kind, sep, rest = spec.partition(":")
    first, comma, tail = rest.partition(",")
    if sep and PurePath(first).is_absolute():
        first = PurePath(first).name
    return f"{kind}{sep}{first}{comma}{tail}"


@dataclass(frozen=True)
class Source:
    """Where the model came from: a training run (by name, never a host path) or an imported file."""

    model_sha256: str
    dataset: str = ""
    run: str = ""
    imported: str = ""

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Source":
        return cls(str(d.get("model_sha256", "")), str(d.get("dataset", "")), str(d.get("run", "")), str(d.get("imported", "")))

    def to_manifest(self) -> dict[str, Any]:
        return {k: v for k, v in (("model_sha256", self.model_sha256), ("dataset", self.dataset), ("run", self.run),
                                  ("imported", self.imported)) if v}


@dataclass(frozen=True)
class Calibration:
    """What the int8 ranges were calibrated on (zero samples: nothing was calibrated)."""

    samples: int = 0
    states: str = ""
    stream_fraction: float = 0.0

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Calibration":
        return cls(int(d.get("samples", 0)), str(d.get("states", "")), float(d.get("stream_fraction", 0.0)))

    def to_manifest(self) -> dict[str, Any]:
        return {"samples": self.samples, "states": self.states, "stream_fraction": self.stream_fraction}


@dataclass(frozen=True)
class Runtime:
    """The CPU path the converter proved the graphs load with, and why when it is not XNNPACK."""

    delegate: str = "xnnpack"
    why: str = ""

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Runtime":
        delegate = d.get("delegate", "xnnpack")
        if delegate not in DELEGATES:
            raise BundleError(f"{FORMAT} manifest: runtime.delegate {delegate!r} is not one of {', '.join(DELEGATES)}")
        return cls(str(delegate), str(d.get("why", "")))

    def to_manifest(self) -> dict[str, Any]:
        return {"delegate": self.delegate, **({"why": self.why} if self.why else {})}


@dataclass(frozen=True)
class Release:
    """Added by ``hybrid-edge sign``: a sequence number that must grow, and the signing key's fingerprint."""

    seq: int
    key: str

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Release":
        seq = d.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise BundleError(f"manifest release.seq {seq!r} is not a non-negative integer")
        return cls(seq, str(d.get("key", "")))

    def to_manifest(self) -> dict[str, Any]:
        return {"seq": self.seq, "key": self.key}


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle as the manifest pins it."""

    sha256: str
    size: int

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "FileEntry":
        return cls(str(d["sha256"]), int(d["size"]))

    def to_manifest(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """The whole ``manifest.json``; ``files`` is filled by :func:`edge.bundle.write_manifest`."""

    name: str
    precision: str
    mode: Mode
    input_kind: InputKind
    graphs: tuple[GraphSpec, ...]
    preprocessing: Preprocessing
    states: tuple[StateSpec, ...] = ()
    labels: tuple[str, ...] = ()
    window: Window = Window()
    source: Source = Source("")
    calibration: Calibration = Calibration()
    runtime: Runtime = Runtime()
    versions: dict[str, str] = field(default_factory=dict)
    edgetpu_compiled: bool = False  # the graphs hold Edge TPU custom ops: the runtime requires the delegate
    release: Release | None = None
    files: dict[str, FileEntry] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any]) -> "Manifest":
        """Parse and check a manifest object (structure only; files are checked by ``read_bundle``)."""
        where = MANIFEST
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise BundleError(f"{where}: not a {FORMAT} manifest")
        if d.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"{where}: format_version {d.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
        try:
            files = {str(k): FileEntry.from_manifest(v) for k, v in _need(d, "files", where).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where}: malformed files block ({exc})") from None
        graphs = tuple(GraphSpec.from_manifest(g, f"{where} graphs[{i}]") for i, g in enumerate(_need(d, "graphs", where)))
        if not graphs:
            raise BundleError(f"{where}: no graphs")
        kind = _enum(InputKind, _need(d, "input_kind", where), f"{where} input_kind")
        try:
            pre = Preprocessing.from_manifest(_need(d, "preprocessing", where))
            states = tuple(StateSpec.from_manifest(s) for s in d.get("states", []))
            window = Window.from_manifest(d.get("window") or {})
            release = Release.from_manifest(d["release"]) if d.get("release") is not None else None
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: malformed block ({exc})") from None
        if kind is not InputKind.SEQUENCE and pre.size is None:
            raise BundleError(f"{where}: preprocessing has no size for {kind.value} inputs")
        return cls(
            name=str(d.get("name", "")), precision=str(_need(d, "precision", where)),
            mode=_enum(Mode, _need(d, "mode", where), f"{where} mode"), input_kind=kind, graphs=graphs,
            preprocessing=pre, states=states, labels=tuple(str(v) for v in d.get("labels", [])), window=window,
            source=Source.from_manifest(d.get("source") or {}), calibration=Calibration.from_manifest(d.get("calibration") or {}),
            runtime=Runtime.from_manifest(d.get("runtime") or {}), versions={str(k): str(v) for k, v in (d.get("versions") or {}).items()},
            edgetpu_compiled=bool(d.get("edgetpu_compiled", False)), release=release, files=files,
        )

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name, "precision": self.precision,
            "mode": self.mode.value, "input_kind": self.input_kind.value, "graphs": [g.to_manifest() for g in self.graphs],
            "states": [s.to_manifest() for s in self.states], "labels": list(self.labels),
            "preprocessing": self.preprocessing.to_manifest(), "window": self.window.to_manifest(),
            "source": self.source.to_manifest(), "calibration": self.calibration.to_manifest(),
            "runtime": self.runtime.to_manifest(), "versions": dict(self.versions), "edgetpu_compiled": self.edgetpu_compiled,
            "files": {k: v.to_manifest() for k, v in self.files.items()},
        }
        if self.release is not None:
            out["release"] = self.release.to_manifest()
        return out
