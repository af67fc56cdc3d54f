"""The service status file: what a running ``run``/``demo`` writes and the deploy health check reads.

One JSON object, replaced atomically (write a temporary file, fsync, rename), at most
once per ``interval_s`` and once more on close, so a reader never sees a half-written file:
``{"bundle": path, "bundle_sha256": sha256 of manifest.json, "pid", "frames", "started", "updated",
"state": "running"|"stopped"|"failed", "error"}``. Times are the board's wall clock (only
compared with each other on the same board, never trusted across machines).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_FORMAT = "hybrid-edge-status"


@dataclass(frozen=True)
class ServiceStatus:
    """One snapshot of a running service."""

    bundle: str
    bundle_sha256: str
    pid: int
    frames: int
    started: float
    updated: float
    state: str = "running"
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": STATUS_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ServiceStatus":
        return cls(str(d["bundle"]), str(d["bundle_sha256"]), int(d["pid"]), int(d["frames"]),
                   float(d["started"]), float(d["updated"]), str(d.get("state", "running")), d.get("error"))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_status(path: str | Path) -> ServiceStatus | None:
    """The last status written to ``path``, or None when there is none (or it is not a status file)."""
    try:
        d = json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(d, dict) or d.get("format") != STATUS_FORMAT:
        return None
    return ServiceStatus.from_json(d)


class StatusWriter:
    """Writes the status file of a running service, throttled to one write per ``interval_s``."""

    def __init__(self, path: str | Path, bundle: str | Path, bundle_sha256: str, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._status = ServiceStatus(str(bundle), bundle_sha256, os.getpid(), 0, time.time(), time.time())
        self._last = 0.0
        self._write(self._status)

    def _write(self, status: ServiceStatus) -> None:
        self._status = status
        write_atomic(self.path, (json.dumps(status.to_json()) + "\n").encode())

    def update(self, frames: int) -> None:
        """Record ``frames`` processed so far; writes when ``interval_s`` has passed since the last write."""
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._write(ServiceStatus(**{**asdict(self._status), "frames": frames, "updated": time.time()}))

    def close(self, frames: int, error: str | None = None) -> None:
        """Final write: ``stopped``, or ``failed`` with the one-line error."""
        state = "failed" if error else "stopped"
        self._write(ServiceStatus(**{**asdict(self._status), "frames": frames, "updated": time.time(),
                                     "state": state, "error": error}))
