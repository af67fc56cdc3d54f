"""Write a bundle directory: model file(s), manifest with sha256, golden pair.

The edge side (:mod:`edge.bundle`) reads exactly this format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import FORMAT, FORMAT_VERSION, MANIFEST, sha256_file


def tensor_specs(details: dict[str, dict[str, Any]], roles: dict[str, str]) -> list[dict[str, Any]]:
    """Manifest tensor specs from a signature runner's details, in name order."""
    specs = []
    for name in sorted(details):
        d = details[name]
        scale, zero_point = (d.get("quantization") or (0.0, 0))[:2]
        specs.append({
            "name": name,
            "role": roles[name],
            "shape": [int(v) for v in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
        })
    return specs


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> Path:
    """Add file hashes/sizes for every file in the directory and write the manifest."""
    files = {}
    for path in sorted(bundle_dir.iterdir()):
        if path.is_file() and path.name != MANIFEST:
            files[path.name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files}
    out = bundle_dir / MANIFEST
    out.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return out
