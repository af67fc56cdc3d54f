"""Deploy to real OpenSSH boards on 127.0.0.1: the happy path and one test per fault, with its code.

Six boards (``/usr/sbin/sshd`` each, tests/servers/sshd.py) are provisioned once with
``board add`` (runtime: this Python, service: ``run`` on a synthetic source) and get
release 10; each test then deploys to some of them and checks the board's own state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy_helpers import REPO, SERVICE, board_state, break_golden, cli, crash_service, signed, stop_services
from servers.sshd import CutProxy, SshBoards

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs Debian openssh-server (make test installs it)")
N_BOARDS = 6


class Fleet:
    def __init__(self, boards: SshBoards, key: Path, bundles: Path, base: Path) -> None:
        self.boards = boards
        self.key = key
        self.dir = bundles
        self.base = base  # the unsigned int8 bundle
        self.seq = 10

    def ssh(self, *args: str) -> list[str]:
        return [*args, "--ssh-config", str(self.boards.config)]

    def bundle(self, name: str, seq: int, edit=None, key: Path | None = None) -> Path:
        dest = self.dir / name
        if dest.exists():
            shutil.rmtree(dest)
        return signed(self.base, dest, key or self.key, seq, edit=edit)

    def deploy(self, bundle: Path, *targets: str, extra: tuple[str, ...] = (), env: dict | None = None,
               json_out: Path | None = None) -> tuple[subprocess.CompletedProcess, dict]:
        out = json_out or self.dir / f"deploy-{time.monotonic_ns()}.json"
        result = cli("deploy", str(bundle), *self.ssh(*targets), "--health-timeout", "60", "--json", str(out), *extra, env=env)
        return result, (json.loads(out.read_text()) if out.exists() else {})

    def root(self, name: str) -> Path:
        return self.boards.roots[self.boards.names.index(name)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tiny_bundles: dict) -> Fleet:
    tmp = tmp_path_factory.mktemp("fleet")
    with SshBoards(tmp, N_BOARDS, env={"PYTHONPATH": str(REPO)}) as boards:
        try:
            key = tmp / "release"
            assert cli("keygen", "--out", str(key)).returncode == 0
            add = cli("board", "add", *boards.names, "--ssh-config", str(boards.config), "--trust", f"{key}.pub",
                      "--runtime-python", sys.executable, "--service", SERVICE)
            assert add.returncode == 0, add.stderr
            (tmp / "bundles").mkdir()
            f = Fleet(boards, key, tmp / "bundles", tiny_bundles["int8"])
            result, report = f.deploy(f.bundle("v10", 10), *boards.names)
            assert result.returncode == 0, result.stdout + result.stderr
            assert [r["status"] for r in report["results"]] == ["deployed"] * N_BOARDS
            yield f
        finally:
            stop_services(boards.roots)


def _code(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]  # "hybrid-edge deploy: error: [BOARD: ]CODE: ..."
    return re.search(r"\b(E_[A-Z_]+)\b", line).group(1)


def _on(fleet: Fleet, board: str) -> tuple[int, bool]:
    st = board_state(fleet.root(board))
    return st["active"]["seq"], st["verified"]


def test_deploy_reports_unchanged_and_status(fleet: Fleet) -> None:
    v10 = fleet.dir / "v10"
    result, report = fleet.deploy(v10, "board0", "board1")
    assert result.returncode == 0, result.stderr
    assert [(r["board"], r["status"], r["error"], r["seq"]) for r in report["results"]] == [
        ("board0", "unchanged", None, 10), ("board1", "unchanged", None, 10)]
    assert "board0  unchanged" in result.stdout  # the summary table
    out = fleet.dir / "status.json"
    status = cli("board", "status", *fleet.ssh("board0"), "--json", str(out))
    assert status.returncode == 0, status.stderr
    board = json.loads(out.read_text())["boards"][0]
    assert board["active"]["seq"] == 10 and board["active"]["precision"] == "int8" and board["verified"] is True
    assert board["heartbeat"]["frames"] >= 1 and board["service"]["running"] is True
    assert board["history"][-1]["action"] == "deploy"


def test_upgrade_then_board_rollback(fleet: Fleet) -> None:
    result, report = fleet.deploy(fleet.bundle("v11", 11), "board1")
    assert result.returncode == 0 and report["results"][0]["status"] == "deployed", result.stderr
    assert _on(fleet, "board1") == (11, True)
    back = cli("board", "rollback", *fleet.ssh("board1"))
    assert back.returncode == 0, back.stderr
    assert _on(fleet, "board1") == (10, True)
    # the high-water mark stays at 11: re-deploying seq 10 elsewhere is fine, 11 here is "unchanged"-free re-deploy
    assert board_state(fleet.root("board1"))["highwater"] == 11


def test_tampered_byte_is_refused(fleet: Fleet) -> None:
    bundle = fleet.bundle("v12-tampered", 12)
    model = bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    result, _ = fleet.deploy(bundle, "board2")
    assert _code(result) == "E_HASH"  # refused on the laptop already
    # and the board refuses it on its own: stage the tampered copy there and ask its agent
    staged = fleet.root("board2") / "staging" / "tampered"
    shutil.copytree(bundle, staged)
    agent = subprocess.run(["ssh", "-F", str(fleet.boards.config), "board2",
                            f"{fleet.root('board2')}/bin/hybrid-edge-agent", "apply", str(staged)], capture_output=True, text=True)
    assert agent.returncode == 3 and json.loads(agent.stdout)["error"] == "E_HASH"
    assert _on(fleet, "board2") == (10, True)


def test_untrusted_key_is_refused(fleet: Fleet) -> None:
    other = fleet.dir / "other-key"
    if not other.exists():
        assert cli("keygen", "--out", str(other)).returncode == 0
    result, report = fleet.deploy(fleet.bundle("v13-untrusted", 13, key=other), "board2")
    assert _code(result) == "E_SIGNATURE" and report["results"][0]["status"] == "failed"
    assert _on(fleet, "board2") == (10, True)


def test_wrong_namespace_is_refused(fleet: Fleet) -> None:
    from edge.deploy.sign import sign_bundle

    bundle = fleet.bundle("v14-namespace", 14)
    sign_bundle(bundle, fleet.key, 14, namespace="file")  # a valid signature by the trusted key, for another use
    result, _ = fleet.deploy(bundle, "board2")
    assert _code(result) == "E_SIGNATURE"
    assert _on(fleet, "board2") == (10, True)


def test_downgrade_is_refused(fleet: Fleet) -> None:
    result, _ = fleet.deploy(fleet.bundle("v5", 5), "board2")
    assert _code(result) == "E_DOWNGRADE"
    assert _on(fleet, "board2") == (10, True)


def test_failing_self_test_is_refused(fleet: Fleet) -> None:
    result, _ = fleet.deploy(fleet.bundle("v15-golden", 15, edit=break_golden), "board2")
    assert _code(result) == "E_SELFTEST"
    assert _on(fleet, "board2") == (10, True)


def test_changed_host_key_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    config = tmp_path / "config"
    known = tmp_path / "known_hosts"
    lines = fleet.boards.known_hosts.read_text().splitlines()
    port = fleet.boards.ports[2]
    impostor = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    assert impostor.returncode == 0
    fake = " ".join((tmp_path / "k.pub").read_text().split()[:2])
    known.write_text("\n".join(f"[127.0.0.1]:{port} {fake}" if line.startswith(f"[127.0.0.1]:{port} ") else line
                               for line in lines) + "\n")
    config.write_text(fleet.boards.config.read_text().replace(str(fleet.boards.known_hosts), str(known)))
    result = cli("deploy", str(fleet.dir / "v10"), "board2", "--ssh-config", str(config))
    assert _code(result) == "E_HOSTKEY"
    known.write_text("\n".join(line for line in lines if not line.startswith(f"[127.0.0.1]:{port} ")) + "\n")
    result = cli("deploy", str(fleet.dir / "v10"), "board2", "--ssh-config", str(config))
    assert _code(result) == "E_HOSTKEY"  # unknown is refused too: there is no accept-new
    config.write_text(config.read_text().replace(f"UserKnownHostsFile {known}", "UserKnownHostsFile none"))
    result = cli("deploy", str(fleet.dir / "v10"), "board2", "--ssh-config", str(config))
    assert _code(result) == "E_HOSTKEY"  # a config that turns checking off is refused, not obeyed


def test_two_deploys_at_once(fleet: Fleet) -> None:
    """A first deploy holds the board lock through its health check (a service that never gets healthy,
    15 s); a second deploy meanwhile gets E_LOCKED; the first then rolls back."""
    slow = fleet.bundle("v16-crash", 16, edit=crash_service)
    before = _on(fleet, "board3")
    first = subprocess.Popen([sys.executable, "-m", "edge", "deploy", str(slow), *fleet.ssh("board3"), "--health-timeout", "15"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    from edge.board.layout import Layout

    layout = Layout(fleet.root("board3"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not layout.pending_file.exists():  # the first is switching
        time.sleep(0.05)
    assert layout.pending_file.exists()
    second, _ = fleet.deploy(fleet.bundle("v17", 17), "board3")
    assert _code(second) == "E_LOCKED"
    out, err = first.communicate(timeout=180)
    assert first.returncode == 2 and "E_HEALTH_ROLLBACK" in err, out + err
    assert _on(fleet, "board3") == before


AGENT_STEPS = ("after_verify", "after_selftest", "after_stage", "after_switch", "after_restart", "before_commit")


def test_kill_at_each_step_then_rerun_converges(fleet: Fleet) -> None:
    """SIGKILL of the agent at each named step (and of the CLI after the upload): the board keeps a verified
    ``current``; ``recover`` reverts an uncommitted switch; the same deploy run again converges."""
    bundle = fleet.bundle("v20", 20)
    steps = [*AGENT_STEPS, "after_upload"]
    boards = [fleet.boards.names[i % N_BOARDS] for i in range(len(steps))]
    runs = [subprocess.Popen([sys.executable, "-m", "edge", "deploy", str(bundle), *fleet.ssh(board)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO), "HYBRID_EDGE_FAILPOINT": step})
            for step, board in zip(steps[:N_BOARDS], boards)]  # the fail-point is per deploy process
    for step, run in zip(steps, runs):
        run.communicate(timeout=300)
        assert run.returncode != 0, step
    result, _ = fleet.deploy(bundle, boards[-1], env={"HYBRID_EDGE_FAILPOINT": steps[-1]})
    assert result.returncode != 0
    for step, board in zip(steps, boards):
        seq, verified = _on(fleet, board)
        assert verified and seq in (10, 11, 20), (step, seq)
    from edge.board.layout import Layout

    assert Layout(fleet.root(boards[3])).pending_file.exists() or _on(fleet, boards[3])[0] == 20
    recover = subprocess.run([sys.executable, "-m", "edge.board", "recover"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO), "HYBRID_EDGE_ROOT": str(fleet.root(boards[4]))})
    assert recover.returncode == 0, recover.stderr
    assert not Layout(fleet.root(boards[4])).pending_file.exists() and _on(fleet, boards[4])[1]
    result, report = fleet.deploy(bundle, *sorted(set(boards)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["status"] for r in report["results"]} <= {"deployed", "unchanged"}
    for board in set(boards):
        assert _on(fleet, board) == (20, True)


def test_connection_cut_mid_upload_resumes(fleet: Fleet) -> None:
    bundle = fleet.bundle("v21", 21)
    proxy = CutProxy(fleet.boards.ports[5], limit=14000)
    try:
        fleet.boards.add_alias("board5-cut", proxy.port, host_key_of=5)
        result, report = fleet.deploy(bundle, "board5-cut")
        assert _code(result) == "E_CONNECTION" and proxy.cuts >= 1
    finally:
        proxy.close()
    staging = fleet.root("board5") / "staging"
    assert any(p.name.endswith(".part") or p.is_file() for p in staging.rglob("*")), "nothing was left to resume from"
    assert _on(fleet, "board5")[1]
    result, report = fleet.deploy(bundle, "board5")
    assert result.returncode == 0, result.stderr
    assert _on(fleet, "board5") == (21, True)


def test_crashing_service_rolls_back_and_a_failing_canary_halts_the_rollout(fleet: Fleet) -> None:
    before = {b: _on(fleet, b)[0] for b in fleet.boards.names[:5]}
    bundle = fleet.bundle("v30-crash", 30, edit=crash_service)
    result, report = fleet.deploy(bundle, *fleet.boards.names[:5], extra=("--canary", "1", "--health-timeout", "8"))
    assert _code(result) == "E_HEALTH_ROLLBACK"
    rows = report["results"]
    assert (rows[0]["status"], rows[0]["error"]) == ("rolled_back", "E_HEALTH_ROLLBACK")
    assert [r["status"] for r in rows[1:]] == ["skipped"] * 4
    assert {b: _on(fleet, b)[0] for b in fleet.boards.names[:5]} == before
    deadline = time.monotonic() + 60  # the canary runs its previous release again
    from edge.board.service import is_healthy
    from edge.board.layout import Layout

    layout = Layout(fleet.root("board0"))
    while time.monotonic() < deadline and not is_healthy(layout, board_state(layout.root)["active"]["sha256"]):
        time.sleep(0.5)
    assert is_healthy(layout, board_state(layout.root)["active"]["sha256"])


def test_board_bench_brings_results_back(fleet: Fleet) -> None:
    out = fleet.dir / "bench"
    result = cli("board", "bench", *fleet.ssh("board4", "board5"), "--out", str(out),
                 "--bench-args", "--runs 20 --min-seconds 0.2 --repeats 1 --warmup 2 --meter estimate:rpi4")
    assert result.returncode == 0, result.stdout + result.stderr
    for board in ("board4", "board5"):
        results = json.loads((out / board / "results.json").read_text())
        assert results  # the board's own bench results, side by side on the laptop
