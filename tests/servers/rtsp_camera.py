"""A live RTSP camera on 127.0.0.1 for the source tests: GStreamer's RTSP server.

Runs under Debian's Python (``/usr/bin/python3`` with ``python3-gi`` and
``gir1.2-gst-rtsp-server-1.0``), not the project's venv. Serves a moving test
pattern as RTP/JPEG at ``rtsp://127.0.0.1:PORT/cam`` (PORT 0 = any free port)
and prints ``ready PORT`` once it listens.

    /usr/bin/python3 tests/servers/rtsp_camera.py [PORT] [--size 64x48] [--fps 30]
"""

import argparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", nargs="?", default="0")
    p.add_argument("--size", default="64x48")
    p.add_argument("--fps", type=int, default=30)
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    factory = GstRtspServer.RTSPMediaFactory()
    # I420 so the JPEGs are 4:2:0, which RTP/JPEG (RFC 2435) can carry
    factory.set_launch(
        f"( videotestsrc pattern=ball is-live=true ! video/x-raw,format=I420,width={width},height={height},"
        f"framerate={args.fps}/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    print("ready", server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
