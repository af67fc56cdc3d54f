"""Where things live on a board, and the crash-safe file operations on them.

Every state change is a write-temp, fsync, rename, fsync-directory; ``current``
and ``previous`` are symlinks replaced with ``os.replace`` of a temporary link.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from contextlib import contextmanager

from edge.errors import DeployError
from edge.status import write_atomic

ROOT_ENV = "HYBRID_EDGE_ROOT"
FAILPOINT_ENV = "HYBRID_EDGE_FAILPOINT"
DEFAULT_ROOT = "~/.local/share/hybrid-edge"
KEEP_RELEASES = 3


def board_root() -> Path:
    """``$HYBRID_EDGE_ROOT``, else ``~/.local/share/hybrid-edge``."""
    return Path(os.environ.get(ROOT_ENV) or os.path.expanduser(DEFAULT_ROOT))


def failpoint(name: str) -> None:
    """Die with SIGKILL here when ``$HYBRID_EDGE_FAILPOINT`` names this step (crash tests)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and directory under ``path`` (bottom-up), then its parent."""
    for dirpath, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
    fsync_dir(path.parent)


def set_read_only(path: Path, read_only: bool) -> None:
    """Store directories are read-only (0444 files, 0555 dirs); made writable again only to prune them."""
    for dirpath, _dirs, files in os.walk(path):
        os.chmod(dirpath, 0o555 if read_only else 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444 if read_only else 0o644)


@dataclass(frozen=True)
class Release:
    """A bundle in the store: its signed ``seq``, manifest sha256 and store directory name."""

    seq: int
    sha256: str
    dir: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "sha256": self.sha256, "dir": self.dir}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> "Release | None":
        return cls(int(d["seq"]), str(d["sha256"]), str(d["dir"])) if d else None


@dataclass(frozen=True)
class BoardState:
    """``state.json``: the highest committed seq (never lowered), the committed release and the one before."""

    highwater: int = -1
    committed: Release | None = None
    previous: Release | None = None

    def to_json(self) -> dict[str, Any]:
        return {"highwater": self.highwater, "committed": self.committed and self.committed.to_json(),
                "previous": self.previous and self.previous.to_json()}


@dataclass(frozen=True)
class Layout:
    """The board root and the paths under it (docs/deploy.md, "Board layout")."""

    root: Path

    store = property(lambda self: self.root / "store")
    staging = property(lambda self: self.root / "staging")
    current = property(lambda self: self.root / "current")
    previous = property(lambda self: self.root / "previous")
    state_file = property(lambda self: self.root / "state.json")
    pending_file = property(lambda self: self.root / "pending.json")
    history_file = property(lambda self: self.root / "history.jsonl")
    lock_file = property(lambda self: self.root / "lock")
    allowed_signers = property(lambda self: self.root / "trust" / "allowed_signers")
    config_file = property(lambda self: self.root / "board.json")
    run_dir = property(lambda self: self.root / "run")
    status_file = property(lambda self: self.root / "run" / "status.json")
    pid_file = property(lambda self: self.root / "run" / "service.pid")
    log_file = property(lambda self: self.root / "run" / "service.log")

    def make_dirs(self) -> None:
        for d in (self.root, self.store, self.staging, self.run_dir, self.allowed_signers.parent):
            d.mkdir(parents=True, exist_ok=True)

    def read_state(self) -> BoardState:
        try:
            d = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return BoardState()
        return BoardState(int(d["highwater"]), Release.from_json(d.get("committed")), Release.from_json(d.get("previous")))

    def write_state(self, state: BoardState) -> None:
        write_atomic(self.state_file, (json.dumps(state.to_json()) + "\n").encode())

    def read_pending(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.pending_file.read_text())
        except FileNotFoundError:
            return None

    def write_pending(self, pending: dict[str, Any]) -> None:
        write_atomic(self.pending_file, (json.dumps(pending) + "\n").encode())

    def clear_pending(self) -> None:
        if self.pending_file.exists():
            self.pending_file.unlink()
            fsync_dir(self.root)

    def append_history(self, entry: dict[str, Any]) -> None:
        with open(self.history_file, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self, last: int = 20) -> list[dict[str, Any]]:
        try:
            lines = self.history_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines[-last:] if line.strip()]

    def link_target(self, link: Path) -> str | None:
        """The store directory name a link points to, or None."""
        try:
            return Path(os.readlink(link)).name
        except (FileNotFoundError, OSError):
            return None

    def point(self, link: Path, store_dir: str | None) -> None:
        """Atomically make ``link`` point at ``store/<store_dir>`` (or remove it for None)."""
        if store_dir is None:
            if link.is_symlink():
                link.unlink()
                fsync_dir(self.root)
            return
        tmp = link.with_name(f".{link.name}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.join("store", store_dir), tmp)
        os.replace(tmp, link)
        fsync_dir(self.root)

    @contextmanager
    def locked(self, wait: bool = False) -> Iterator[None]:
        """Hold the board lock (``flock``: released by the kernel if the holder dies); ``E_LOCKED`` if taken."""
        fd = self.try_lock(wait)
        if fd is None:
            raise DeployError("E_LOCKED", "another deploy holds the board lock")
        try:
            yield
        finally:
            os.close(fd)

    def try_lock(self, wait: bool = False) -> int | None:
        """The locked descriptor, or None when another process holds the lock."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd
