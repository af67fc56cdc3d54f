"""Deploy time to loopback boards: one board, then three boards in parallel (target: 3 boards <= 1.5x one).

Boards are real sshd processes on 127.0.0.1 (tests/servers/sshd.py) provisioned with
``board add``; each deploy is a new signed release, so every board verifies, self-tests,
switches, restarts its service and waits for it to report healthy. Times are the rollout
in-process (no CLI start-up), median of ``--repeats``.

    python -m benchmarks.deploy BUNDLE [--repeats 3] [--health-timeout 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.deploy_fleet import loopback_fleet, signed_copy
from benchmarks.runtime_common import header, load_average


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path, help="an unsigned (or signed) bundle; copies are signed here")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--health-timeout", type=float, default=60.0)
    args = p.parse_args()
    from edge.deploy.rollout import DeployOptions, rollout
    from edge.deploy.transport import Target

    header("deploy to loopback boards (sshd on 127.0.0.1, service health check included)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with loopback_fleet(tmp, 3) as (boards, key):
            opts = DeployOptions(boards.config, parallel=8, health_timeout=args.health_timeout)
            seq = 100
            times: dict[int, list[float]] = {1: [], 3: []}
            for _ in range(args.repeats):
                for n in (1, 3):
                    seq += 1
                    bundle = signed_copy(args.bundle, tmp / f"v{seq}", key, seq)
                    t0 = time.perf_counter()
                    results = asyncio.run(rollout(bundle, [Target.parse(b) for b in boards.names[:n]], opts))
                    dt = time.perf_counter() - t0
                    bad = [r for r in results if r.status != "deployed"]
                    if bad:
                        raise SystemExit(f"deploy failed: {bad}")
                    times[n].append(dt)
                    print(f"{n} board(s): {dt:.2f} s  (per board: {', '.join(f'{r.seconds:.2f}' for r in results)})  {load_average()}")
            one, three = statistics.median(times[1]), statistics.median(times[3])
            print(f"median 1 board {one:.2f} s, 3 boards in parallel {three:.2f} s: ratio {three / one:.2f} "
                  f"({'meets' if three <= 1.5 * one else 'MISSES'} <= 1.5)")


if __name__ == "__main__":
    main()
