"""The live view's HTTP server: standard-library ``ThreadingHTTPServer``, fixed routes, no file serving.

Routes: ``/`` (the page), ``/stream.mjpg?fps=&w=`` (multipart MJPEG, newest frame
only), ``/snapshot.jpg?w=``, ``/events?fps=`` (server-sent events, one JSON per
decision, in at most ``fps`` writes a second), ``/stats.json`` and ``/healthz``
(the only route without the token).
Every response carries ``Cache-Control: no-store``, ``X-Content-Type-Options:
nosniff`` and ``Referrer-Policy: no-referrer``. A handler thread serves one viewer
and only ever waits on the :class:`~edge.web.hub.Hub` or its own socket (with a
timeout), so a slow or stalled viewer never reaches the inference loop.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from edge.errors import HybridEdgeError
from edge.web.auth import Access
from edge.web.hub import MAX_WIDTH, EventSink, Hub, Sink, VideoSink

ROUTES = ("/", "/stream.mjpg", "/snapshot.jpg", "/events", "/stats.json", "/healthz")
BOUNDARY = "hybridedgeframe"
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
KEEPALIVE_S = 10.0  # an idle event stream gets a comment line this often (finds closed viewers)
VIDEO_SNDBUF = 64 * 1024  # bytes (the kernel doubles it): 2-3 frames of 640x480 JPEG
STALE_S = 10.0  # /healthz answers 503 when the newest frame is older than this


class ServeError(HybridEdgeError):
    """The live view cannot listen where it was asked to (port in use, address not on this machine)."""


@dataclass
class App:
    """What the handlers serve: the hub, the access policy, the page and the loop's counters."""

    hub: Hub
    access: Access
    page: bytes
    csp: str
    stats: Callable[[], dict[str, Any]]
    max_viewers: int = 8
    fps: float = 10.0
    width: int = 480
    started: float = 0.0


class DemoServer(ThreadingHTTPServer):
    """One thread per connection (daemon threads: a stalled viewer never holds up the exit)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, host: str, port: int, app: App):
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.app = app
        try:
            super().__init__((host, port), Handler)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> threading.Thread:
        """Serve in a background thread (``shutdown()`` returns within 0.1 s)."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="web", daemon=True)
        thread.start()
        return thread


def _number(query: dict[str, list[str]], key: str, default: float, low: float, high: float) -> float:
    try:
        value = float(query[key][0]) if key in query else default
    except ValueError:
        value = default
    return min(high, max(low, value)) if value == value else default  # NaN -> default


