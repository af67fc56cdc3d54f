"""Keep TensorFlow's logging out of the terminal unless asked for.

TensorFlow's C++ side logs through absl before any Python code can configure it
(``cpu_feature_guard``, ``oneDNN custom operations``, a ``NodeDef mentions
attribute`` error line per epoch), and ``TF_CPP_MIN_LOG_LEVEL`` no longer
silences all of it. :func:`quiet_tensorflow` therefore points the process's
file descriptor 2 at a log file (nothing is lost) while Python's
``sys.stderr`` keeps the terminal: our own errors, tracebacks and progress
bars still show. Call it before TensorFlow is imported.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

_redirected: list[Path] = []


def quiet_tensorflow(log_file: str | Path | None = None, verbose: bool = False) -> Path | None:
    """Silence TensorFlow/absl logging; native stderr goes to ``log_file`` (default: discarded).

    With ``verbose`` nothing changes. Idempotent. Returns the log file (None when
    native logs are discarded or left alone).
    """
    if verbose:
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if _redirected:
        return _redirected[0]
    target = Path(log_file) if log_file else Path(os.devnull)
    if log_file:
        target.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    keep = os.dup(2)  # the terminal, for Python's own stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(keep, "wb", buffering=0), encoding="utf-8", errors="replace",
                                  line_buffering=True, write_through=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)  # native (C++/absl) writes to fd 2 land in the log file
    os.close(fd)
    _redirected.append(target)
    return target if log_file else None


def quiet_python_logging() -> None:
    """After TensorFlow is imported: absl's Python logger to ERROR (it resets its own level on import)."""
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)
