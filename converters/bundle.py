"""Tensor specs for the bundle manifest from a converted graph's signature (the format: :mod:`edge.bundle`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.bundle import TensorSpec


def tensor_specs(details: dict[str, dict[str, Any]], roles: dict[str, str]) -> tuple[TensorSpec, ...]:
    """Manifest tensor specs from a signature runner's details, in name order."""
    specs = []
    for name in sorted(details):
        d = details[name]
        scale, zero_point = (d.get("quantization") or (0.0, 0))[:2]
        specs.append(TensorSpec(name, roles[name], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name,
                                float(scale), int(zero_point)))
    return tuple(specs)
