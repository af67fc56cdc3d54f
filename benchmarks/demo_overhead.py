"""What watching the live view costs the board: CPU per inferred frame, and inference speed under stalled viewers.

    python -m benchmarks.demo_overhead [BUNDLE] [--seconds 8] [--rounds 3]

``hybrid-edge demo`` runs as its own process; this script is the viewer (another
process), so the demo's CPU time holds only what the board would spend. The CPU
time is the demo's own ``time.process_time()`` (all its threads, also ended ones,
to the nanosecond), read from ``/stats.json`` in the same answer as the count of
inferred frames; ``/proc`` ticks (10 ms) would be 4 % of a phase's CPU here.
Each round runs three phases on the same running demo: no viewer, a video-only
viewer (MJPEG at 10 fps, 480 px wide) and a page's worth of viewer (the same video
plus the event stream at the video's rate, as the page asks). A round's extra is
against that round's no-viewer phase (paired: the machine's load drifts); the
median over ``--rounds`` is printed with every round's value. On a shared machine
that total moves by 10-20 % between phases with no viewer at all, so each viewer
phase also prints the viewer's *direct* cost: the CPU of the threads that serve it
(those that appeared when it connected, not the handlers of this script's own
``/stats.json`` requests; ``/proc/PID/task/*/schedstat``, nanoseconds)
plus the CPU the loop spent encoding and writing its frames and decisions
(``encode_cpu_s`` + ``events_cpu_s`` in ``/stats.json``, the loop thread's
``thread_time``), steady to a few percent, without what it costs the loop
indirectly (caches), which only the total shows.

1. CPU per inferred frame for two videos of the synthetic activities replayed at
   30 fps like a camera, each exactly one phase long and looped, so every phase
   infers the same frames: 48x48 (the model's input: the cheapest possible frame,
   so the worst case for relative overhead) and 640x480 (a camera's).
2. Inference speed with an unthrottled source (``synthetic-actions:fps=1000``)
   with no viewer vs 5 stalled viewers (connected, asking for video, never reading).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
class DemoProcess:
    """``hybrid-edge demo`` in a child process on a free port."""

    def __init__(self, bundle: str, source: str, *extra: str):
        cmd = [sys.executable, "-m", "edge", "demo", bundle, "--source", source, "--port", "0",
               "--meter", "estimate:x86-tdp", *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     # stop() sends Ctrl-C: not ignored even when this runs as a background job
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        line = ""
        while not line.startswith("live view:"):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the demo did not start")
        self.port = int(line.rsplit(":", 1)[1].strip("/\n"))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for _ in self.proc.stdout:
            pass

    def thread_ns(self) -> dict[int, int]:
        """CPU nanoseconds of each live thread of the demo, by thread id."""
        out = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
                continue
        return out

    def counters(self) -> tuple[int, float, float]:
        """(frames inferred, CPU seconds of the demo process, CPU seconds its loop spent serving viewers:
        encoding and writing their frames and decisions), from one ``/stats.json`` answer."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats.json", timeout=10) as r:
            stats = json.load(r)
        return int(stats["frames"]), float(stats["cpu_s"]), float(stats["encode_cpu_s"]) + float(stats["events_cpu_s"])

    def measure(self, seconds: float) -> tuple[float, float, int, float]:
        """(CPU ms per inferred frame, inferred frames per second, frames, the loop's CPU ms per inferred frame
        spent serving viewers) over ``seconds``."""
        (f0, c0, e0), t0 = self.counters(), time.monotonic()
        time.sleep(seconds)
        (f1, c1, e1), t1 = self.counters(), time.monotonic()
        n = max(1, f1 - f0)
        return (c1 - c0) * 1e3 / n, (f1 - f0) / (t1 - t0), f1 - f0, (e1 - e0) * 1e3 / n

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def raw_get(port: int, path: str, cookie: str = "", rcvbuf: int | None = None) -> socket.socket:
    """A socket that sent ``GET path`` to the demo on 127.0.0.1 (read the answer yourself, or never:
    with a small ``rcvbuf`` and no reading it is a stalled viewer)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
    return s


class Viewer:
    """One viewer's connections, read and discarded in threads: the video (MJPEG) and, as the page opens
    it, the event stream at the video's rate; counts what arrived."""

    def __init__(self, port: int, fps: float = 10, width: int = 480, events: bool = True):
        paths = [f"/stream.mjpg?fps={fps:g}&w={width}"] + ([f"/events?fps={fps:g}"] if events else [])
        self.socks = [raw_get(port, path) for path in paths]
        self.counts = [0] * len(paths)  # JPEG parts, events
        self.marks = (b"Content-Type: image/jpeg", b"\ndata: ")
        self.t0 = time.monotonic()
        for i, s in enumerate(self.socks):
            threading.Thread(target=self._read, args=(i, s), daemon=True).start()

    def _read(self, i: int, s: socket.socket) -> None:
        tail = b""
        try:
            while chunk := s.recv(65536):
                data = tail + chunk
                self.counts[i] += data.count(self.marks[i]) - tail.count(self.marks[i])
                tail = data[-32:]
        except OSError:
            pass

    def rates(self) -> list[float]:
        """Video frames and events received per second so far."""
        return [n / (time.monotonic() - self.t0) for n in self.counts]

    def close(self) -> None:
        for s in self.socks:
            s.close()


