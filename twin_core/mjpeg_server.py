"""An IP camera's HTTP side: the latest JPEG frame as an MJPEG stream (multipart/x-mixed-replace).

``GET /stream.mjpg`` streams every new frame as one part with its ``Content-Length`` and the
device time it shows in ``X-Timestamp`` (seconds of the device clock); ``GET /snapshot.jpg``
returns the latest frame once. A slow client skips frames: each part is the newest frame. With a
``page``, ``GET /`` returns it (an HTML page showing the stream). The simulated cell's camera
serves its frames this way, and the live view the camera's newest image.
"""
from __future__ import annotations

import http.server
import logging
import threading
from typing import Any

from twin_core.workers import Workers

_log = logging.getLogger(__name__)

BOUNDARY = 'frame'
STREAM_PATH = '/stream.mjpg'
SNAPSHOT_PATH = '/snapshot.jpg'
PAGE_PATHS = ('/', '/index.html')
WAIT_SLICE = 0.5  # s; how often a waiting client checks that the server still runs


class FrameSlot:
    """The latest frame and its sequence number; clients wait on it for a newer one."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.jpeg = b''
        self.device_time = 0.0
        self.seq = 0
        self.closed = False

    def put(self, jpeg: bytes, device_time: float) -> None:
        with self.condition:
            self.jpeg, self.device_time = jpeg, device_time
            self.seq += 1
            self.condition.notify_all()

    def newer_than(self, seq: int) -> tuple[int, bytes, float] | None:
        """Wait for a frame after ``seq``: (seq, jpeg, device time), or None once closed."""
        with self.condition:
            while self.seq <= seq and not self.closed:
                self.condition.wait(WAIT_SLICE)
            return None if self.closed else (self.seq, self.jpeg, self.device_time)

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()


def part(jpeg: bytes, device_time: float) -> bytes:
    """One multipart part: boundary, headers, JPEG bytes."""
    head = (f'--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n'
            f'X-Timestamp: {device_time:.6f}\r\n\r\n')
    return head.encode('ascii') + jpeg + b'\r\n'


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        slot = self.server.slot
        if self.server.page and self.path in PAGE_PATHS:
            self._reply('text/html; charset=utf-8', self.server.page)
            return
        if self.path == SNAPSHOT_PATH:
            frame = slot.newer_than(0)
            if frame is not None:
                self._reply('image/jpeg', frame[1])
            return
        if self.path != STREAM_PATH:
            self.send_error(404, f'only {STREAM_PATH} and {SNAPSHOT_PATH}')
            return
        self.send_response(200)
        self.send_header('Content-Type', f'multipart/x-mixed-replace; boundary={BOUNDARY}')
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.server.clients += 1
        seq = 0
        try:
            while (frame := slot.newer_than(seq)) is not None:
                seq, jpeg, device_time = frame
                self.wfile.write(part(jpeg, device_time))
                self.wfile.flush()
                self.server.parts_sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        finally:
            self.server.clients -= 1

    def _reply(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        _log.debug(format, *args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], slot: FrameSlot, page: bytes) -> None:
        super().__init__(address, _Handler)
        self.slot, self.page = slot, page
        self.clients = 0
        self.parts_sent = 0


class MjpegServer:
    """Serves the frames handed to ``publish`` on ``http://host:port/stream.mjpg`` (and ``page`` on ``/``)."""

    def __init__(self, host: str, port: int, workers: Workers | None = None, page: bytes = b'') -> None:
        self.host, self.port, self.page = host, port, page
        self.workers = workers or Workers()
        self._slot = FrameSlot()
        self._server: _Server | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful with port 0."""
        if self._server is None:
            raise RuntimeError('MJPEG server is not open')
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return 'http://{}:{}{}'.format(*self.address, STREAM_PATH)

    def open(self) -> None:
        self._slot, self._stopped = FrameSlot(), threading.Event()
        self._server = _Server((self.host, self.port), self._slot, self.page)
        self._thread = self.workers.spawn(f'mjpeg {self.host}:{self.port}', self._server.serve_forever,
                                          self._stopped)
        _log.info('camera stream on %s', self.url)

    def close(self) -> None:
        if self._server is None:
            return
        self._stopped.set()
        self._slot.close()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server = None

    def publish(self, jpeg: bytes, device_time: float) -> None:
        self._slot.put(jpeg, device_time)

    def counters(self) -> dict[str, int]:
        server = self._server
        return {'clients': server.clients if server else 0, 'parts_sent': server.parts_sent if server else 0}
