"""The board side of ``hybrid-edge deploy``: verify, stage, switch, health check, commit or revert.

Runs on the board with the Python standard library and the edge runtime only
(signatures are checked by ``ssh-keygen -Y verify``). The host drives it over SSH
as ``python -m edge.board COMMAND`` (see :mod:`edge.board.__main__`); every
command prints one JSON object. The layout and protocol are in docs/deploy.md.
"""
