"""The board's service: the configured ``hybrid-edge run``/``demo`` command on ``current``.

Under systemd (a user unit, ``Restart=on-failure``, ``ExecStartPre=`` recover) where
``systemctl --user`` works; otherwise a supervisor process with a pid file that
recovers, then runs and restarts the command. The command writes the status file
(``--status-file``) that :func:`wait_healthy` reads.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.board.layout import Layout
from edge.status import read_status, write_atomic

UNIT_NAME = "hybrid-edge.service"


@dataclass(frozen=True)
class BoardConfig:
    """``board.json``: the runtime Python and the service command (arguments after ``hybrid-edge``)."""

    python: str
    service: tuple[str, ...] = ()
    manager: str = "process"  # "systemd" or "process"
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"python": self.python, "service": list(self.service), "manager": self.manager, "env": self.env}

    @classmethod
    def read(cls, layout: Layout) -> "BoardConfig":
        try:
            d = json.loads(layout.config_file.read_text())
        except FileNotFoundError:
            return cls(sys.executable)
        return cls(str(d["python"]), tuple(d.get("service", ())), str(d.get("manager", "process")), dict(d.get("env", {})))

    def write(self, layout: Layout) -> None:
        write_atomic(layout.config_file, (json.dumps(self.to_json(), indent=2) + "\n").encode())


def service_argv(layout: Layout, config: BoardConfig) -> list[str]:
    """``python -m edge SUBCOMMAND ROOT/current ARGS... --status-file ROOT/run/status.json``."""
    sub, *rest = config.service
    return [config.python, "-m", "edge", sub, str(layout.current), *rest, "--status-file", str(layout.status_file)]


def systemd_available() -> bool:
    """True when a systemd user manager answers (not in most containers and CI)."""
    try:
        proc = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return proc.stdout.strip() in ("running", "degraded", "starting")


def unit_text(layout: Layout, config: BoardConfig) -> str:
    """The systemd user unit. Enable lingering (``loginctl enable-linger USER``) so it runs without a login."""
    agent = shlex.join([config.python, "-m", "edge.board", "recover", "--clean-staging"])
    env = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted({**config.env, "HYBRID_EDGE_ROOT": str(layout.root)}.items()))
    return (
        "[Unit]\n"
        "Description=hybrid-edge model service\n"
        "After=network.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"{env}"
        f"ExecStartPre={agent}\n"
        f"ExecStart={shlex.join(service_argv(layout, config))}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def unit_path() -> Path:
    return Path(os.path.expanduser("~/.config/systemd/user")) / UNIT_NAME


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def service_pid(layout: Layout) -> int | None:
    """The supervisor's pid when it is running."""
    try:
        pid = int(layout.pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def stop(layout: Layout, config: BoardConfig) -> None:
    if config.manager == "systemd":
        subprocess.run(["systemctl", "--user", "stop", UNIT_NAME], check=False, timeout=60)
        return
    pid = service_pid(layout)
    if pid is None:
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def start(layout: Layout, config: BoardConfig) -> None:
    """(Re)start the service; a no-op when no service command is configured."""
    if not config.service:
        return
    if config.manager == "systemd":
        subprocess.run(["systemctl", "--user", "restart", UNIT_NAME], check=True, timeout=120)
        return
    stop(layout, config)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.log_file, "ab") as log:
        proc = subprocess.Popen([config.python, "-m", "edge.board", "supervise"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True,
                                env={**os.environ, **config.env, "HYBRID_EDGE_ROOT": str(layout.root)})
    write_atomic(layout.pid_file, f"{proc.pid}\n".encode())


def supervise(layout: Layout, config: BoardConfig) -> int:
    """The process manager where there is no systemd: recover, run the command, restart it on failure."""
    from edge.board.agent import recover

    recover(layout, clean_staging=True)
    child: subprocess.Popen | None = None
    stopping = False

    def _term(signum: int, frame: Any) -> None:
        # no waiting here: the main loop is inside child.wait() and holds its lock
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, _term)
    delay = 1.0
    while not stopping:
        child = subprocess.Popen(service_argv(layout, config), stdin=subprocess.DEVNULL)
        code = child.wait()
        if code == 0 or stopping:
            return 0
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
    return 0


def wait_healthy(layout: Layout, sha256: str, since: float, timeout_s: float) -> bool:
    """True once the service reports frames on the bundle ``sha256`` from a start after ``since``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_healthy(layout, sha256, since):
            return True
        time.sleep(0.1)
    return False


def is_healthy(layout: Layout, sha256: str, since: float = 0.0) -> bool:
    st = read_status(layout.status_file)
    return (st is not None and st.bundle_sha256 == sha256 and st.state == "running" and st.frames >= 1
            and st.started >= since and _alive(st.pid))


def describe(layout: Layout, config: BoardConfig) -> dict[str, Any]:
    """The ``service`` and ``heartbeat`` fields of ``board status``."""
    st = read_status(layout.status_file)
    pid = service_pid(layout) if config.manager == "process" else None
    running = bool(st and st.state == "running" and _alive(st.pid))
    service = {"manager": config.manager, "command": list(config.service), "running": running, "supervisor_pid": pid}
    heartbeat = None if st is None else {"bundle_sha256": st.bundle_sha256, "frames": st.frames, "state": st.state,
                                         "updated": st.updated, "age_s": round(time.time() - st.updated, 3), "error": st.error}
    return {"service": service, "heartbeat": heartbeat}
