"""The ``hybrid-edge`` command (also ``python -m edge``).

Subcommands live one per module in :mod:`edge.commands`, each a few lines over
a library function. Training and conversion import their (TensorFlow) packages
lazily, so ``run``/``eval`` on a board never pay for — or need — TensorFlow.
Expected failures print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from types import ModuleType
from typing import NoReturn

import edge.commands
from edge.errors import HybridEdgeError


def _commands() -> list[ModuleType]:
    mods = [importlib.import_module(f"edge.commands.{m.name}") for m in pkgutil.iter_modules(edge.commands.__path__)]
    return sorted(mods, key=lambda m: (m.ORDER, m.NAME))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid-edge", description="Hybrid CNN-RNN models from Keras to int8 TFLite to edge boards.")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP, epilog=f"example:\n  {mod.EXAMPLE}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HybridEdgeError as exc:
        print(f"hybrid-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hybrid-edge {args.command}: interrupted", file=sys.stderr)
        return 130


def finish(code: int) -> NoReturn:
    """Exit with ``code``; skip interpreter finalization if a reader thread is stuck inside OpenCV.

    Finalizing would end that thread with a forced unwind through C++ frames and
    abort the process (exit -6 after a clean one-line ``camera_lost``).
    """
    sources = sys.modules.get("edge.sources")
    if sources is not None and sources.stuck_native_readers():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def entry() -> NoReturn:
    """The ``hybrid-edge`` console script and ``python -m edge``."""
    finish(main())


if __name__ == "__main__":
    entry()
