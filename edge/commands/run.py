"""``hybrid-edge run``: stream a camera, video, URL, image folder or stdin through a bundle."""

from __future__ import annotations

import argparse

from edge.commands import add_delegate_option, add_meter_option
import json
import sys
from pathlib import Path

EXAMPLE = "hybrid-edge run bundles/cnn_lstm-int8 --source 0 --smooth ema:0.6 --json-log run.jsonl"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle")
    p.add_argument("--source", required=True,
                   help="camera index (0), video file, rtsp:// or http:// URL, image directory, "
                        "'-' (raw RGB frames on stdin, HxWx3 at the bundle's size), 'stdin:framed', "
                        "or synthetic:frames=300 (test frames, unpaced and lossless; add fps=30 to pace them like a camera)")
    p.add_argument("--threads", type=int, default=1)
    add_delegate_option(p)
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: until the source ends)")
    p.add_argument("--smooth", help="ema:ALPHA (weight of the newest frame) or vote:N")
    p.add_argument("--json-log", type=Path, help="write one JSON object per frame")
    p.add_argument("--reset-gap-ms", type=float, help="reset the recurrent state when frames are further apart")
    add_meter_option(p)
    p.add_argument("--isolate", action="store_true", help="do the first load + invoke in a child process")
    p.add_argument("--self-test", action="store_true",
                   help="before streaming, check the bundle's golden input still gives its golden output")
    p.add_argument("--queue", type=int, default=2, help="frame queue length (default 2)")
    p.add_argument("--policy", choices=("auto", "latest", "block"), default="auto",
                   help="full queue: drop the oldest frame (latest), wait (block); auto = latest for live sources")
    p.add_argument("--stall-timeout", type=float, default=5.0,
                   help="seconds without a frame before camera_lost (also the network open timeout)")
    p.add_argument("--reconnect-attempts", type=int, default=5,
                   help="live sources: reopen attempts (backoff 0.2 s doubling to 5 s) before camera_lost")
    p.add_argument("--warmup", type=int, default=5, help="frames excluded from latency statistics")
    p.add_argument("--summary-json", type=Path, help="write the summary as JSON")
    p.add_argument("--status-file", type=Path,
                   help="keep a service status file (bundle sha256, frames, last update) for the deploy health check")


def run(args: argparse.Namespace) -> int:
    from edge.errors import HybridEdgeError
    from edge.run import RunOptions, run_bundle
    from edge.sources import SourceOptions

    options = RunOptions(
        threads=args.threads, delegate=args.delegate, max_frames=args.max_frames, smooth=args.smooth,
        json_log=args.json_log, reset_gap_ms=args.reset_gap_ms, meter=args.meter, isolate=args.isolate, self_test=args.self_test,
        warmup=args.warmup, status_file=args.status_file,
        source=SourceOptions(queue_size=args.queue, policy=args.policy, stall_timeout_s=args.stall_timeout,
                             reconnect_attempts=args.reconnect_attempts),
    )
    try:
        summary = run_bundle(args.bundle, args.source, options, out=sys.stdout)
    except HybridEdgeError as exc:
        if exc.partial is not None:  # what was measured before the failure, then the one-line error
            _report(exc.partial, args.summary_json)
        raise
    _report(summary, args.summary_json)
    return 0


def _report(summary: dict, path: Path | None) -> None:
    from edge.run import format_summary

    print(format_summary(summary), flush=True)
    if path:
        path.write_text(json.dumps(summary, indent=2) + "\n")