class Handler(BaseHTTPRequestHandler):
    """Fixed routes only; GET only."""

    server: DemoServer
    server_version = "hybrid-edge"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 10  # socket timeout: a viewer that stops reading is dropped after this

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # the demo prints its own lines; per-request logs would flood a board's journal

    # ---- plumbing ---------------------------------------------------------------------------
    def _start(self, status: int, ctype: str, length: int | None = None, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in SECURITY_HEADERS + extra:
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        if status >= 400:
            self.close_connection = True
        self._start(status, ctype, len(body), extra)
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", extra)

    # ---- dispatch -----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        app = self.server.app
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not app.access.host_allowed(self.headers.get("Host")):
            return self._send(HTTPStatus.FORBIDDEN, b"host not allowed\n")
        if url.path not in ROUTES:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n")
        if url.path == "/healthz":
            return self._healthz()
        token = query.get("token", [None])[0]
        verdict = app.access.check(token, self.headers.get("Cookie"))
        if verdict != 200:
            text = b"token required: open the URL with ?token=...\n" if verdict == 401 else b"wrong token\n"
            return self._send(verdict, text)
        cookie = (("Set-Cookie", app.access.set_cookie()),) if token is not None else ()
        if url.path == "/" and token is not None:  # keep the token out of the address bar and history
            return self._send(HTTPStatus.SEE_OTHER, b"", extra=cookie + (("Location", "/"),))
        try:
            if url.path == "/":
                self._send(HTTPStatus.OK, app.page, "text/html; charset=utf-8", cookie + (("Content-Security-Policy", app.csp),))
            elif url.path == "/stream.mjpg":
                self._mjpeg(query, cookie)
            elif url.path == "/snapshot.jpg":
                self._snapshot(query, cookie)
            elif url.path == "/events":
                self._events(query, cookie)
            else:
                self._json(HTTPStatus.OK, app.stats(), cookie)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the viewer went away or stopped reading: its thread ends here

    def do_POST(self) -> None:  # noqa: N802
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"GET only\n", extra=(("Allow", "GET"),))

    do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

    # ---- routes -------------------------------------------------------------------------------
    def _healthz(self) -> None:
        hub = self.server.app.hub
        age = hub.age_s()
        ok = age is not None and age < STALE_S
        self._json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                   {"ok": ok, "frames": hub.frames, "age_s": None if age is None else round(age, 3)})

    def _snapshot(self, query: dict[str, list[str]], cookie: tuple[tuple[str, str], ...]) -> None:
        width = query.get("w")
        w = int(_number(query, "w", 0, 16, MAX_WIDTH)) if width else None
        data = self.server.app.hub.snapshot(w)
        if data is None:
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", extra=(("Retry-After", "1"),))
        self._send(HTTPStatus.OK, data, "image/jpeg", cookie)

    def _mjpeg(self, query: dict[str, list[str]], cookie: tuple[tuple[str, str], ...]) -> None:
        app = self.server.app
        hub = app.hub
        fps = _number(query, "fps", app.fps, 0.2, 60.0)
        width = int(_number(query, "w", app.width, 16, MAX_WIDTH))
        if not hub.attach("mjpeg", app.max_viewers):
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", extra=(("Retry-After", "5"),))
        self.close_connection = True
        try:
            self._start(HTTPStatus.OK, f"multipart/x-mixed-replace; boundary={BOUNDARY}", None,
                        cookie + (("Connection", "close"),))
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            # from here the loop writes the frames (_serve_sink). A fixed send buffer of a few frames: a slow
            # viewer skips frames instead of lagging seconds behind in a buffer the kernel would grow to megabytes
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, VIDEO_SNDBUF)
            self._serve_sink(VideoSink(self.connection.fileno(), width, fps, f"\r\n--{BOUNDARY}\r\n".encode()))
        finally:
            hub.detach("mjpeg")

    def _serve_sink(self, sink: Sink, keepalive: bytes | None = None) -> None:
        """Hand this connection to the loop's writes until the viewer goes or the demo stops. This thread only
        sends what a full socket buffer left over (with the socket's timeout: a viewer that stops reading is
        dropped) and, with nothing else written for ``KEEPALIVE_S``, the ``keepalive`` (finds closed viewers)."""
        hub = self.server.app.hub
        hub.add_sink(sink)
        sent = sink.sent
        try:
            while not (hub.closed or sink.dead):
                if not sink.wake.wait(KEEPALIVE_S):
                    if keepalive is not None and sink.sent == sent:
                        sink.offer(keepalive)
                    sent = sink.sent
                    continue
                sink.wake.clear()
                if sink.rest and not sink.dead:
                    self.connection.sendall(sink.rest)  # TimeoutError after `timeout` s: the viewer is dropped
                    sink.rest = b""
                    sink.ready = True
        finally:
            hub.remove_sink(sink)

    def _events(self, query: dict[str, list[str]], cookie: tuple[tuple[str, str], ...]) -> None:
        app = self.server.app
        hub = app.hub
        fps = _number(query, "fps", app.fps, 0.2, 60.0)
        if not hub.attach("events", app.max_viewers):
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", extra=(("Retry-After", "5"),))
        self.close_connection = True
        try:
            self._start(HTTPStatus.OK, "text/event-stream; charset=utf-8", None, cookie + (("Connection", "close"),))
            self.wfile.write(b"retry: 1000\n\n")
            resume = self.headers.get("Last-Event-ID", "")
            # a reconnecting EventSource continues after the last decision it got (as far as the ring reaches);
            # a new viewer gets the newest decision right away, then every one after it, in at most ``fps`` writes
            # a second (the page asks for its video's rate), written by the loop like the video (see edge.web.hub)
            last = int(resume) if resume.isdigit() and int(resume) <= hub.seq else hub.seq - 1
            self._serve_sink(EventSink(self.connection.fileno(), fps, last), b": keepalive\n\n")
        finally:
            hub.detach("events")
