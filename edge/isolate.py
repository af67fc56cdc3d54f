"""First load + invoke of an untrusted bundle in a child process (``--isolate``).

A model that passes the hash and structure checks can still crash the native
interpreter (a bad kernel parameter, a delegate bug). The probe builds the same
session in a child and runs one zero frame; a crash there becomes one line here,
and only a bundle that survived is loaded into this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edge.errors import BundleError

PROBE_TIMEOUT_S = 60.0

_PROBE = """
import sys
import numpy as np
from edge.bundle import read_bundle
from edge.errors import HybridEdgeError
from edge.streaming import StreamingSession
try:
    bundle = read_bundle(sys.argv[1])
    session = StreamingSession(bundle, num_threads=int(sys.argv[2]), delegate=sys.argv[3] or None)
    h, w = bundle.preprocessing.size
    session.step(np.zeros((h, w, 3), np.uint8))
except HybridEdgeError as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(3)
print("ok")
"""


def probe_bundle(path: str | Path, num_threads: int = 1, delegate: str | None = None,
                 timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Load and invoke ``path`` once in a child process.

    Raises:
        BundleError: the child crashed (signal), hung, or reported an error.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(num_threads), delegate or ""],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise BundleError(f"{path}: the isolated first load did not finish in {timeout_s:g} s") from None
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise BundleError(f"{path}: the model crashed the interpreter on its first load/invoke ({name}); refusing to run it")
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise BundleError(f"{path}: the isolated first load failed (exit {proc.returncode}): {last}")
