"""Producer faster than inference: the latest-frame queue stays bounded, drops are counted,
and latency (capture -> decision) stays bounded instead of growing with a backlog.

A synthetic source produces frames at ``--fps`` (faster than the model runs);
the queue depth is sampled after every frame. Run once with the drop-oldest
queue (what live sources use) and, for contrast, with an unbounded-in-effect
lossless queue of the same producer.

    python -m benchmarks.drops runs/bench112/int8 [--fps 20000 --frames 20000]
"""

from __future__ import annotations

import argparse

from benchmarks.runtime_common import header, load_average
from edge.run import RunOptions, open_session, run_stream
from edge.sources import FrameSource, SourceOptions, make_reader


def trial(bundle: str, spec: str, options: SourceOptions) -> tuple[dict, int]:
    session = open_session(bundle, RunOptions())
    depth = [0]
    with FrameSource(make_reader(spec), options) as src:
        def on_result(i: int, r: object) -> None:
            depth[0] = max(depth[0], src.queued)

        summary = run_stream(session, src, RunOptions(meter="estimate:x86-tdp"), on_result=on_result)
    return summary, depth[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--fps", type=float, default=20000)
    p.add_argument("--frames", type=int, default=20000)
    p.add_argument("--queue", type=int, default=2)
    args = p.parse_args()
    header(f"producer at {args.fps:g} fps vs inference: bounded latest-frame queue")
    session = open_session(args.bundle, RunOptions())
    h, w = session.bundle.preprocessing.size
    spec = f"synthetic:fps={args.fps:g},frames={args.frames},size={h}x{w}"
    print(f"{'queue':<22} {'processed':>9} {'dropped':>8} {'drop %':>7} {'fps':>7} {'max depth':>9} "
          f"{'e2e p50 ms':>10} {'e2e p99 ms':>10} {'e2e max ms':>10}")
    for name, opts in ((f"latest (size {args.queue})", SourceOptions(queue_size=args.queue, policy="latest")),
                       (f"block (size {args.frames})", SourceOptions(queue_size=args.frames, policy="block"))):
        s, depth = trial(args.bundle, spec, opts)
        e = s["latency_ms"]["end_to_end"]
        print(f"{name:<22} {s['frames']:9d} {s['dropped']:8d} {100 * s['drop_rate']:7.1f} {s['fps']:7.0f} {depth:9d} "
              f"{e['p50']:10.3f} {e['p99']:10.3f} {e['max']:10.3f}")
    print(f"# after: {load_average()}")


if __name__ == "__main__":
    main()
