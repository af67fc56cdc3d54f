"""Frame preprocessing driven by the bundle manifest's ``preprocessing`` block.

Manifest example::

    {"size": [48, 48], "color": "rgb", "scale": 0.00392156862745098,
     "mean": [0, 0, 0], "std": [1, 1, 1], "resize": "area"}

Frames arrive as uint8 HxWx3 in the source's colour order (OpenCV sources give
BGR, declared with ``source_color``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """How a raw frame becomes the model's float input."""

    size: tuple[int, int]
    color: str = "rgb"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    resize: str = "area"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, block: Mapping[str, Any]) -> "Preprocessing":
        """Read the manifest block; unknown keys are kept in ``extra``."""
        known = {"size", "color", "scale", "mean", "std", "resize"}
        return cls(
            size=(int(block["size"][0]), int(block["size"][1])),
            color=str(block.get("color", "rgb")),
            scale=float(block.get("scale", 1.0 / 255.0)),
            mean=tuple(float(v) for v in block.get("mean", (0.0, 0.0, 0.0))),
            std=tuple(float(v) for v in block.get("std", (1.0, 1.0, 1.0))),
            resize=str(block.get("resize", "area")),
            extra={k: v for k, v in block.items() if k not in known},
        )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "color": self.color,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
            **self.extra,
        }

    def __call__(self, frame: np.ndarray, source_color: str = "rgb") -> np.ndarray:
        """Return a float32 HxWxC array ready to quantize into the model input."""
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        h, w = self.size
        if frame.shape[0] != h or frame.shape[1] != w:
            import cv2  # only needed when sizes differ

            interp = cv2.INTER_AREA if self.resize == "area" else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (w, h), interpolation=interp)
        if source_color != self.color:
            frame = frame[:, :, ::-1]
        return self.normalize(frame)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """The per-pixel arithmetic only (scale, mean, std) on uint8 values in model colour order."""
        x = pixels.astype(np.float32) * np.float32(self.scale)
        if any(self.mean) or any(s != 1.0 for s in self.std):
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x
