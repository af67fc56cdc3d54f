"""One table: precision -> converter settings and allowed options.

Validated up front so a bad request fails with a clear message before any
TensorFlow import or conversion work.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ConversionError


@dataclass(frozen=True)
class Format:
    """Converter settings for one precision."""

    name: str
    description: str
    optimize: bool  # tf.lite.Optimize.DEFAULT
    calibrate: bool  # needs a representative dataset
    ops: str  # "builtins", "int8", "int16x8"
    io_type: str  # "float32", "int8", "uint8", "int16"
    float16: bool = False


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float32", "float weights and activations (reference)", False, False, "builtins", "float32"),
        Format("float16", "float16 weights, float32 compute", True, False, "builtins", "float32", float16=True),
        Format("dynamic", "int8 weights, float activations (dynamic range)", True, False, "builtins", "float32"),
        Format("int8", "full integer: int8 weights, activations and I/O", True, True, "int8", "int8"),
        Format("uint8-io", "int8 inside, uint8 I/O (Edge TPU style)", True, True, "int8", "uint8"),
        Format("int16x8", "int16 activations, int8 weights", True, True, "int16x8", "int16"),
    )
}


def get_format(precision: str) -> Format:
    """The format for a precision name, or a one-line error listing the choices."""
    if precision not in FORMATS:
        raise ConversionError(f"unknown precision {precision!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[precision]
