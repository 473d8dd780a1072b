"""Camera sources read through OpenCV's ``cv2.VideoCapture``: a local device (V4L2), an RTSP stream
or a video file (FFmpeg).

The reader thread grabs each frame, JPEG-encodes it at the configured quality and hands the JPEG
bytes on like a chunk of any other device (``on_data(jpeg, receive_ns)``). These sources carry no
device clock: their frames are stamped on receipt. A video file plays at its own frame rate, as a
camera would deliver it, and starts over at its end; a file that ends before the frame count its
container gives is counted as truncated. A source that fails, stops delivering or ends is reopened
with backoff.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from twin_core.network import check_host
from twin_core.restart import Backoff
from twin_core.workers import Workers
from twin_sensors.readers import READ_TIMEOUT, DataCallback, ReaderThread, StateCallback, reconnect_backoff
from twin_sensors.stats import DriverStats

HTTP, RTSP, DEVICE, FILE = 'http', 'rtsp', 'device', 'file'
DEFAULT_FILE_FPS = 30.0  # a file whose container gives no usable frame rate plays at this rate
OPEN_TIMEOUT_MS = 5000  # FFmpeg network sources: opening
DEVICE_PREFIX = '/dev/video'


@dataclass(frozen=True)
class Source:
    """Where a camera's frames come from: ``kind`` (http, rtsp, device, file) and the OpenCV argument."""

    kind: str
    target: str | int  # the URL or path as given; a device index as an int

    @property
    def clock(self) -> bool:
        """Whether the source carries a device clock (only the http MJPEG stream's X-Timestamp)."""
        return self.kind == HTTP


def parse_source(url: str) -> Source:
    """The camera source ``url`` names; ``ValueError`` for what names none."""
    text = url.strip()
    if not text:
        raise ValueError('url is empty: give http://…, rtsp://…, /dev/videoN, a device index or a video file')
    if text.isdigit():
        return Source(DEVICE, int(text))
    if text.startswith(DEVICE_PREFIX):
        if not text[len(DEVICE_PREFIX):].isdigit():
            raise ValueError(f'url: a local camera is /dev/videoN, got {url!r}')
        return Source(DEVICE, text)
    parts = urlsplit(text)
    if parts.scheme in ('http', 'rtsp', 'rtsps'):
        if not parts.hostname:
            raise ValueError(f'url must be {parts.scheme}://host[:port]/path, got {url!r}')
        check_host(parts.hostname, ipv4_only=parts.scheme == 'http')
        parts.port  # noqa: B018 - raises ValueError on a port out of range
        return Source(HTTP if parts.scheme == 'http' else RTSP, text)
    if '://' in text:
        raise ValueError(f'url: unsupported scheme {parts.scheme!r} (http, rtsp, rtsps, a device or a file)')
    return Source(FILE, str(Path(text).expanduser()))


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """``image`` (BGR or grey) as JPEG bytes at ``quality`` (1..100); ``ValueError`` if it cannot be."""
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f'cannot JPEG-encode an image of shape {image.shape}')
    return encoded.tobytes()


class CaptureReader(ReaderThread):
    """Reads frames with ``cv2.VideoCapture`` in the reader thread; each one JPEG-encoded at
    ``jpeg_quality`` is a chunk. ``stall_timeout`` bounds an RTSP read; a file plays at its frame
    rate and a truncated one is counted in ``stats`` (``errors.truncated``).
    """

    def __init__(self, source: Source, jpeg_quality: int, stall_timeout: float, stats: DriverStats,
                 on_data: DataCallback, on_state: StateCallback, clock: Callable[[], int] = time.time_ns,
                 workers: Workers | None = None) -> None:
        super().__init__(on_data, on_state, clock, workers=workers)
        self.source_spec, self.jpeg_quality, self.stall_timeout, self.stats = source, jpeg_quality, stall_timeout, stats
        self.capture: cv2.VideoCapture | None = None
        self.frames = 0  # frames read since the source was opened
        self.frame_count = 0  # frames the file's container announces (0: unknown)
        self.encoded, self.encode_ns = 0, 0  # frames JPEG-encoded and the time it took, in total
        self._period = 0.0  # s between a file's frames
        self._due = 0.0  # monotonic time the next file frame is due
        self._ended = False  # the previous session ended: wait before reopening
        self._end_backoff: Backoff = reconnect_backoff()

    @property
    def source(self) -> str:
        return str(self.source_spec.target)

    def _open(self) -> None:
        if self._ended:
            self._stop.wait(self._end_backoff.delay())
        spec = self.source_spec
        if spec.kind == DEVICE:
            capture = cv2.VideoCapture(spec.target, cv2.CAP_V4L2)
        elif spec.kind == RTSP:
            timeout_ms = round(1000 * self.stall_timeout)
            capture = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        else:
            if not Path(str(spec.target)).is_file():
                raise FileNotFoundError(f'no such file: {spec.target}')
            capture = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise OSError(f'OpenCV cannot open {spec.target} as a video source')
        self.capture, self.frames = capture, 0
        if spec.kind == FILE:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self._period = 1.0 / (fps if math.isfinite(fps) and 0.0 < fps <= 1000.0 else DEFAULT_FILE_FPS)
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
            self._due = time.monotonic()

    def _read(self) -> bytes:
        assert self.capture is not None
        if self.source_spec.kind == FILE:
            wait = self._due - time.monotonic()
            if wait > 0.0:
                self._stop.wait(min(wait, READ_TIMEOUT))
                return b''
        ok, image = self.capture.read()
        if not ok or image is None or not image.size:
            self._ended = True
            raise ConnectionError(self._end_reason())
        self.frames += 1
        if self.frames >= 2:  # one frame played through: the source works, the next end waits little
            self._end_backoff.reset()
        if self.source_spec.kind == FILE:
            now = time.monotonic()
            self._due = max(self._due + self._period, now - self._period)  # never a burst to catch up
        start = time.perf_counter_ns()
        jpeg = encode_jpeg(image, self.jpeg_quality)
        self.encode_ns += time.perf_counter_ns() - start
        self.encoded += 1
        return jpeg

    def _end_reason(self) -> str:
        if self.source_spec.kind != FILE:
            return f'no frame from {self.source} after {self.frames} frames'
        if self.frame_count and self.frames < self.frame_count:
            detail = f'{self.source}: truncated or corrupt: ended after {self.frames} of {self.frame_count} frames'
            self.stats.error('truncated', detail, payload=detail)
            return detail
        return f'end of {self.source} after {self.frames} frames: starting over'

    def _close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None
