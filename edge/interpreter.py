"""Build TFLite interpreters: one function, backend fallback, threads, delegates.

Order of backends: ``ai_edge_litert`` (maintained), ``tflite_runtime`` (legacy
boards), then ``tensorflow.lite`` *only if TensorFlow is already imported* — the
runtime never pays TensorFlow's import cost itself.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BackendError

EDGETPU_LIBRARY = "libedgetpu.so.1"


@dataclass(frozen=True)
class Backend:
    """A loaded interpreter module and its name."""

    name: str
    module: Any


def load_backend(preferred: str | None = None) -> Backend:
    """Return the first importable TFLite backend (or ``preferred``, if given)."""
    candidates = [
        ("ai-edge-litert", "ai_edge_litert.interpreter"),
        ("tflite-runtime", "tflite_runtime.interpreter"),
    ]
    tf_module = sys.modules.get("tensorflow")
    if tf_module is not None:
        candidates.append(("tensorflow", "tensorflow.lite"))
    if preferred:
        candidates = [c for c in candidates if c[0] == preferred]
    tried = []
    for name, module_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            tried.append(f"{name} ({exc.__class__.__name__})")
            continue
        return Backend(name, module)
    raise BackendError(
        "no TFLite backend found; install one with `pip install ai-edge-litert` "
        f"(tried: {', '.join(tried) or 'none'})"
    )


def load_delegate(backend: Backend, delegate: str) -> Any | None:
    """Load a named delegate: ``edgetpu`` needs libedgetpu; ``xnnpack`` is built in."""
    if delegate in ("none", "xnnpack"):
        return None
    if delegate != "edgetpu":
        raise BackendError(f"unknown delegate {delegate!r}; choose edgetpu, xnnpack or none")
    import ctypes

    hint = ("install the Edge TPU runtime (Debian/Raspberry Pi OS: add the Coral package repository, "
            "https://coral.ai/software/#debian-packages, then `sudo apt-get install libedgetpu1-std`) "
            "and plug in the accelerator")
    try:  # probe with the dynamic loader first: a failed load_delegate leaves a half-built object behind
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError:
        raise BackendError(f"Edge TPU runtime {EDGETPU_LIBRARY} not found; {hint}") from None
    try:
        return backend.module.load_delegate(EDGETPU_LIBRARY)
    except (ValueError, OSError) as exc:
        raise BackendError(f"Edge TPU delegate {EDGETPU_LIBRARY} could not be loaded ({exc}); {hint}") from None


def make_interpreter(
    model: str | Path | bytes,
    num_threads: int = 1,
    delegate: str = "xnnpack",
    backend: str | None = None,
) -> Any:
    """Create and allocate an interpreter for a model file or flatbuffer bytes.

    Args:
        model: path to a ``.tflite`` file, or its bytes.
        num_threads: CPU threads for the kernels (XNNPACK included).
        delegate: ``xnnpack`` (default CPU path), ``none`` (reference kernels), or ``edgetpu``.
        backend: force a backend by name (``ai-edge-litert``, ``tflite-runtime``, ``tensorflow``).

    Raises:
        BackendError: no backend, or the delegate is unavailable.
        DelegateRefused: the delegate failed to prepare a model the reference kernels load.
        BundleError: the model cannot be loaded or allocated.
    """
    from edge.errors import BundleError, DelegateRefused

    be = load_backend(backend)
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    kwargs: dict[str, Any] = {"num_threads": int(num_threads), **source}
    loaded = load_delegate(be, delegate)
    if loaded is not None:
        kwargs["experimental_delegates"] = [loaded]
    reference = {"num_threads": int(num_threads), **source, **_without_default_delegates(be)}
    try:
        interpreter = _allocated(be, reference if delegate == "none" else kwargs)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        refused = delegate != "none" and _loads(be, reference)  # the delegate's failure, not the model's?
        raise (DelegateRefused if refused else BundleError)(f"model could not be loaded by {be.name}: {first}") from None
    interpreter.backend_name = be.name  # type: ignore[attr-defined]
    return interpreter


def _without_default_delegates(backend: Backend) -> dict[str, Any]:
    """Interpreter arguments for the reference kernels alone (no default XNNPACK delegate)."""
    op_resolver = getattr(backend.module, "OpResolverType", None)
    return {} if op_resolver is None else {"experimental_op_resolver_type": op_resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _allocated(backend: Backend, kwargs: dict[str, Any]) -> Any:
    interpreter = backend.module.Interpreter(**kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _loads(backend: Backend, kwargs: dict[str, Any]) -> bool:
    """True if an interpreter builds and allocates with these arguments."""
    try:
        _allocated(backend, kwargs)
    except (ValueError, RuntimeError):
        return False
    return True