def write_video(path: Path, seconds: float, size: tuple[int, int], fps: float = 30.0) -> None:
    """``seconds`` of the synthetic activities as a video of ``size`` (48x48 as rendered, or upscaled as a
    camera would deliver them). Replayed with ``--loop``, every phase of ``seconds`` sees the same frames."""
    import cv2
    import numpy as np

    from edge.synthetic import ACTIONS, SyntheticActionsConfig, render_clip

    cfg = SyntheticActionsConfig(size=48, frames=16)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    frames = 0
    for i in range(int(seconds * fps / cfg.frames) + 1):
        for frame in render_clip(ACTIONS[i % len(ACTIONS)], cfg, np.random.default_rng([0, i])):
            if frames < round(seconds * fps):
                writer.write(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_LINEAR))
                frames += 1
    writer.release()


def spread(values: list[float]) -> str:
    return "/".join(f"{v:.3g}" for v in values)


def cpu_overhead(bundle: str, source: str, seconds: float, rounds: int, *extra: str) -> dict[str, Any]:
    """Per round: CPU ms per inferred frame with no viewer, a video-only viewer and a page's viewer
    (the whole process), and the viewer's own threads' CPU ms per inferred frame."""
    demo = DemoProcess(bundle, source, *extra)
    phases: dict[str, list[float]] = {"alone": [], "video": [], "page": []}
    own: dict[str, list[float]] = {"video": [], "page": []}
    fps: list[float] = []
    got: dict[str, list[float]] = {"video": [], "page": [], "events": []}
    try:
        time.sleep(3.0)  # warm-up
        for _ in range(rounds):
            ms, rate, _, _ = demo.measure(seconds)
            phases["alone"].append(ms)
            fps.append(rate)
            for name in ("video", "page"):
                before = set(demo.thread_ns())
                viewer = Viewer(demo.port, events=name == "page")
                time.sleep(1.0)
                t0 = demo.thread_ns()
                ms, rate, frames, serve_ms = demo.measure(seconds)
                t1 = demo.thread_ns()
                received = viewer.rates()
                viewer.close()
                phases[name].append(ms)
                # the viewer's direct cost: its threads (those that appeared when it connected: not the ones this
                # script's /stats.json requests start during the phase), and what the loop does for it
                own[name].append(sum(ns - t0[tid] for tid, ns in t1.items() if tid in t0 and tid not in before)
                                 / 1e6 / max(1, frames) + serve_ms)
                fps.append(rate)
                got[name].append(received[0])
                if name == "page":
                    got["events"].append(received[1])
                time.sleep(0.5)
    finally:
        demo.stop()
    out: dict[str, Any] = {"fps": statistics.median(fps), "ms": phases, "got": got}
    for name in ("video", "page"):
        extra_pct = [100 * (w - a) / a for a, w in zip(phases["alone"], phases[name])]
        own_pct = [100 * o / a for a, o in zip(phases["alone"], own[name])]
        out[name] = {"extra_pct": statistics.median(extra_pct), "rounds_pct": extra_pct,
                     "extra_ms": statistics.median(w - a for a, w in zip(phases["alone"], phases[name])),
                     "own_ms": statistics.median(own[name]), "own_pct": statistics.median(own_pct), "own_rounds_pct": own_pct}
    return out


