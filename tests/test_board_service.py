"""The board service as systemd sees it, and the offline runtime install from a wheelhouse."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_helpers import REPO, cli, stop_services
from edge.board.layout import Layout
from edge.board.service import BoardConfig, unit_text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    config = BoardConfig(sys.executable, ("run", "--source", "0", "--smooth", "ema:0.6"), "systemd", {"PYTHONPATH": str(REPO)})
    text = unit_text(Layout(tmp_path / "root"), config)
    assert "Restart=on-failure" in text and "ExecStartPre=" in text and "recover" in text
    unit = tmp_path / "hybrid-edge.service"
    unit.write_text(text)
    ok = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    unit.write_text(text.replace(f"ExecStart={sys.executable}", "ExecStart=python"))  # the check is real
    bad = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert bad.returncode != 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or not Path("/usr/bin/python3.11").exists(),
                    reason="needs openssh-server and a Python 3.11 to make the board venv")
def test_board_add_installs_the_runtime_offline_from_a_wheelhouse(tmp_path: Path, tiny_bundles: dict) -> None:
    """Builds a real wheelhouse (pip download, network), then a loopback board installs it with no index."""
    from servers.sshd import SshBoards

    wh = tmp_path / "wh"
    built = cli("wheelhouse", "--platform", "linux_x86_64", "--python", "3.11", "--out", str(wh), timeout=900)
    assert built.returncode == 0, built.stderr
    assert "--hash=sha256:" in (wh / "requirements.txt").read_text()
    with SshBoards(tmp_path, 1) as boards:  # no PYTHONPATH: the board imports only what the wheelhouse installed
        try:
            key = tmp_path / "k"
            assert cli("keygen", "--out", str(key)).returncode == 0
            add = cli("board", "add", "board0", "--ssh-config", str(boards.config), "--trust", f"{key}.pub",
                      "--wheelhouse", str(wh), "--board-python", "/usr/bin/python3.11", timeout=900)
            assert add.returncode == 0, add.stderr
            venv_python = boards.roots[0] / "venv" / "bin" / "python"
            assert f"python {venv_python}" in add.stdout
            bundle = shutil.copytree(tiny_bundles["int8"], tmp_path / "b")
            assert cli("sign", str(bundle), "--key", str(key), "--seq", "1").returncode == 0
            deployed = cli("deploy", str(bundle), "board0", "--ssh-config", str(boards.config))
            assert deployed.returncode == 0, deployed.stderr  # self-tested by the venv's runtime
        finally:
            stop_services(boards.roots)
