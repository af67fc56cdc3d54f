"""What a benchmark ran on: the machine facts of :mod:`edge.measure.board`, load, library versions."""

from __future__ import annotations

import os
import sys
from typing import Any

from edge.measure.board import machine_facts
from edge.versions import library_versions


def machine_info() -> dict[str, Any]:
    """A JSON-ready description of this machine, taken now (:func:`~edge.measure.board.machine_facts` and more)."""
    return {
        **machine_facts(),
        "load_average": list(os.getloadavg()),
        "versions": library_versions(),
        "executable": sys.executable,
    }
