"""`python -m edge` is the `hybrid-edge` command."""

from edge.cli import entry

entry()
