"""Errors the CLI reports as one line and a non-zero exit (no traceback).

Each class has a ``code``: a stable name that crosses process boundaries (the
converter worker writes it to its error file, the parent raises the same class
again), so callers decide on types and codes, never on message text.
"""

from __future__ import annotations


class HybridEdgeError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    code = "error"
    #: what a long-running command measured before it failed (``hybrid-edge run`` prints it, then the error)
    partial: dict | None = None


class BundleError(HybridEdgeError):
    """A bundle is missing, incomplete, tampered with or not a valid model."""

    code = "bundle"


class DelegateRefused(BundleError):
    """A delegate (XNNPACK, Edge TPU) refused a model that the reference kernels load."""

    code = "delegate_refused"


class BackendError(HybridEdgeError):
    """No TFLite interpreter backend (or requested delegate) is available."""

    code = "backend"


class DataError(HybridEdgeError):
    """Input data is missing, malformed or inconsistent."""

    code = "data"


class ConversionError(HybridEdgeError):
    """A model could not be converted (including a crashed converter process)."""

    code = "conversion"


class ModelImportError(HybridEdgeError):
    """A foreign model cannot be imported as given (something to infer is missing, or it cannot be served here)."""

    code = "model_import"


class UnsafeModelError(ConversionError):
    """The model holds arbitrary Python (a Lambda layer); it is neither loaded nor converted."""

    code = "unsafe_model"


class UnquantizedOpError(ConversionError):
    """An integer-only graph kept a float op that has integer kernels: the quantizer's run-to-run miss."""

    code = "unquantized_op"


def error_class(code: str) -> type[HybridEdgeError]:
    """The error class with this ``code`` (the base class for unknown codes)."""

    def walk(cls: type[HybridEdgeError]):
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    return next((cls for cls in walk(HybridEdgeError) if cls.__dict__.get("code") == code), HybridEdgeError)


class DeployError(HybridEdgeError):
    """Signing, provisioning or deploying to a board failed; ``code`` names the failure (``E_SIGNATURE`` ...)."""

    def __init__(self, code: str, message: str, board: str | None = None) -> None:
        self.code = code
        self.board = board
        self.detail = message
        super().__init__(f"{board}: {code}: {message}" if board else f"{code}: {message}")
