"""``hybrid-edge wheelhouse``: wheels for offline board installs (``board add --wheelhouse``)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = "hybrid-edge wheelhouse --platform linux_aarch64 --python 3.11 --out wh/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", required=True, choices=("linux_aarch64", "linux_x86_64"))
    p.add_argument("--python", default="3.11", help="the board's Python version (default 3.11)")
    p.add_argument("--out", type=Path, required=True)


def run(args: argparse.Namespace) -> int:
    from edge.deploy.wheelhouse import build_wheelhouse

    req = build_wheelhouse(args.out, args.platform, args.python)
    lines = req.read_text().splitlines()
    print(f"{len(lines)} wheels in {args.out}, hashes locked in {req}")
    for line in lines:
        print("  " + line.split(" ")[0])
    return 0
