"""Frame sources on real files (written by OpenCV), pipes and a generated stream."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import DataError
from edge.sources import (STDIN_HEADER, CameraLost, FrameSource, SourceOptions, StdinReader, make_reader,
                          open_source)


def write_video(path: Path, fourcc: str, frames: int = 24, size: tuple[int, int] = (40, 32), fps: float = 12.0) -> Path:
    """A moving white bar, written by cv2.VideoWriter."""
    import cv2

    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(frames):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, (i * 3) % w:(i * 3) % w + 6] = 255
        writer.write(img)
    writer.release()
    return path


@pytest.mark.parametrize("fourcc,suffix", [("MJPG", ".avi"), ("mp4v", ".mp4")])
def test_video_file_streams_to_eof(tmp_path: Path, fourcc: str, suffix: str) -> None:
    path = write_video(tmp_path / f"clip{suffix}", fourcc)
    with open_source(str(path)) as src:
        frames = list(src)
    assert len(frames) == 24 and src.dropped == 0 and src.policy == "block"
    assert frames[0].image.shape == (40, 32, 3) and frames[0].color == "bgr"
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and stamps[-1] == pytest.approx(23 / 12.0, abs=1e-3)
    assert [f.index for f in frames] == list(range(24))


@pytest.mark.parametrize("fourcc,suffix,keep,message", [
    ("MJPG", ".avi", 0.85, "truncated or corrupt"),
    ("MJPG", ".avi", 0.4, "cannot open video"),
    ("mp4v", ".mp4", 0.8, "cannot open video"),
])
def test_truncated_video_is_a_clear_error(tmp_path: Path, fourcc: str, suffix: str, keep: float, message: str) -> None:
    path = write_video(tmp_path / f"clip{suffix}", fourcc)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=message):
        with open_source(str(path)) as src:
            list(src)


def test_image_directory(tmp_path: Path) -> None:
    import cv2

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), np.full((20, 30, 3), i * 40, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 40, 80, 120, 160]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        open_source(str(empty))


def test_stdin_raw_and_framed() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 8, 10, 3), dtype=np.uint8)
    with FrameSource(StdinReader((8, 10), stream=io.BytesIO(imgs.tobytes()))) as src:
        got = [f.image for f in src]
    assert len(got) == 3 and all(np.array_equal(a, b) for a, b in zip(got, imgs))
    framed = b"".join(STDIN_HEADER.pack(b"HEF1", 8, 10, 3, 100.0 + i) + imgs[i].tobytes() for i in range(3))
    with FrameSource(StdinReader((1, 1), framed=True, stream=io.BytesIO(framed))) as src:
        frames = list(src)
    assert [f.timestamp for f in frames] == [100.0, 101.0, 102.0] and frames[0].color == "rgb"
    with pytest.raises(DataError, match="stream ended inside a frame"):
        with FrameSource(StdinReader((8, 10), stream=io.BytesIO(imgs.tobytes()[:-5]))) as src:
            list(src)
    with pytest.raises(DataError, match="bad frame header"):
        with FrameSource(StdinReader((1, 1), framed=True, stream=io.BytesIO(struct.pack("<4sIIId", b"XXXX", 1, 1, 3, 0)))) as src:
            list(src)


def test_stalling_source_raises_camera_lost_within_timeout() -> None:
    src = open_source("synthetic:stall_after=3", options=SourceOptions(stall_timeout_s=0.3, policy="block"))
    got = 0
    t0 = time.perf_counter()
    with pytest.raises(CameraLost, match="no frame for 0.3 s"):
        for _ in src:
            got += 1
    elapsed = time.perf_counter() - t0
    src.close()
    assert got == 3 and 0.25 < elapsed < 1.5


def test_fast_producer_keeps_queue_bounded_and_counts_drops() -> None:
    src = open_source("synthetic:fps=100000,frames=3000", options=SourceOptions(queue_size=3))
    assert src.live and src.policy == "latest"
    consumed, max_queued = 0, 0
    for _ in src:
        max_queued = max(max_queued, src.queued)
        time.sleep(0.0005)  # inference slower than the producer
        consumed += 1
    src.close()
    assert max_queued <= 3
    assert src.dropped > 0 and consumed + src.dropped == src.frames_read == 3000


def test_unpaced_synthetic_source_is_lossless() -> None:
    """Unpaced, the synthetic source is offline: a slow consumer still gets every frame."""
    src = open_source("synthetic:frames=200", options=SourceOptions(queue_size=2))
    assert not src.live and src.policy == "block"
    got = 0
    for _ in src:
        time.sleep(0.0005)
        got += 1
    src.close()
    assert got == src.frames_read == 200 and src.dropped == 0


def test_live_source_reconnects_with_new_generation() -> None:
    opts = SourceOptions(policy="block", backoff_s=(0.01, 0.05))
    with open_source("synthetic:frames=30,fail_every=10", options=opts) as src:
        gens = [f.generation for f in src]
    assert src.reconnects == 2 and gens == [0] * 10 + [1] * 10 + [2] * 10


def test_reconnect_slower_than_the_stall_timeout_is_waited_for() -> None:
    """A reconnect in progress holds the stall timer; the reopened stream then gets a full timeout."""
    opts = SourceOptions(policy="block", stall_timeout_s=0.2, backoff_s=(0.5, 0.5))
    with open_source("synthetic:frames=6,fail_every=3", options=opts) as src:
        gens = [f.generation for f in src]
    assert gens == [0, 0, 0, 1, 1, 1] and src.reconnects == 1


def test_bad_specs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        make_reader(str(tmp_path / "missing.mp4"))
    with pytest.raises(DataError, match="unsupported URL scheme"):
        make_reader("ftp://example.com/x")
    with pytest.raises(DataError, match="unknown option"):
        make_reader("synthetic:colour=red")
    with pytest.raises(DataError, match="cannot open"):
        open_source("rtsp://127.0.0.1:9/none", options=SourceOptions(stall_timeout_s=2.0))
    with pytest.raises(DataError, match="reconnect attempts must be >= 0"):
        FrameSource(make_reader("synthetic:"), SourceOptions(reconnect_attempts=-1))


def test_http_url_source(tmp_path: Path) -> None:
    """A video served over HTTP is read through FFmpeg like a network camera, and its end is an EOF."""
    import functools
    import http.server
    import threading

    write_video(tmp_path / "clip.avi", "MJPG")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        with open_source(url, options=SourceOptions(policy="block", stall_timeout_s=10)) as src:
            frames = list(src)
        assert src.live and len(frames) == 24 and src.reconnects == 0
    finally:
        server.shutdown()


def test_http_mjpeg_camera_streams_and_reconnects_when_dropped() -> None:
    """A live multipart/x-mixed-replace JPEG stream (what many IP cameras serve) that drops the link every 15 frames."""
    import http.server
    import threading

    import cv2

    class MjpegCamera(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for i in range(15):
                img = np.zeros((48, 64, 3), np.uint8)
                img[:, (i * 4) % 64:(i * 4) % 64 + 8] = 255
                jpg = cv2.imencode(".jpg", img)[1].tobytes()
                try:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg) + jpg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return
                time.sleep(1 / 60)
            self.close_connection = True  # the link drops; a camera keeps streaming to a reconnecting client

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MjpegCamera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    try:
        opts = SourceOptions(policy="block", queue_size=64, stall_timeout_s=5, backoff_s=(0.05, 0.1))
        with open_source(url, options=opts) as src:
            frames = []
            for frame in src:
                frames.append(frame)
                if len(frames) == 30:
                    break
        assert src.live and src.reconnects >= 1
        assert frames[0].image.shape == (48, 64, 3) and frames[0].generation == 0
        assert frames[-1].generation >= 1  # the stream after the drop is a new one (the session resets)
    finally:
        server.shutdown()
