"""Real OpenSSH boards on 127.0.0.1 for the deploy tests: one ``/usr/sbin/sshd`` per board.

Each board has its own host key, port, root directory (``SetEnv HYBRID_EDGE_ROOT``)
and environment; the client side is a real ssh config, known_hosts and identity
file. A :class:`CutProxy` forwards a port to a board and cuts the connection after
N bytes (the link dropping mid-upload).

    with SshBoards(tmp_path, 3, env={"PYTHONPATH": repo}) as boards:
        boards.config        # client ssh config: Host board0 ... board2
        boards.roots[0]      # board0's HYBRID_EDGE_ROOT
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with status {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd on port {port} did not answer")


class SshBoards:
    """``n`` sshd boards plus the client files that reach them (``board0`` ... as Host aliases)."""

    def __init__(self, tmp: Path, n: int, env: dict[str, str] | None = None) -> None:
        self.dir = tmp / "ssh"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = n
        self.env = env or {}
        self.identity = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.config = self.dir / "config"
        self.names = [f"board{i}" for i in range(n)]
        self.roots = [tmp / "boards" / name for name in self.names]
        self.ports: list[int] = []
        self.host_keys: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "SshBoards":
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        client_pub = _keygen(self.identity)
        (self.dir / "authorized_keys").write_text(client_pub + "\n")
        hosts, lines = [], []
        for i, name in enumerate(self.names):
            self.roots[i].mkdir(parents=True, exist_ok=True)
            pub = _keygen(self.dir / f"host_{name}")
            port = free_port()
            self.ports.append(port)
            self.host_keys.append(pub)
            cfg = self.dir / f"sshd_{name}.conf"
            setenv = " ".join(f"{k}={v}" for k, v in {**self.env, "HYBRID_EDGE_ROOT": str(self.roots[i])}.items())
            cfg.write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {self.dir / f'host_{name}'}\n"
                f"PidFile {self.dir / f'sshd_{name}.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
                "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
                f"MaxStartups 50:30:100\nMaxSessions 50\nSetEnv {setenv}\n")
            self.procs.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            hosts.append(f"[127.0.0.1]:{port} {' '.join(pub.split()[:2])}\n")
            lines.append(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'root')}\n"
                         f"  IdentityFile {self.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n"
                         "  StrictHostKeyChecking yes\n")
        self.known_hosts.write_text("".join(hosts))
        self.config.write_text("".join(lines))
        for port, proc in zip(self.ports, self.procs):
            _wait_port(port, proc)
        return self

    def add_alias(self, alias: str, port: int, host_key_of: int) -> None:
        """Another Host alias (e.g. through a proxy on ``port``) that presents board ``host_key_of``'s key."""
        with open(self.config, "a") as fh:
            fh.write(f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'root')}\n"
                     f"  IdentityFile {self.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n")
        with open(self.known_hosts, "a") as fh:
            fh.write(f"[127.0.0.1]:{port} {' '.join(self.host_keys[host_key_of].split()[:2])}\n")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()


class CutProxy:
    """A loopback TCP proxy to ``port`` that cuts every connection after ``limit`` client-to-server bytes
    (0: never). ``cuts`` counts the connections it cut."""

    def __init__(self, port: int, limit: int) -> None:
        self.target = port
        self.limit = limit
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        sent = 0
        try:
            while data := src.recv(16384):
                if upstream and self.limit and sent + len(data) > self.limit:
                    dst.sendall(data[: self.limit - sent])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
