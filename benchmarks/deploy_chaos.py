"""kill -9 during deploys at random moments; every board must keep a verified ``current`` and re-runs converge.

Each trial deploys a new signed release to three loopback boards with the CLI, then
SIGKILLs, at a seeded random moment, either the CLI or one board's agent (``python -m
edge.board apply``, found by its board root in /proc). Then, on every board, ``current``
must point at a complete bundle whose signature and files verify; the same deploy is run
again (retried while a surviving agent still holds the board lock) and must end with every
board on the new release.

    python -m benchmarks.deploy_chaos BUNDLE [--trials 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.deploy_fleet import REPO, loopback_fleet, signed_copy
from benchmarks.runtime_common import header, load_average


def _agent_pids(root: Path) -> list[int]:
    """Board agents doing ``apply`` for the board at ``root`` (matched by their environment)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"edge.board" in cmd and b"apply" in cmd and f"HYBRID_EDGE_ROOT={root}".encode() in env:
            pids.append(int(entry.name))
    return pids


def _deploy(bundle: Path, config: Path, boards: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", "deploy", str(bundle), *boards, "--ssh-config", str(config),
                             "--health-timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=float, default=0.0, help="kill within this many seconds (default: a measured deploy's time)")
    args = p.parse_args()
    from edge.board.agent import status
    from edge.board.layout import Layout

    rng = random.Random(args.seed)
    header(f"kill -9 during deploys: {args.trials} trials, seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with loopback_fleet(tmp, 3) as (boards, key):
            seq = 1000
            t0 = time.perf_counter()
            first = _deploy(signed_copy(args.bundle, tmp / "v1000", key, seq), boards.config, boards.names)
            first.communicate()
            window = args.window or (time.perf_counter() - t0)
            print(f"kill window {window:.2f} s (one undisturbed 3-board deploy; exit {first.returncode})")
            missing = not_converged = 0
            for trial in range(args.trials):
                seq += 1
                bundle = signed_copy(args.bundle, tmp / f"v{seq}", key, seq)
                victim = rng.choice(["cli", "agent"])
                at = rng.uniform(0.0, window)
                board = rng.randrange(len(boards.names))
                proc = _deploy(bundle, boards.config, boards.names)
                t_start = time.perf_counter()
                killed = "nothing (already done)"
                if victim == "cli":
                    time.sleep(at)
                    if proc.poll() is None:
                        proc.kill()
                        killed = "the CLI"
                else:  # wait for this board's agent to start applying, then kill it a random moment later
                    pids: list[int] = []
                    while not pids and proc.poll() is None and time.perf_counter() - t_start < 60:
                        pids = _agent_pids(boards.roots[board])
                        time.sleep(0.02)
                    at = rng.uniform(0.0, window / 2)
                    time.sleep(at)
                    pids = _agent_pids(boards.roots[board])
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    at = time.perf_counter() - t_start
                    killed = f"the agent on {boards.names[board]}" if pids else f"nothing (agent on {boards.names[board]} done)"
                proc.communicate()
                states = [status(Layout(r)) for r in boards.roots]
                bad = [n for n, s in zip(boards.names, states) if not (s["active"] and s["verified"])]
                missing += len(bad)
                for attempt in range(30):  # a surviving agent may still hold a lock
                    rerun = _deploy(bundle, boards.config, boards.names)
                    out, err = rerun.communicate()
                    if rerun.returncode == 0 or "E_LOCKED" not in err:
                        break
                    time.sleep(1.0)
                on_new = [s["active"]["seq"] if s["active"] else None for s in (status(Layout(r)) for r in boards.roots)]
                ok = rerun.returncode == 0 and on_new == [seq] * len(boards.names)
                not_converged += not ok
                print(f"trial {trial + 1:2d}: kill at {at:5.2f} s of {killed:<34} -> seqs after kill "
                      f"{[s['active']['seq'] if s['active'] else None for s in states]}, without verified current: {bad or 0}; "
                      f"re-run {'converged' if ok else 'DID NOT CONVERGE: ' + err.strip()[-200:]} ({attempt + 1} run(s))", flush=True)
            print(f"{args.trials} trials: {missing} board(s) without a verified current, {not_converged} re-run(s) not converged; {load_average()}")


if __name__ == "__main__":
    main()
