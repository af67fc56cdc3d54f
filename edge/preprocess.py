"""Preprocessing: the one function from raw data to the model's float input.

Training, calibration, verification, evaluation and the runtime (including its
per-frame lookup tables) all go through :class:`Preprocessing`, so the model sees
the same numbers everywhere. The manifest block (also the model card's)::

    {"size": [48, 48], "color": "rgb", "channels": 3, "scale": 0.00392156862745098,
     "mean": [], "std": [], "resize": "area", "pad_value": 0.0}

Frames arrive as uint8 HxW or HxWxC in the source's colour order (OpenCV sources
give BGR, declared with ``source_color``). Sensor samples arrive as float rows
(NaN marks front padding). ``scale`` is required: a sensor bundle says 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

_KNOWN = ("size", "color", "channels", "scale", "mean", "std", "resize", "pad_value")


@dataclass(frozen=True)
class Preprocessing:
    """How raw data becomes the model's float input: ``(x * scale - mean) / std``; padding -> ``pad_value``.

    ``size`` (H, W) and ``channels`` describe frames (None for sensor series);
    ``mean``/``std`` are per channel or per feature, empty for none.
    """

    scale: float
    size: tuple[int, int] | None = None
    color: str = "rgb"
    channels: int = 3
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    resize: str = "area"
    pad_value: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # descriptive keys (padding, missing values, clip sampling)

    def __post_init__(self) -> None:
        if self.color not in ("rgb", "bgr"):
            raise ValueError(f"color {self.color!r} is not rgb or bgr")
        if self.resize not in ("area", "linear"):
            raise ValueError(f"resize {self.resize!r} is not area or linear")
        if len(self.mean) != len(self.std):
            raise ValueError(f"{len(self.mean)} mean values but {len(self.std)} std values")
        if any(s == 0 for s in self.std):
            raise ValueError("a std value is 0")

    @classmethod
    def from_manifest(cls, block: Mapping[str, Any]) -> "Preprocessing":
        """Read a manifest (or model card) block; ``scale`` is required, unknown keys are kept in ``extra``."""
        if "scale" not in block:
            raise ValueError("preprocessing has no 'scale' (1/255 for uint8 frames, 1.0 for sensor values)")
        size = block.get("size")
        mean = tuple(float(v) for v in block.get("mean", ()))
        std = tuple(float(v) for v in block.get("std", ()))
        if mean and not any(mean) and all(s == 1.0 for s in std):  # an identity written as zeros and ones
            mean, std = (), ()
        return cls(
            scale=float(block["scale"]),
            size=(int(size[0]), int(size[1])) if size is not None else None,
            color=str(block.get("color", "rgb")),
            channels=int(block.get("channels", 3)),
            mean=mean,
            std=std,
            resize=str(block.get("resize", "area")),
            pad_value=float(block.get("pad_value", 0.0)),
            extra={k: v for k, v in block.items() if k not in _KNOWN},
        )

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scale": self.scale, "mean": list(self.mean), "std": list(self.std), "pad_value": self.pad_value, **self.extra}
        if self.size is not None:
            out.update(size=list(self.size), color=self.color, channels=self.channels, resize=self.resize)
        return out

    def prepare(self, frame: np.ndarray, source_color: str = "rgb") -> np.ndarray:
        """A raw frame at the model's size, channel count and colour order (still uint8)."""
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], self.channels, axis=2)
        if self.size is not None and (frame.shape[0] != self.size[0] or frame.shape[1] != self.size[1]):
            import cv2  # only needed when sizes differ

            h, w = self.size
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if self.resize == "area" else cv2.INTER_LINEAR)
        if source_color != self.color:
            frame = frame[..., ::-1]
        return frame

    def __call__(self, frame: np.ndarray, source_color: str = "rgb") -> np.ndarray:
        """One raw frame -> float32 HxWxC ready to quantize into the model input."""
        return self.normalize(self.prepare(frame, source_color))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """The arithmetic: any array of raw values (frames, clips, series; last axis channels/features) -> float32."""
        x = np.asarray(x)
        out = x.astype(np.float32) * np.float32(self.scale)
        if self.mean:
            out = (out - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if not np.issubdtype(x.dtype, np.integer):
            out = np.nan_to_num(out, nan=self.pad_value)
        return out
