"""Shared bits of the runtime benchmarks: machine load, RSS, a printed header."""

from __future__ import annotations

import os
import platform
import sys
import time


def load_average() -> str:
    """``uptime``-style 1/5/15-minute load, recorded next to every timing."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def rss_kb() -> int:
    """Resident set size of this process (from /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def header(title: str) -> None:
    print(f"# {title}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {platform.machine()}  python {sys.version.split()[0]}  {load_average()}")
