"""One module per ``hybrid-edge`` subcommand.

Each module defines ``NAME``, ``HELP``, ``EXAMPLE``, ``ORDER`` (position in
``--help``), ``add_arguments(parser)`` and ``run(args) -> int``. The CLI finds
them here, so adding a subcommand is adding a module. Modules import their
heavy packages (TensorFlow, matplotlib) inside ``run`` only.
"""
