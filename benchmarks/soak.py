"""Soak: 100 000 frames from a synthetic source through ``run_stream``.

Checks that nothing grows per frame (RSS after warm-up vs at the end) and that
latency does not drift: p99 over the first 10 000 vs the last 10 000 frames of
(a) the step's wall-clock time (preprocess + invoke + postprocess) and (b) the
consumer thread's CPU time per frame (``time.thread_time`` between results: the
whole loop — queue, step, smoothing, recording — and not inflated by other
processes competing for the CPUs, which wall-clock p99 on a shared machine is).

    python -m benchmarks.soak runs/bench/int8 [--frames 100000]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.runtime_common import header, load_average, rss_kb
from edge.measure.latency import LatencyHistogram
from edge.run import RunOptions, open_session, run_stream
from edge.sources import FrameSource, SourceOptions, make_reader


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--window", type=int, default=10_000)
    args = p.parse_args()
    header(f"soak: {args.frames} frames, synthetic source, lossless queue")
    session = open_session(args.bundle, RunOptions())
    h, w = session.bundle.preprocessing.size
    first, last = LatencyHistogram(), LatencyHistogram()
    cpu_first, cpu_last = LatencyHistogram(), LatencyHistogram()
    rss: dict[int, int] = {}
    n, win = args.frames, args.window
    cpu_prev = [time.thread_time()]

    windows = [LatencyHistogram() for _ in range((n + win - 1) // win)]  # every 10k frames: is there a trend?

    def on_result(i: int, r) -> None:  # noqa: ANN001 - StepResult
        windows[i // win].add(r.preprocess_ms + r.invoke_ms + r.postprocess_ms)
        now = time.thread_time()
        cpu_ms, cpu_prev[0] = (now - cpu_prev[0]) * 1e3, now
        ms = r.preprocess_ms + r.invoke_ms + r.postprocess_ms
        if 0 < i < win:
            first.add(ms)
            cpu_first.add(cpu_ms)
        elif i >= n - win:
            last.add(ms)
            cpu_last.add(cpu_ms)
        if i in (win, n // 2, n - 1):
            rss[i] = rss_kb()

    reader = make_reader(f"synthetic:frames={n},size={h}x{w}")
    t0 = time.perf_counter()
    with FrameSource(reader, SourceOptions(policy="block", queue_size=4)) as src:
        summary = run_stream(session, src, RunOptions(meter="estimate:x86-tdp"), on_result=on_result)
    wall = time.perf_counter() - t0
    growth = rss[n - 1] - rss[win]
    p99a, p99b = first.percentile(99), last.percentile(99)
    print(f"frames {summary['frames']} in {wall:.1f} s ({summary['fps']:.0f} fps), dropped {summary['dropped']}")
    print(f"RSS at frame {win}: {rss[win] / 1024:.2f} MB, at {n // 2}: {rss[n // 2] / 1024:.2f} MB, "
          f"at {n}: {rss[n - 1] / 1024:.2f} MB -> growth {growth} KB")
    print(f"step p99 first {win}: {p99a:.4f} ms, last {win}: {p99b:.4f} ms -> {100 * (p99b - p99a) / p99a:+.1f} %")
    print(f"step p50 first {win}: {first.percentile(50):.4f} ms, last {win}: {last.percentile(50):.4f} ms")
    c99a, c99b = cpu_first.percentile(99), cpu_last.percentile(99)
    print(f"CPU per frame p99 first {win}: {c99a:.4f} ms, last {win}: {c99b:.4f} ms -> {100 * (c99b - c99a) / c99a:+.1f} %; "
          f"p50 {cpu_first.percentile(50):.4f} -> {cpu_last.percentile(50):.4f} ms")
    print(f"step p99 per {win}-frame window, ms: " + " ".join(f"{h.percentile(99):.3f}" for h in windows))
    print(f"step p50 per {win}-frame window, ms: " + " ".join(f"{h.percentile(50):.3f}" for h in windows))
    e = summary["latency_ms"]["end_to_end"]
    print(f"end-to-end over the run: p50 {e['p50']:.4f} p99 {e['p99']:.4f} max {e['max']:.3f} ms")
    print(f"# after: {load_average()}")


if __name__ == "__main__":
    main()
