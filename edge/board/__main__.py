"""``python -m edge.board COMMAND``: the board agent the host runs over SSH.

Prints one JSON object on stdout; a failure is ``{"error": CODE, "message": ...}`` with exit status 3.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from edge.board import agent, service
from edge.board.layout import Layout, board_root
from edge.board.service import BoardConfig
from edge.errors import DeployError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.board", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("apply", help="verify, stage, switch, health check, commit or revert")
    a.add_argument("staged", type=Path)
    a.add_argument("--health-timeout", type=float, default=30.0)
    a.add_argument("--selftest-timeout", type=float, default=120.0)
    c = sub.add_parser("check", help="is the board already healthy on this bundle?")
    c.add_argument("sha256")
    r = sub.add_parser("recover", help="revert an uncommitted switch (and clean staging)")
    r.add_argument("--clean-staging", action="store_true")
    r.add_argument("--restart", action="store_true", help="restart the service when a switch was reverted")
    b = sub.add_parser("rollback", help="switch to the previous committed release")
    b.add_argument("--health-timeout", type=float, default=30.0)
    sub.add_parser("status", help="active/previous release, verification, service, history")
    i = sub.add_parser("init", help="provision the board root")
    i.add_argument("--python", default=sys.executable)
    i.add_argument("--trust", action="append", default=[], help="an ssh-ed25519 public key line")
    i.add_argument("--service", default="", help="JSON list: the service command after `hybrid-edge`")
    i.add_argument("--env", default="{}", help="JSON object: environment for the service")
    sub.add_parser("start", help="(re)start the service")
    sub.add_parser("stop", help="stop the service")
    sub.add_parser("supervise", help="run the service command and restart it on failure (no systemd)")
    sub.add_parser("root", help="print the board root")
    return p


def _run(args: argparse.Namespace, layout: Layout) -> Any:
    if args.command == "apply":
        return agent.apply(layout, args.staged, args.health_timeout, args.selftest_timeout)
    if args.command == "check":
        return agent.check(layout, args.sha256)
    if args.command == "recover":
        result = agent.recover(layout, args.clean_staging)
        if result["recovered"] and args.restart:
            service.start(layout, BoardConfig.read(layout))
        return result
    if args.command == "rollback":
        return agent.rollback(layout, args.health_timeout)
    if args.command == "status":
        return agent.status(layout)
    if args.command == "init":
        return agent.init(layout, args.python, args.trust, json.loads(args.service or "[]"), json.loads(args.env))
    if args.command in ("start", "stop"):
        config = BoardConfig.read(layout)
        (service.start if args.command == "start" else service.stop)(layout, config)
        return {"service": args.command}
    if args.command == "supervise":
        raise SystemExit(service.supervise(layout, BoardConfig.read(layout)))
    return {"root": str(layout.root)}


def _emit(obj: Any) -> None:
    try:
        print(json.dumps(obj), flush=True)
    except BrokenPipeError:  # the host went away; the board state is already consistent
        pass


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a cut connection must not stop a step half-way
    args = _parser().parse_args(argv)
    try:
        result = _run(args, Layout(board_root()))
    except DeployError as exc:
        _emit({"error": exc.code, "message": exc.detail})
        return 3
    _emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
