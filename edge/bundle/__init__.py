"""The bundle format's one owner: read and verify a bundle before any model loads, and write one.

A bundle carries its own truth in ``manifest.json`` (schema: :mod:`edge.bundle.manifest`):
the files with sha256 and size, the tensor specs of each graph (names, shapes,
dtypes, quantization), the recurrent state specs, labels, preprocessing and
provenance. :func:`read_bundle` checks everything, so a tampered or truncated
model or a manifest it does not understand is refused with one clear line
instead of reaching the interpreter. :func:`write_manifest` is the only writer
(the converter, ``sign`` and ``import`` go through it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from edge.bundle.files import (
    FRONT_FILE, GOLDEN, HEAD_FILE, MANIFEST, MODEL_FILE, SEARCH_REPORT, SIGNATURE, SIGNATURE_NAMESPACE, UNLISTED,
    VERIFY_REPORT, check_tflite_header, golden_prefix, manifest_sha256, read_golden, sha256_file, write_golden,
)
from edge.bundle.manifest import (
    DELEGATES, FORMAT, FORMAT_VERSION, Calibration, FileEntry, GraphSpec, InputKind, Manifest, Mode, Release, Runtime,
    Source, StateSpec, TensorSpec, Window, portable_dataset_spec,
)
from edge.errors import BundleError
from edge.preprocess import Preprocessing

__all__ = [
    "Bundle", "Calibration", "DELEGATES", "FORMAT", "FORMAT_VERSION", "FRONT_FILE", "FileEntry", "GOLDEN", "GraphSpec",
    "HEAD_FILE", "InputKind", "MANIFEST", "MODEL_FILE", "Manifest", "Mode", "Preprocessing", "Release", "Runtime",
    "SEARCH_REPORT", "SIGNATURE", "SIGNATURE_NAMESPACE", "Source", "StateSpec", "TensorSpec", "UNLISTED", "VERIFY_REPORT",
    "Window", "check_tflite_header", "golden_prefix", "load_manifest", "manifest_sha256", "portable_dataset_spec",
    "read_bundle", "read_golden", "sha256_file", "write_golden", "write_manifest",
]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its directory and its parsed manifest."""

    path: Path
    manifest: Manifest

    name = property(lambda self: self.manifest.name)
    precision = property(lambda self: self.manifest.precision)
    mode = property(lambda self: self.manifest.mode)
    graphs = property(lambda self: self.manifest.graphs)
    states = property(lambda self: self.manifest.states)
    labels = property(lambda self: self.manifest.labels)
    preprocessing = property(lambda self: self.manifest.preprocessing)
    window = property(lambda self: self.manifest.window)
    source = property(lambda self: self.manifest.source)

    @property
    def delegate(self) -> str:
        """The CPU path the converter proved the graphs load with: ``xnnpack`` unless the manifest says
        otherwise (XNNPACK refuses some integer graphs that the reference kernels run)."""
        return self.manifest.runtime.delegate

    def model_path(self, index: int = 0) -> Path:
        return self.path / self.graphs[index].file

    def size_bytes(self) -> int:
        """Total size of the model flatbuffers."""
        return sum(self.model_path(i).stat().st_size for i in range(len(self.graphs)))


def load_manifest(path: str | Path) -> Manifest:
    """Parse ``path/manifest.json`` (no file is hashed: :func:`read_bundle` does that)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError(f"{path}: not a bundle directory")
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST}; is this a bundle written by `hybrid-edge convert`?")
    try:
        raw = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from None
    return Manifest.from_manifest(raw)


def _verify_files(path: Path, manifest: Manifest) -> None:
    for name, entry in manifest.files.items():
        file_path = path / name
        if Path(name).is_absolute() or ".." in Path(name).parts or name in UNLISTED:
            raise BundleError(f"{MANIFEST}: file name {name!r} leaves the bundle or is reserved")
        if not file_path.is_file():
            raise BundleError(f"{path}: file {name} listed in the manifest is missing")
        size = file_path.stat().st_size
        if size != entry.size:
            raise BundleError(f"{name}: size {size} bytes differs from the manifest's {entry.size} (truncated or replaced)")
        digest = sha256_file(file_path)
        if digest != entry.sha256:
            raise BundleError(f"{name}: sha256 mismatch (manifest {entry.sha256[:12]}…, file {digest[:12]}…); the file is corrupt or was modified")
        if name.endswith(".tflite"):
            check_tflite_header(file_path)
            from edge.flatbuffer import read_model

            read_model(file_path)  # offsets, counts and indices in bounds before any interpreter sees it


def _check_specs(m: Manifest) -> None:
    for i, g in enumerate(m.graphs):
        if g.file not in m.files:
            raise BundleError(f"{MANIFEST} graphs[{i}]: file {g.file!r} is not listed in files")
    last = m.graphs[-1]
    ins = {s.name: s for s in last.inputs}
    outs = {s.name: s for s in last.outputs}
    for st in m.states:
        if st.input not in ins or st.output not in outs:
            raise BundleError(f"{MANIFEST}: state {st.name!r} refers to unknown tensors {st.input!r}/{st.output!r}")
        if ins[st.input].shape != st.shape or outs[st.output].shape != st.shape:
            raise BundleError(f"{MANIFEST}: state {st.name!r} shape {st.shape} differs from its tensors")
    probs = last.output("probabilities")
    if m.labels and probs.shape[-1] != len(m.labels):
        raise BundleError(f"{MANIFEST}: {len(m.labels)} labels but the model outputs {probs.shape[-1]} classes")


def read_bundle(path: str | Path, *, strict_files: bool = False) -> Bundle:
    """Read ``path/manifest.json`` and verify every file before anything loads.

    ``strict_files`` also refuses a file in the directory that the manifest does
    not list (what a board accepts).

    Raises:
        BundleError: with a one-line reason (missing file, sha256 or size mismatch,
            not a TFLite flatbuffer, malformed flatbuffer structure, an unknown
            mode, delegate or input kind, preprocessing without scale,
            inconsistent specs).
    """
    path = Path(path)
    manifest = load_manifest(path)
    _verify_files(path, manifest)
    if strict_files:
        extra = sorted(p.name for p in path.iterdir() if p.name not in manifest.files and p.name not in UNLISTED)
        if extra:
            raise BundleError(f"{path}: {extra[0]} is not listed in the manifest ({len(extra)} unlisted file(s))")
    _check_specs(manifest)
    return Bundle(path, manifest)


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Path:
    """Hash every file in ``bundle_dir`` into ``manifest.files`` and write ``manifest.json`` atomically.

    Returns the manifest path. Call it again after adding a file (``verify.json``).
    """
    files = {
        p.name: FileEntry(sha256_file(p), p.stat().st_size)
        for p in sorted(bundle_dir.iterdir()) if p.is_file() and p.name not in UNLISTED and not p.name.startswith(".")
    }
    full = replace(manifest, files=files)
    _check_specs(full)
    out = bundle_dir / MANIFEST
    tmp = bundle_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(full.to_manifest(), indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    return out
