"""Loopback boards for the deploy benchmarks: sshd boards (tests/servers/sshd.py), provisioned, with a signing key."""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
SERVICE = "run --source synthetic:fps=2 --meter estimate:rpi4"


@contextmanager
def loopback_fleet(tmp: Path, n: int) -> Iterator[tuple["object", Path]]:
    """``(boards, key)``: ``n`` provisioned sshd boards (runtime: this Python) and a key they trust."""
    sys.path.insert(0, str(REPO / "tests"))
    from servers.sshd import SshBoards

    from edge.board.layout import Layout
    from edge.board.service import BoardConfig, stop
    from edge.deploy.sign import keygen

    with SshBoards(tmp, n, env={"PYTHONPATH": str(REPO)}) as boards:
        try:
            key = keygen(tmp / "release")
            from edge.cli import main

            code = main(["board", "add", *boards.names, "--ssh-config", str(boards.config), "--trust", f"{key}.pub",
                         "--runtime-python", sys.executable, "--service", SERVICE])
            if code != 0:
                raise SystemExit("board add failed")
            yield boards, key
        finally:
            for root in boards.roots:
                stop(Layout(root), BoardConfig.read(Layout(root)))


def signed_copy(base: Path, dest: Path, key: Path, seq: int) -> Path:
    """``base`` copied to ``dest`` and signed at ``seq`` (any earlier signature dropped)."""
    from edge.bundle import SIGNATURE
    from edge.deploy.sign import sign_bundle

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns(SIGNATURE))
    sign_bundle(dest, key, seq)
    return dest
