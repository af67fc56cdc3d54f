"""Private attributes of TensorFlow, LiteRT and Keras objects, in one place.

Nothing here imports those libraries (the runtime never imports TensorFlow):
callers pass the objects in. When an upgrade renames one of these, this is the
only file to change. Op lists of a model file come from :mod:`edge.flatbuffer`;
the interpreter's own list is needed only after delegation.
"""

from __future__ import annotations

from typing import Any

#: ``ConverterErrorData.ErrorCode`` values of TFLite converter errors
NEEDS_FLEX_OPS = 1
NEEDS_CUSTOM_OPS = 2


def ops_details(interpreter: Any) -> list[dict[str, Any]]:
    """The interpreter's execution plan as it runs (``DELEGATE`` nodes for delegated partitions)."""
    return interpreter._get_ops_details()


def keras_input_name(tensor: Any) -> str:
    """The InputLayer name of a Keras symbolic input tensor."""
    return tensor._keras_history.operation.name


def debugger_interpreter(debugger: Any, replacement: Any = None) -> Any:
    """A ``QuantizationDebugger``'s interpreter of the debug model; ``replacement`` is installed first."""
    if replacement is not None:
        debugger._quant_interpreter = replacement
    return debugger._quant_interpreter


def converter_error_codes(exc: BaseException) -> set[int]:
    """The error codes a TFLite ``ConverterError`` carries (none for other exceptions)."""
    return {int(e.error_code) for e in getattr(exc, "errors", ())}


def call_takes_training(layer: Any) -> bool:
    """True if a Keras layer's ``call`` accepts a ``training`` argument."""
    return bool(layer._call_has_training_arg)