def stalled_speed(bundle: str, seconds: float, rounds: int, viewers: int = 5) -> dict[str, Any]:
    demo = DemoProcess(bundle, "synthetic-actions:fps=1000")
    try:
        time.sleep(3.0)
        alone, stalled = [], []
        for _ in range(rounds):
            alone.append(demo.measure(seconds)[1])
            socks = [raw_get(demo.port, "/stream.mjpg?fps=10&w=480", rcvbuf=4096) for _ in range(viewers)]
            time.sleep(1.0)
            stalled.append(demo.measure(seconds)[1])
            for s in socks:
                s.close()
            time.sleep(0.5)
    finally:
        demo.stop()
    a, s = statistics.median(alone), statistics.median(stalled)
    return {"alone_fps": a, "stalled_fps": s, "change_pct": 100 * (s - a) / a, "alone_all": alone, "stalled_all": stalled}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", nargs="?", default="runs/demo-int8")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    info = machine_info()
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, load average {[round(x, 2) for x in info['load_average']]}")
    print(f"bundle {args.bundle}; {args.rounds} rounds of {args.seconds:g} s per phase; demo CPU = its process_time() "
          "(all threads); viewer: MJPEG 10 fps 480 px (+ events at 10 writes/s for a page)")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((48, 48), (640, 480)):
            name, video = f"{w}x{h} video replayed @30 fps", Path(tmp) / f"actions{w}x{h}.avi"
            write_video(video, args.seconds, (w, h))
            r = cpu_overhead(args.bundle, str(video), args.seconds, args.rounds, "--loop")
            ms, got = r["ms"], r["got"]
            print(f"{name} [{r['fps']:.1f} fps inferred]: CPU per inferred frame {statistics.median(ms['alone']):.3f} ms alone "
                  f"(rounds {spread(ms['alone'])})")
            for phase, what in (("video", "video only"), ("page", "page: video + events")):
                received = f"{statistics.median(got[phase]):.1f} frames/s received"
                if phase == "page":
                    received += f", {statistics.median(got['events']):.1f} events/s"
                v = r[phase]
                print(f"  {what:21s} {statistics.median(ms[phase]):.3f} ms: {v['extra_pct']:+.1f} % "
                      f"({v['extra_ms']:+.3f} ms; rounds {spread([round(x, 1) for x in v['rounds_pct']])} %); "
                      f"direct {v['own_ms']:.3f} ms = {v['own_pct']:.1f} % "
                      f"(rounds {spread([round(x, 1) for x in v['own_rounds_pct']])} %); {received}")
    r = stalled_speed(args.bundle, args.seconds, args.rounds)
    print(f"unthrottled source: {r['alone_fps']:.1f} fps alone, {r['stalled_fps']:.1f} fps with 5 stalled viewers "
          f"({r['change_pct']:+.1f} %)  [alone {[round(x, 1) for x in r['alone_all']]}, stalled {[round(x, 1) for x in r['stalled_all']]}]")
    info = machine_info()
    print(f"load average after: {[round(x, 2) for x in info['load_average']]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
