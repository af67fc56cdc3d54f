"""Progress display: tqdm bars on a terminal, a few plain lines otherwise.

Long steps (data generation, training epochs, calibration, verification,
streaming evaluation, benchmark repeats) report through :func:`progress` or
:class:`Progress`. On a terminal they draw a tqdm bar on stderr; when stdout is
not a terminal (a log file, CI, a pipe) they print one plain line to stderr
when the step ends, so logs stay short and readable. ``HYBRID_EDGE_PROGRESS=0`` turns bars and
lines off; ``=lines`` forces plain lines.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


def _mode() -> str:
    """``bar``, ``lines`` or ``off``."""
    env = os.environ.get("HYBRID_EDGE_PROGRESS", "")
    if env in ("0", "off"):
        return "off"
    if env == "lines":
        return "lines"
    return "bar" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"


def bars() -> bool:
    """True when progress draws bars (so per-step lines would be noise)."""
    return _mode() == "bar"


class Progress:
    """A counter over ``total`` steps: ``update()``, ``note(text)`` (shown beside the bar), ``close()``."""

    def __init__(self, total: int | None, desc: str, unit: str = "it"):
        self.desc, self.unit, self.total = desc, unit, total
        self.n = 0
        self._t0 = time.perf_counter()
        self._note = ""
        self._mode = _mode()
        self._bar: Any = None
        if self._mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def note(self, text: str) -> None:
        """A short status (e.g. the last epoch's metrics) shown beside the bar and in the closing line."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._mode != "off" and self._t0 is not None:
            note = f"; {self._note}" if self._note else ""
            print(f"  {self.desc}: {self.n} {self.unit} in {time.perf_counter() - self._t0:.1f} s{note}", file=sys.stderr, flush=True)
            self._t0 = None  # type: ignore[assignment]

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` while showing progress (see the module docstring)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update()
