"""``hybrid-edge board``: provision boards (add), and status, rollback, bench on them."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

EXAMPLE = "hybrid-edge board add pi-kitchen --trust release-key.pub --wheelhouse wh/ --service 'run --source 0'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="provision boards: root, runtime, agent, trusted key, service")
    status = sub.add_parser("status", help="active and previous release, verification, service, history")
    rollback = sub.add_parser("rollback", help="switch to the previous committed release")
    bench = sub.add_parser("bench", help="run `bench` on each board's active bundle and bring results.json back")
    for q in (add, status, rollback, bench):
        q.add_argument("targets", nargs="+")
        q.add_argument("--ssh-config", type=Path)
        q.add_argument("--parallel", type=int, default=8)
    add.add_argument("--trust", type=Path, action="append", required=True, help="public key (KEY.pub) whose bundles the board accepts")
    rt = add.add_mutually_exclusive_group(required=True)
    rt.add_argument("--runtime-python", help="a Python on the board with hybrid-edge installed")
    rt.add_argument("--wheelhouse", type=Path, help="install a venv in the board root offline from this wheelhouse")
    add.add_argument("--board-python", default="python3", help="Python that makes the venv (with --wheelhouse)")
    add.add_argument("--service", default="", help="service command after `hybrid-edge`, e.g. 'run --source 0'")
    status.add_argument("--json", type=Path)
    rollback.add_argument("--health-timeout", type=float, default=30.0)
    bench.add_argument("--out", type=Path, required=True, help="OUT/<board>/results.json per board")
    bench.add_argument("--bench-args", default="--runs 100 --min-seconds 1 --repeats 1",
                       help="arguments for `hybrid-edge bench` on the board")


def _print_rows(rows: list[dict], fmt) -> None:
    for row in rows:
        print(f"{row['board']}: error {row['error']}: {row['message']}" if "error" in row else fmt(row), flush=True)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from edge.deploy import boards
    from edge.deploy.transport import Target
    from edge.errors import DeployError

    targets = [Target.parse(t) for t in args.targets]
    if args.action == "add":
        opts = boards.ProvisionOptions(tuple(k.read_text().strip() for k in args.trust), args.runtime_python,
                                       args.wheelhouse, args.board_python, tuple(shlex.split(args.service)))
        action = lambda b: boards.provision(b, opts)  # noqa: E731
        fmt = lambda r: f"{r['board']}: ready at {r['root']} (python {r['python']}, service {r['manager']}, {r['trusted_keys']} trusted key(s))"  # noqa: E731
    elif args.action == "status":
        action = boards.status
        fmt = _status_line
    elif args.action == "rollback":
        action = lambda b: boards.rollback(b, args.health_timeout)  # noqa: E731
        fmt = lambda r: f"{r['board']}: rolled back to seq {r['seq']} ({r['sha256'][:12]})"  # noqa: E731
    else:
        action = lambda b: boards.bench(b, args.out, shlex.split(args.bench_args))  # noqa: E731
        fmt = lambda r: f"{r['board']}: {r['results']}"  # noqa: E731
    rows = asyncio.run(boards.on_boards(targets, args.ssh_config, args.parallel, action))
    _print_rows(rows, fmt)
    if getattr(args, "json", None):
        args.json.write_text(json.dumps({"boards": rows}, indent=2) + "\n")
    failed = [r for r in rows if "error" in r]
    if failed:
        raise DeployError(failed[0]["error"], f"{len(failed)} of {len(rows)} boards failed ({failed[0]['message']})", failed[0]["board"])
    return 0


def _status_line(r: dict) -> str:
    a = r.get("active")
    active = f"seq {a['seq']} {a['sha256'][:12]} {a['model']} {a['precision']}" if a else "no active bundle"
    hb = r.get("heartbeat")
    beat = f"{hb['frames']} frames, {hb['age_s']:.1f} s ago" if hb else "no heartbeat"
    svc = "running" if r["service"]["running"] else "stopped"
    return f"{r['board']}: {active}, {'verified' if r['verified'] else 'NOT VERIFIED'}, service {svc} ({beat})"
