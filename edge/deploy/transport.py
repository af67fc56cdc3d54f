"""SSH to boards with asyncssh: strict host keys, the user's agent and identities, no passwords.

A target is a Host alias of the ssh config or ``[user@]host[:port]``. Uploads go to
``staging/<manifest sha256>/`` as ``NAME.part`` (resumed from its size), fsynced,
then renamed with ``posix-rename``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from edge.board.layout import DEFAULT_ROOT, FAILPOINT_ENV, ROOT_ENV
from edge.errors import DeployError

AGENT = "bin/hybrid-edge-agent"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Target:
    """A board: the name the user gave, and what it connects to."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Target":
        user, _, hostport = text.rpartition("@")
        host, port = hostport, None
        if hostport.count(":") == 1:
            host, _, p = hostport.partition(":")
            if not p.isdigit():
                raise DeployError("E_TARGET", f"{text}: the port must be a number")
            port = int(p)
        if not host:
            raise DeployError("E_TARGET", f"{text!r} is not an SSH destination ([user@]host[:port] or a Host alias)")
        return cls(text, host, user or None, port)


def default_ssh_config() -> Path:
    return Path(os.path.expanduser("~/.ssh/config"))


class Board:
    """An open SSH connection to one board plus its root and agent command."""

    def __init__(self, target: Target, conn: asyncssh.SSHClientConnection, root: str) -> None:
        self.target = target
        self.conn = conn
        self.root = root

    @property
    def agent(self) -> str:
        return f"{self.root}/{AGENT}"

    async def shell(self, command: str, timeout: float | None = 600) -> asyncssh.SSHCompletedProcess:
        try:
            return await asyncio.wait_for(self.conn.run(command, check=False), timeout)
        except (asyncssh.Error, OSError) as exc:
            raise DeployError("E_CONNECTION", f"connection lost ({exc})", self.target.name) from None
        except asyncio.TimeoutError:
            raise DeployError("E_TIMEOUT", f"no answer within {timeout} s", self.target.name) from None

    async def agent_call(self, *args: str, timeout: float | None = 600) -> dict[str, Any]:
        """Run the board agent; its JSON answer, or its error code raised as a DeployError."""
        env = f"{FAILPOINT_ENV}={shlex.quote(os.environ[FAILPOINT_ENV])} " if os.environ.get(FAILPOINT_ENV) else ""
        proc = await self.shell(env + shlex.join([self.agent, *args]), timeout)
        lines = str(proc.stdout or "").strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            why = (str(proc.stderr or "").strip().splitlines() or [f"exit status {proc.exit_status}, signal {proc.exit_signal}"])[-1]
            if proc.exit_status == 127:
                raise DeployError("E_NOT_PROVISIONED", "no board agent (run `hybrid-edge board add` first)", self.target.name)
            raise DeployError("E_AGENT", f"the board agent gave no answer ({why})", self.target.name)
        if "error" in answer:
            raise DeployError(str(answer["error"]), str(answer.get("message", "")), self.target.name)
        return answer

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()


async def connect(target: Target, ssh_config: Path | None = None, timeout: float = 20.0) -> Board:
    """Open a connection with strict host-key checking and find the board root.

    Raises:
        DeployError: E_HOSTKEY (unknown or changed host key), E_AUTH, E_CONNECTION.
    """
    config = ssh_config or default_ssh_config()
    kwargs: dict[str, Any] = {"config": [str(config)] if config.is_file() else [],
                              "password": None, "kbdint_auth": False, "connect_timeout": timeout}
    if target.user:
        kwargs["username"] = target.user
    if target.port:
        kwargs["port"] = target.port
    try:
        options = asyncssh.SSHClientConnectionOptions(host=target.host, **kwargs)
    except (asyncssh.Error, OSError, ValueError) as exc:
        raise DeployError("E_CONNECTION", f"bad ssh settings ({exc})", target.name) from None
    if options.known_hosts is None:  # "UserKnownHostsFile none" would turn host-key checking off
        raise DeployError("E_HOSTKEY", "the ssh config disables host-key checking (UserKnownHostsFile none); refusing", target.name)
    try:
        conn = await asyncssh.connect(target.host, options=options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise DeployError("E_HOSTKEY", f"host key not trusted ({exc.reason}); check known_hosts", target.name) from None
    except asyncssh.PermissionDenied:
        raise DeployError("E_AUTH", "SSH authentication failed (agent and identity files tried)", target.name) from None
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
        raise DeployError("E_CONNECTION", f"cannot connect ({exc or type(exc).__name__})", target.name) from None
    board = Board(target, conn, "")
    proc = await board.shell(f'printf %s "${{{ROOT_ENV}:-$HOME/{DEFAULT_ROOT[2:]}}}"', timeout)
    board.root = str(proc.stdout or "").strip()
    if not board.root.startswith("/"):
        await board.close()
        raise DeployError("E_CONNECTION", f"cannot find the board root (got {board.root!r})", target.name)
    return board


async def upload_tree(board: Board, local: Path, remote: str, names: list[str]) -> int:
    """Upload ``names`` from ``local`` to ``remote`` resumably; returns the bytes sent.

    A file already complete at ``remote/NAME`` (same size) is kept (the agent checks every sha256);
    ``NAME.part`` is continued from its size, fsynced, then renamed into place.
    """
    sent = 0
    try:
        async with board.conn.start_sftp_client() as sftp:
            await sftp.makedirs(remote, exist_ok=True)
            for name in names:
                src = local / name
                dest = f"{remote}/{name}"
                size = src.stat().st_size
                if "/" in name:
                    await sftp.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
                if await sftp.exists(dest) and (await sftp.stat(dest)).size == size:
                    continue
                part = dest + ".part"
                offset = (await sftp.stat(part)).size if await sftp.exists(part) else 0
                if offset > size:
                    await sftp.remove(part)
                    offset = 0
                async with sftp.open(part, "r+b" if offset else "wb") as fh:
                    await fh.seek(offset)
                    with open(src, "rb") as local_fh:
                        local_fh.seek(offset)
                        for chunk in iter(lambda: local_fh.read(_CHUNK), b""):
                            await fh.write(chunk)
                            sent += len(chunk)
                    await fh.fsync()
                await sftp.posix_rename(part, dest)
    except (asyncssh.Error, OSError) as exc:
        raise DeployError("E_CONNECTION", f"upload interrupted ({exc or type(exc).__name__}); run the deploy again to resume", board.target.name) from None
    return sent
