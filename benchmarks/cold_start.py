"""Cold start of ``hybrid-edge run``: process start -> first decision printed, and peak RSS.

Each trial spawns ``python -m edge run BUNDLE --source synthetic:frames=1`` and
times, from just before the spawn, until the first decision line appears on its
stdout; peak RSS is the child's ``ru_maxrss`` (``os.wait4``). The summary JSON
of the child confirms TensorFlow (and OpenCV) never entered ``sys.modules``.
A bare ``python -c "import numpy"`` is timed the same way as the floor.

    python -m benchmarks.cold_start runs/bench/int8 [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.runtime_common import header, load_average


def _spawn(cmd: list[str], marker: str | None) -> tuple[float, float, int]:
    """(seconds to marker line or exit, seconds to exit, peak RSS KB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if first is None and marker is not None and marker in line:
            first = time.perf_counter() - t0
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return (first if first is not None else total), total, usage.ru_maxrss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--trials", type=int, default=10)
    args = p.parse_args()
    header("cold start: process start -> first result, peak RSS (median of trials)")
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        run_cmd = [sys.executable, "-m", "edge", "run", args.bundle, "--source", "synthetic:frames=1",
                   "--meter", "estimate:rpi4", "--summary-json", str(summary)]
        floor_cmd = [sys.executable, "-c", "import numpy"]
        rows = {"python -c 'import numpy'": [], "hybrid-edge run (first result)": []}
        for _ in range(args.trials):
            rows["python -c 'import numpy'"].append(_spawn(floor_cmd, None))
            rows["hybrid-edge run (first result)"].append(_spawn(run_cmd, " frame "))
        s = json.loads(summary.read_text())
    print(f"{'command':<32} {'first result s':>15} {'min s':>7} {'exit s':>7} {'peak RSS MB':>12}")
    for name, trials in rows.items():
        first = [t[0] for t in trials]
        print(f"{name:<32} {statistics.median(first):15.3f} {min(first):7.3f} "
              f"{statistics.median(t[1] for t in trials):7.3f} {max(t[2] for t in trials) / 1024:12.1f}")
    print(f"tensorflow in sys.modules: {s['tensorflow_imported']}; cv2 in sys.modules: {s['opencv_imported']}; "
          f"backend {s['backend']}")
    print(f"# after: {load_average()}")


if __name__ == "__main__":
    main()
