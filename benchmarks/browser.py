"""A real headless Chromium for the live-view tests and benchmarks (selenium + Debian's chromium-driver),
and :class:`ServedDemo`, a ``hybrid-edge demo`` serving in a background thread.

:func:`chrome` starts one; :func:`probe_frame` reads what the page shows: a hash
of the video image as drawn to a canvas, the frame number stamped into it
(``synthetic-actions:stamp=1``) and the sequence number of the decision on screen.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CHROMEDRIVER = "/usr/bin/chromedriver"

# draws the <img id=video> (the MJPEG stream) to a canvas: {hash, stamp, seq} or null before the first frame
PROBE_JS = """
const img = document.getElementById('video');
if (!img || !img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let h = 2166136261;
for (let i = 0; i < d.length; i += 3) h = Math.imul(h ^ d[i], 16777619) >>> 0;
const bits = 12, cell = c.width / bits, rows = Math.max(2, Math.min(Math.floor(c.height / 8), Math.floor(cell)));
let stamp = 0;
for (let b = 0; b < bits; b++) {
  const o = (Math.floor(rows / 2) * c.width + Math.floor((b + 0.5) * cell)) * 4;
  stamp = (stamp << 1) | ((d[o] + d[o + 1] + d[o + 2]) / 3 > 127 ? 1 : 0);
}
const seq = document.body.dataset.seq;
return {hash: h, stamp: stamp, seq: seq === undefined ? null : Number(seq), width: c.width};
"""


def chromium_available() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    if not os.path.exists(CHROMEDRIVER) or shutil.which("chromium") is None:
        return "chromium + chromium-driver not installed (make test installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chrome(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile, closed on exit."""
    os.environ["SE_OFFLINE"] = "true"  # selenium must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hybrid-edge-chrome-")
    opts = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def probe_frame(driver: Any) -> dict[str, Any] | None:
    """What the page shows right now (see :data:`PROBE_JS`)."""
    return driver.execute_script(PROBE_JS)


def lag_frames(probe: dict[str, Any]) -> int | None:
    """Decision on screen minus frame on screen, in frames (positive: the label is ahead of the picture)."""
    if probe is None or probe["seq"] is None:
        return None
    diff = (int(probe["seq"]) - int(probe["stamp"])) % 4096
    return diff - 4096 if diff > 2048 else diff


class ServedDemo:
    """``hybrid-edge demo`` serving in a background thread; :meth:`stop` ends it with its run summary."""

    def __init__(self, bundle: str | Path, source: str, options: Any, min_frames: int = 3, timeout_s: float = 30.0):
        from edge.web.demo import Demo

        self.demo = Demo(bundle, source, options)
        self.summary: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._serve, name="demo", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while self.demo.hub.frames < min_frames:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo produced no frames")
            time.sleep(0.02)

    def _serve(self) -> None:
        self.summary = self.demo.serve()

    @property
    def port(self) -> int:
        return self.demo.server.port

    def stop(self) -> None:
        self.demo.stop()
        self.thread.join(10)
