"""The ``hybrid-edge`` command (also ``python -m edge``).

Subcommands are a lazy table (:data:`edge.commands.COMMANDS`): only the chosen
one's module is imported, so ``run``/``inspect``/``eval`` on a board never pay
for (or need) TensorFlow, the training or conversion packages. Expected
failures print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from edge.commands import COMMANDS
from edge.errors import HybridEdgeError

PROG = "hybrid-edge"
DESCRIPTION = "Hybrid CNN-RNN models from Keras to int8 TFLite to edge boards."


def overview() -> str:
    """``hybrid-edge --help``: the commands and their summaries, from the table alone."""
    width = max(len(n) for n in COMMANDS)
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for one command)", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (imports that command's module only)."""
    module_name, summary = COMMANDS[name]
    mod = importlib.import_module(module_name)
    p = argparse.ArgumentParser(prog=f"{PROG} {name}", description=summary, epilog=f"example:\n  {mod.EXAMPLE}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(p)
    p.set_defaults(func=mod.run, command=name)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        print(f"{PROG}: error: unknown command {name!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    args = build_parser(name).parse_args(argv[1:])
    try:
        return int(args.func(args))
    except HybridEdgeError as exc:
        print(f"{PROG} {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {name}: interrupted", file=sys.stderr)
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
