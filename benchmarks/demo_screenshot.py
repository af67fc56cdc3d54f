"""The live view in a real browser: a screenshot for the docs and the glass-to-label lag.

    python -m benchmarks.demo_screenshot BUNDLE [--compare BUNDLE2] [--out docs/images/demo.png]

1. Screenshot: ``hybrid-edge demo BUNDLE --source synthetic-actions --smooth ema:0.3``
   (with ``--compare``), watched by headless Chromium for ``--seconds``, saved as PNG.
2. Lag: the same with ``synthetic-actions:stamp=1`` (the frame number written
   into the picture). Chromium reads the number back from the video it shows and
   the sequence number of the decision it shows; their difference, sampled
   ``--samples`` times, is the glass-to-label lag in frames (positive: the label is
   ahead of the picture), at the camera's rate and at 10 fps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.browser import ServedDemo, chrome, lag_frames, probe_frame
from benchmarks.machine import machine_info
from edge.run import RunOptions
from edge.web.demo import DemoOptions

SOURCE_FPS = 15.0


def screenshot(bundle: str, compare: str | None, out: Path, seconds: float) -> None:
    """Run the demo, let the timeline fill for ``seconds``, save what Chromium shows."""
    options = DemoOptions(run=RunOptions(meter="auto", smooth="ema:0.3"), port=0, compare=compare, fps=SOURCE_FPS, width=480)
    served = ServedDemo(bundle, f"synthetic-actions:hold=2,fps={SOURCE_FPS:g},seed=0", options)
    try:
        with chrome(1280, 1100) as driver:
            driver.get(f"http://127.0.0.1:{served.port}/")
            time.sleep(seconds)
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
    finally:
        served.stop()
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB) after {seconds:g} s of live view")


def lag(bundle: str, samples: int, stream_fps: float) -> list[int]:
    """Glass-to-label lag samples in frames, with the video sent at ``stream_fps``."""
    options = DemoOptions(run=RunOptions(meter="auto"), port=0, fps=stream_fps, width=480)
    served = ServedDemo(bundle, f"synthetic-actions:fps={SOURCE_FPS:g},stamp=1,seed=0", options)
    found: list[int] = []
    try:
        with chrome(1000, 800) as driver:
            driver.get(f"http://127.0.0.1:{served.port}/")
            time.sleep(3.0)  # warm up: first frames, first decisions
            while len(found) < samples:
                value = lag_frames(probe_frame(driver))
                if value is not None:
                    found.append(value)
                time.sleep(0.13)
    finally:
        served.stop()
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--compare")
    p.add_argument("--out", type=Path, default=Path("docs/images/demo.png"))
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--no-screenshot", action="store_true")
    args = p.parse_args(argv)
    info = machine_info()
    print(f"machine: {info.get('cpu_model')}, {info.get('cores')} cores, load {info.get('load_average')}")
    if not args.no_screenshot:
        screenshot(args.bundle, args.compare, args.out, args.seconds)
    for fps in (SOURCE_FPS, 10.0):
        values = lag(args.bundle, args.samples, fps)
        within = sum(abs(v) <= 2 for v in values) / len(values)
        print(f"glass-to-label lag, source {SOURCE_FPS:g} fps, video {fps:g} fps: median {statistics.median(values):g} frames, "
              f"min {min(values)}, max {max(values)}, |lag| <= 2 in {100 * within:.0f} % of {len(values)} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
