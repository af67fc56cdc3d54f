"""``hybrid-edge demo``: ``run`` plus a live web view (MJPEG + server-sent events) served by the board."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.commands import add_delegate_option, add_meter_option

EXAMPLE = ("hybrid-edge demo bundles/cnn_lstm-int8 --source 0 --compare bundles/cnn_lstm-float32\n"
           "  (then, from your laptop: ssh -L 8080:127.0.0.1:8080 pi@board and open http://127.0.0.1:8080/)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle")
    p.add_argument("--source", required=True,
                   help="camera index (0), video file, rtsp:// or http:// URL, image directory, or "
                        "synthetic-actions[:seed=N,hold=3,fps=15] (activities played as a camera)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other address requires a token)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port)")
    p.add_argument("--token", help="access token (generated and printed when the host is not loopback)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another name the page may be reached by (Host header check), repeatable")
    p.add_argument("--compare", metavar="BUNDLE2", help="a second bundle on the same frames (e.g. float32 next to int8)")
    p.add_argument("--loop", action="store_true", help="replay a video file or image folder endlessly")
    p.add_argument("--fps", type=float, default=10.0, help="video frames per second sent to a viewer (default 10)")
    p.add_argument("--width", type=int, default=480, help="video width in pixels sent to a viewer (default 480)")
    p.add_argument("--quality", type=int, default=80, help="JPEG quality (default 80)")
    p.add_argument("--max-viewers", type=int, default=8, help="open video or event streams per route (default 8)")
    p.add_argument("--uncertain", type=float, default=0.5, help="scores below this show as uncertain (default 0.5)")
    p.add_argument("--status-file", type=Path, help="write the service status file (deploy health check)")
    p.add_argument("--show", action="store_true", help="also show a local OpenCV window (when OpenCV has a GUI and a display)")
    p.add_argument("--threads", type=int, default=1)
    add_delegate_option(p)
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: until the source ends or Ctrl-C)")
    p.add_argument("--smooth", help="ema:ALPHA or vote:N")
    p.add_argument("--reset-gap-ms", type=float, help="reset the recurrent state when frames are further apart")
    add_meter_option(p)
    p.add_argument("--stall-timeout", type=float, default=5.0, help="seconds without a frame before camera_lost")
    p.add_argument("--reconnect-attempts", type=int, default=5, help="live sources: reopen attempts before camera_lost")


def run(args: argparse.Namespace) -> int:
    from edge.errors import HybridEdgeError
    from edge.run import RunOptions, format_summary
    from edge.sources import SourceOptions
    from edge.web.demo import Demo, DemoOptions

    options = DemoOptions(
        run=RunOptions(threads=args.threads, delegate=args.delegate, max_frames=args.max_frames, smooth=args.smooth,
                       reset_gap_ms=args.reset_gap_ms, meter=args.meter,
                       source=SourceOptions(stall_timeout_s=args.stall_timeout, reconnect_attempts=args.reconnect_attempts)),
        host=args.host, port=args.port, token=args.token, allow_hosts=tuple(args.allow_host), compare=args.compare,
        loop=args.loop, fps=args.fps, width=args.width, quality=args.quality, max_viewers=args.max_viewers,
        uncertain=args.uncertain, status_file=args.status_file, show=args.show,
    )
    try:
        summary = Demo(args.bundle, args.source, options, out=sys.stdout).serve()
    except HybridEdgeError as exc:
        if exc.partial is not None:  # what was measured before the failure, then the one-line error
            print(format_summary(exc.partial), flush=True)
        raise
    if summary is not None:
        print(format_summary(summary), flush=True)
    return 0
