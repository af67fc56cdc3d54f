"""The files of a bundle directory: their names, hashes and the golden self-test pair.

Every file name a bundle holds is defined here, and nowhere else.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from edge.errors import BundleError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"  # SSHSIG over the exact bytes of manifest.json (hybrid-edge sign)
SIGNATURE_NAMESPACE = "hybrid-edge-bundle"
GOLDEN = "golden.npz"
VERIFY_REPORT = "verify.json"
SEARCH_REPORT = "search.json"
MODEL_FILE = "model.tflite"  # a one-graph bundle
FRONT_FILE = "front.tflite"  # split bundles: the CNN front end ...
HEAD_FILE = "head.tflite"  # ... and the recurrent head
UNLISTED = frozenset({MANIFEST, SIGNATURE})  # the only files the manifest cannot list
TFLITE_IDENTIFIER = b"TFL3"


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


def golden_prefix(graph: int, graphs: int) -> str:
    """Key prefix of a graph's arrays in ``golden.npz``: none for one graph, ``g<i>_`` for several."""
    return f"g{graph}_" if graphs > 1 else ""


_IN, _OUT = "in_", "out_"


def write_golden(bundle_dir: Path, pairs: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]) -> None:
    """Write one (inputs, outputs) pair of raw tensors per graph, in graph order."""
    arrays: dict[str, np.ndarray] = {}
    for i, (feeds, outs) in enumerate(pairs):
        prefix = golden_prefix(i, len(pairs))
        arrays.update({f"{prefix}{_IN}{k}": v for k, v in feeds.items()})
        arrays.update({f"{prefix}{_OUT}{k}": v for k, v in outs.items()})
    np.savez(bundle_dir / GOLDEN, **arrays)


def read_golden(bundle_dir: Path, graphs: int) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] | None:
    """The golden pairs :func:`write_golden` wrote, or None when the bundle has none.

    Raises:
        BundleError: a graph has no pair.
    """
    path = bundle_dir / GOLDEN
    if not path.is_file():
        return None
    pairs = []
    with np.load(path) as golden:
        for i in range(graphs):
            prefix = golden_prefix(i, graphs)
            feeds = {k[len(prefix + _IN):]: golden[k] for k in golden.files if k.startswith(prefix + _IN)}
            outs = {k[len(prefix + _OUT):]: golden[k] for k in golden.files if k.startswith(prefix + _OUT)}
            if not feeds or not outs:
                raise BundleError(f"{GOLDEN} has no golden pair for graph {i}")
            pairs.append((feeds, outs))
    return pairs
