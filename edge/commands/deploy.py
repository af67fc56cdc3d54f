"""``hybrid-edge deploy``: put a signed bundle on boards over SSH (verify, switch, health check, commit or revert)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "hybrid-edge deploy bundles/cnn_lstm-int8 pi-kitchen pi-door pi@10.0.0.7:2222 --canary 1 --json deploy.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path)
    p.add_argument("targets", nargs="+", help="Host alias of the ssh config, or [user@]host[:port]")
    p.add_argument("--ssh-config", type=Path, help="ssh config file (default ~/.ssh/config)")
    p.add_argument("--parallel", type=int, default=8, help="boards at once (default 8)")
    p.add_argument("--canary", type=int, default=0, help="deploy to the first N boards before the others")
    p.add_argument("--max-failures", type=int, default=0, help="stop the rollout once more boards than this failed")
    p.add_argument("--health-timeout", type=float, default=30.0, help="seconds for the service to report healthy")
    p.add_argument("--json", type=Path, help="write the per-board results as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from edge.deploy.rollout import DeployOptions, format_table, rollout, write_json
    from edge.deploy.transport import Target
    from edge.errors import DeployError

    targets = [Target.parse(t) for t in args.targets]
    opts = DeployOptions(args.ssh_config, args.parallel, args.canary, args.max_failures, args.health_timeout)

    def done(r) -> None:
        line = f"{r.board}: {r.status}" + (f" seq {r.seq}" if r.seq is not None and r.status != "skipped" else "")
        print(line + (f" ({r.error}: {r.message})" if r.error else "") + f" in {r.seconds:.2f} s", flush=True)

    results = asyncio.run(rollout(args.bundle, targets, opts, done))
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
    bad = [r for r in results if r.status not in ("deployed", "unchanged")]
    if bad:
        first = next((r for r in bad if r.error), bad[0])
        raise DeployError(first.error or "E_SKIPPED", f"{len(bad)} of {len(results)} boards are not on the new bundle "
                                                      f"({first.message or first.status})", first.board)
    return 0
