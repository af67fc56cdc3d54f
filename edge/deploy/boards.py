"""Board commands over SSH: provision (``board add``), status, rollback and bench."""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from edge.deploy.transport import AGENT, Board, Target, connect, upload_tree
from edge.errors import DeployError


@dataclass(frozen=True)
class ProvisionOptions:
    """``hybrid-edge board add`` options."""

    trust: tuple[str, ...]  # ssh-ed25519 public key lines
    runtime_python: str | None = None
    wheelhouse: Path | None = None
    board_python: str = "python3"  # makes the venv when installing from a wheelhouse
    service: tuple[str, ...] = ()  # e.g. ("run", "--source", "0")


def launcher(python: str) -> str:
    """The board agent entry point the host calls: the runtime Python on :mod:`edge.board`."""
    return f"#!/bin/sh\nexec {shlex.quote(python)} -m edge.board \"$@\"\n"


async def _check(board: Board, command: str, what: str, code: str = "E_RUNTIME", timeout: float = 900) -> str:
    proc = await board.shell(command, timeout)
    if proc.exit_status != 0:
        why = (str(proc.stderr or proc.stdout or "").strip().splitlines() or [f"exit status {proc.exit_status}"])[-1]
        raise DeployError(code, f"{what} failed: {why}", board.target.name)
    return str(proc.stdout or "")


async def _install_wheelhouse(board: Board, wheelhouse: Path, board_python: str) -> str:
    """Upload the wheelhouse and install it offline, hashes required, into ``ROOT/venv``."""
    if not (wheelhouse / "requirements.txt").is_file():
        raise DeployError("E_RUNTIME", f"{wheelhouse}: no requirements.txt (build it with `hybrid-edge wheelhouse`)")
    remote = f"{board.root}/wheelhouse"
    await upload_tree(board, wheelhouse, remote, sorted(p.name for p in wheelhouse.iterdir() if p.is_file()))
    venv = f"{board.root}/venv"
    q = shlex.quote
    await _check(board, f"test -x {q(venv)}/bin/python || {q(board_python)} -m venv {q(venv)}", "creating the venv")
    await _check(board, f"{q(venv)}/bin/python -m pip install --quiet --no-index --find-links {q(remote)} "
                        f"--require-hashes -r {q(remote)}/requirements.txt", "offline install from the wheelhouse")
    return f"{venv}/bin/python"


async def provision(board: Board, opts: ProvisionOptions) -> dict[str, Any]:
    """Create the board root, install the runtime, push the agent launcher, trust the keys, set the service."""
    q = shlex.quote
    await _check(board, f"mkdir -p {q(board.root)}/bin", "creating the board root")
    if opts.wheelhouse is not None:
        python = await _install_wheelhouse(board, opts.wheelhouse, opts.board_python)
    elif opts.runtime_python:
        python = opts.runtime_python
    else:
        raise DeployError("E_RUNTIME", "give --runtime-python PATH or --wheelhouse DIR")
    await _check(board, f"{q(python)} -c 'import edge.board, edge.run'", f"importing the runtime with {python}")
    tmp = f"{board.root}/{AGENT}.tmp"
    async with board.conn.start_sftp_client() as sftp:
        async with sftp.open(tmp, "wb") as fh:
            await fh.write(launcher(python).encode())
            await fh.fsync()
        await sftp.chmod(tmp, 0o755)
        await sftp.posix_rename(tmp, f"{board.root}/{AGENT}")
    args = ["init", "--python", python, "--service", json.dumps(list(opts.service))]
    for key in opts.trust:
        args += ["--trust", key]
    env = (await board.shell('printf %s "$PYTHONPATH"')).stdout
    args += ["--env", json.dumps({"PYTHONPATH": str(env)} if env else {})]
    return await board.agent_call(*args)


async def on_boards(targets: list[Target], ssh_config: Path | None, parallel: int,
                    action: Callable[[Board], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run ``action`` on every board (``parallel`` at a time); a failure is ``{"board", "error", "message"}``."""
    sem = asyncio.Semaphore(max(1, parallel))

    async def one(target: Target) -> dict[str, Any]:
        async with sem:
            try:
                board = await connect(target, ssh_config)
            except DeployError as exc:
                return {"board": target.name, "error": exc.code, "message": exc.detail}
            try:
                return {"board": target.name, **(await action(board))}
            except DeployError as exc:
                return {"board": target.name, "error": exc.code, "message": exc.detail}
            finally:
                await board.close()

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def status(board: Board) -> dict[str, Any]:
    return await board.agent_call("status", timeout=120)


async def rollback(board: Board, health_timeout: float = 30.0) -> dict[str, Any]:
    return await board.agent_call("rollback", "--health-timeout", str(health_timeout), timeout=health_timeout * 2 + 60)


async def bench(board: Board, out: Path, bench_args: list[str]) -> dict[str, Any]:
    """``hybrid-edge bench`` on the active bundle with the board's runtime; ``results.json`` comes back
    as ``OUT/<board>/results.json`` (plus the board's reference file when ``--save-reference`` is given)."""
    config = json.loads((await board.shell(f"cat {shlex.quote(board.root)}/board.json")).stdout or "{}")
    python = config.get("python")
    if not python:
        raise DeployError("E_NOT_PROVISIONED", "no board.json (run `hybrid-edge board add` first)", board.target.name)
    remote = f"{board.root}/run/bench"
    cmd = shlex.join([python, "-m", "edge", "bench", f"{board.root}/current", "--out", remote, *bench_args])
    await _check(board, cmd, "bench on the board", code="E_BENCH", timeout=3600)
    local = out / board.target.name.replace("/", "_")
    local.mkdir(parents=True, exist_ok=True)
    async with board.conn.start_sftp_client() as sftp:
        names = [n for n in await sftp.listdir(remote) if n.endswith(".json")]
        for name in names:
            await sftp.get(f"{remote}/{name}", str(local / name))
    return {"results": str(local / "results.json"), "files": sorted(names)}
