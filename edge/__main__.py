"""`python -m edge` is the `hybrid-edge` command."""

from edge.cli import main

raise SystemExit(main())
