"""Library versions recorded beside every artifact."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


#: distributions that shape a result: the runtime's, the converter's and the training stack's
PACKAGES = ("hybrid-edge", "numpy", "tensorflow", "tensorflow-cpu", "keras", "ai-edge-litert", "tflite-runtime",
            "opencv-python-headless", "opencv-python")


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape a result (absent ones are skipped)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
