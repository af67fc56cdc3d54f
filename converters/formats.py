"""One table: precision -> converter settings and allowed options.

Validated up front so a bad request fails with a clear message before any
TensorFlow import or conversion work. A ``mixed`` format names the formats of
its two graphs: the per-frame CNN front end and the recurrent head, chained by
the runtime through their ``features`` tensors.
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
    parts: tuple[str, str] | None = None  # (front format, head format) for split bundles
    window: bool = True  # allowed with --window

    @property
    def integer_only(self) -> bool:
        """Every activation is integer: the graph may contain no float op."""
        return self.ops in ("int8", "int16x8")


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float32", "float weights and activations (reference)", False, False, "builtins", "float32"),
        Format("float16", "float16 weights, float32 compute", True, False, "builtins", "float32", float16=True),
        Format("dynamic", "int8 weights, float activations (dynamic range)", True, False, "builtins", "float32"),
        Format("int8", "int8 weights, activations and I/O; recurrent state float32 (--recurrent-state)", True, True, "int8", "int8"),
        Format("uint8-io", "int8 inside, uint8 I/O (Edge TPU style)", True, True, "int8", "uint8"),
        Format("int16x8", "int16 activations, int8 weights, int16 I/O", True, True, "int16x8", "int16"),
        Format("mixed", "int8 CNN front end + float32 recurrent head (two graphs)", True, True, "int8", "int8",
               parts=("int8", "float32"), window=False),
        Format("mixed-int16x8", "int8 CNN front end + int16x8 recurrent head (two graphs)", True, True, "int8", "int8",
               parts=("int8", "int16x8"), window=False),
    )
}


def get_format(precision: str) -> Format:
    """The format for a precision name, or a one-line error listing the choices."""
    if precision not in FORMATS:
        raise ConversionError(f"unknown precision {precision!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[precision]
