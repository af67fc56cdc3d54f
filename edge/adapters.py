"""Quantize and dequantize tensors from their own quantization parameters.

Every scale and zero point comes from the tensor spec (interpreter details or the
bundle manifest), never from constants: a re-calibrated model just works.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

_INTEGER_TYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}


def quant_params(spec: Mapping[str, Any]) -> tuple[float, int]:
    """Return ``(scale, zero_point)`` of an interpreter tensor detail (or :meth:`TensorSpec.as_adapter_spec`);
    scale 0 means "not quantized"."""
    q = spec.get("quantization") or (0.0, 0)
    return float(q[0]), int(q[1])


def dtype_of(spec: Mapping[str, Any]) -> np.dtype:
    """The numpy dtype of a tensor spec (``dtype`` may be a name or a numpy type)."""
    return np.dtype(spec["dtype"])


def quantize(values: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Convert float values to the tensor's dtype (a no-op cast for float tensors)."""
    dtype = dtype_of(spec)
    if dtype.kind == "f":
        return np.asarray(values, dtype=dtype)
    scale, zero_point = quant_params(spec)
    if scale == 0.0:
        return np.asarray(values).astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(values, dtype=np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Convert a tensor's raw values to float32."""
    dtype = dtype_of(spec)
    if dtype.kind == "f":
        return np.asarray(values, dtype=np.float32)
    scale, zero_point = quant_params(spec)
    if scale == 0.0:
        return np.asarray(values, dtype=np.float32)
    return (np.asarray(values, dtype=np.float32) - zero_point) * np.float32(scale)


def requantize(values: np.ndarray, src: Mapping[str, Any], dst: Mapping[str, Any]) -> np.ndarray:
    """Move raw values from one tensor's encoding to another's (state feedback).

    Identical encodings pass through untouched, so float models feed back exactly.
    """
    if dtype_of(src) == dtype_of(dst) and quant_params(src) == quant_params(dst):
        return values
    return quantize(dequantize(values, src), dst)


def get_scores(raw: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Class probabilities (float32, 1-D) from a raw output tensor."""
    return dequantize(raw, spec).reshape(-1)


def frame_lut(normalize: Any, spec: Mapping[str, Any], channels: int = 3) -> np.ndarray:
    """A (256, C) table: uint8 pixel value -> encoded input value, per channel.

    Preprocessing (scale, mean, std) followed by quantization is a function of the
    pixel value and channel only, so one table lookup replaces the float
    arithmetic per frame with results identical to :func:`quantize` of
    ``normalize(pixels)``.
    """
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], channels, axis=1)
    return quantize(normalize(values), spec)


def state_lut(src: Mapping[str, Any], dst: Mapping[str, Any]) -> np.ndarray | None:
    """A 256-entry table re-encoding an 8-bit tensor into another 8-bit encoding.

    Indexed by the raw byte (``values.view(np.uint8)``); identical to
    :func:`requantize`. None when the encodings are not both 8-bit.
    """
    s, d = dtype_of(src), dtype_of(dst)
    if s.itemsize != 1 or d.itemsize != 1 or s.kind not in "iu":
        return None
    raw = np.arange(256, dtype=np.uint8).view(s)
    return np.ascontiguousarray(requantize(raw, src, dst)).astype(d)
