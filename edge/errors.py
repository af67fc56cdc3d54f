"""Errors the CLI reports as one line and a non-zero exit (no traceback)."""


class HybridEdgeError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    #: what a long-running command measured before it failed (``hybrid-edge run`` prints it, then the error)
    partial: dict | None = None


class BundleError(HybridEdgeError):
    """A bundle is missing, incomplete, tampered with or not a valid model."""


class BackendError(HybridEdgeError):
    """No TFLite interpreter backend (or requested delegate) is available."""


class DataError(HybridEdgeError):
    """Input data is missing, malformed or inconsistent."""


class ConversionError(HybridEdgeError):
    """A model could not be converted (including a crashed converter process)."""


class DeployError(HybridEdgeError):
    """Signing, provisioning or deploying to a board failed; ``code`` names the failure (``E_SIGNATURE`` ...)."""

    def __init__(self, code: str, message: str, board: str | None = None) -> None:
        self.code = code
        self.board = board
        self.detail = message
        super().__init__(f"{board}: {code}: {message}" if board else f"{code}: {message}")
