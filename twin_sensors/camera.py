"""Camera driver core: JPEG frames from an MJPEG-over-HTTP stream, checked and passed through, or
from a source OpenCV reads (a local device, RTSP, a video file: :mod:`twin_sensors.capture`),
JPEG-encoded by the reader and checked the same way.

Every MJPEG part's JPEG bytes are published as they came (no re-encode). A frame is checked by
decoding a quarter-size grey thumbnail: undecodable or truncated JPEG is rejected (counted,
kept as a dead letter); an all-dark frame counts as black; the same picture for longer than
``frozen_after`` seconds marks the camera frozen. The part's ``X-Timestamp`` header (seconds of
the camera's clock) is the device time the stamper maps to ROS time.
"""
from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from twin_core.config import describe
from twin_core.paths import config_dir
from twin_core.workers import Workers
from twin_sensors.capture import FILE, Source, parse_source
from twin_sensors.mjpeg import MAX_HEAD, MultipartParser, Part, StreamRefused, parse_response_head
from twin_sensors.readers import READ_TIMEOUT, DataCallback, ReaderThread, StateCallback
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
TIMESTAMP_HEADER = 'x-timestamp'
CONNECT_TIMEOUT = 2.0  # s
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # libjpeg's warnings: counted instead


@dataclass(frozen=True)
class CameraConfig:
    """Parameters of the camera_driver node."""

    url: str = field(default='http://127.0.0.1:8081/stream.mjpg', metadata=describe(
        'The camera: an MJPEG stream (multipart/x-mixed-replace over HTTP, stamped by its X-Timestamp), '
        'http://host[:port]/path; or, read through OpenCV and stamped on receipt, rtsp://host[:port]/path, '
        'a local device (/dev/videoN or its index N) or a video file (played at its frame rate, looped).'))
    frame_id: str = field(default='camera_optical_frame', metadata=describe(
        'frame_id of images and camera info (optical frame: z forward, x right, y down).'))
    camera_info: str = field(default='camera_info.yaml', metadata=describe(
        'Calibration in the camera_info YAML format; relative paths are in config/.'))
    frozen_after: float = field(default=2.0, metadata=describe(
        'Seconds of identical frames after which the camera counts as frozen.', min=0.1, max=3600.0))
    black_level: float = field(default=8.0, metadata=describe(
        'A frame whose mean grey level (0..255) is below this counts as black.', min=0.0, max=255.0))
    stall_timeout: float = field(default=3.0, metadata=describe(
        'Seconds without a byte after which the stream counts as dropped and is reopened.', min=0.2, max=600.0))
    max_frame_bytes: int = field(default=4 * 1024 * 1024, metadata=describe(
        'Largest accepted JPEG (bytes).', min=1024, max=64 * 1024 * 1024))
    jpeg_quality: int = field(default=80, metadata=describe(
        'JPEG quality of the frames of an OpenCV source (rtsp, device, file); http frames pass as received.',
        min=1, max=100))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)

    def __post_init__(self) -> None:
        source = parse_source(self.url)
        if self.timestamps.mode == 'device' and not source.clock:
            raise ValueError(f'timestamps.mode: device needs a device clock, and a {source.kind} source '
                             f'({self.url}) has none: use receipt')

    @property
    def source(self) -> Source:
        return parse_source(self.url)

    def required_paths(self) -> dict[str, Path]:
        path = Path(self.camera_info)
        paths = {'camera_info': path if path.is_absolute() else config_dir() / path}
        if self.source.kind == FILE:
            paths['url'] = Path(str(self.source.target))
        return paths


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    device_time: float | None  # s of the camera's clock; None without a usable X-Timestamp
    black: bool


class FrameChecker:
    """Decodes a thumbnail of each JPEG: rejects corrupt ones, counts black and frozen frames."""

    def __init__(self, frozen_after: float, black_level: float) -> None:
        self.frozen_after, self.black_level = frozen_after, black_level
        self.black_frames = self.frozen_frames = self.frozen_episodes = 0
        self.frozen = self.last_black = False
        self._previous: np.ndarray | None = None
        self._same_since: float | None = None  # receive time (s) of the first of identical frames

    def decode(self, jpeg: bytes) -> np.ndarray | None:
        """A quarter-size grey thumbnail, or None if ``jpeg`` is not a complete JPEG image."""
        if not (jpeg.startswith(JPEG_START) and jpeg.endswith(JPEG_END)):
            return None
        return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)

    def black(self, thumbnail: np.ndarray) -> bool:
        self.last_black = bool(thumbnail.mean() < self.black_level)
        self.black_frames += self.last_black
        return self.last_black

    def note(self, thumbnail: np.ndarray, now: float) -> None:
        """Track identical consecutive thumbnails received at ``now`` (s)."""
        previous, self._previous = self._previous, thumbnail
        if previous is None or previous.shape != thumbnail.shape or not np.array_equal(previous, thumbnail):
            self._same_since, self.frozen = now, False
            return
        assert self._same_since is not None  # set by the first frame
        if now - self._same_since > self.frozen_after:
            self.frozen_episodes += not self.frozen
            self.frozen = True
            self.frozen_frames += 1


class CameraStream:
    """MJPEG body bytes in, checked frames out; ``reset`` at every new connection."""

    def __init__(self, config: CameraConfig, stats: DriverStats) -> None:
        self.stats = stats
        self.parser = MultipartParser(stats, config.max_frame_bytes)
        self.checker = FrameChecker(config.frozen_after, config.black_level)

    def reset(self, boundary: bytes) -> None:
        self.parser.reset(boundary)

    def feed(self, chunk: bytes, receive_s: float) -> list[Frame]:
        return [frame for part in self.parser.feed(chunk) if (frame := self._frame(part, receive_s))]

    def check(self, jpeg: bytes, receive_s: float, device_time: float | None) -> Frame | None:
        """The frame of ``jpeg`` (an MJPEG part's body, or an OpenCV source's frame as encoded), or
        None (counted, kept as a dead letter) if it is undecodable.
        """
        thumbnail = self.checker.decode(jpeg)
        if thumbnail is None:
            self.stats.error('corrupt_jpeg', f'undecodable JPEG of {len(jpeg)} bytes', payload=jpeg[:256])
            return None
        self.checker.note(thumbnail, receive_s)
        self.stats.messages += 1
        return Frame(jpeg, device_time, self.checker.black(thumbnail))

    def _frame(self, part: Part, receive_s: float) -> Frame | None:
        content_type = part.headers.get('content-type', 'image/jpeg').lower()
        if content_type not in ('image/jpeg', 'image/jpg'):
            self.stats.error('not_jpeg', f'part of type {content_type[:60]!r}', payload=part.body[:256])
            return None
        frame = self.check(part.body, receive_s, None)
        return None if frame is None else replace(frame, device_time=self._device_time(part))

    def _device_time(self, part: Part) -> float | None:
        text = part.headers.get(TIMESTAMP_HEADER)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.stats.error('bad_timestamp', f'X-Timestamp {text[:40]!r}', payload=text[:64])
            return None
        return value


class MjpegReader(ReaderThread):
    """GETs the stream, checks the response head, then hands on the body bytes; reopens with backoff
    when the camera refuses, closes or stalls (no byte for ``stall_timeout``).
    """

    def __init__(self, config: CameraConfig, on_data: DataCallback, on_state: StateCallback,
                 clock: Callable[[], int] = time.time_ns, workers: Workers | None = None) -> None:
        super().__init__(on_data, on_state, clock, workers=workers)
        self.config = config
        self.boundary = b''
        url = urlsplit(config.url)
        self._address = (url.hostname or '', url.port or 80)
        self._request = (f'GET {url.path or "/"}{"?" + url.query if url.query else ""} HTTP/1.1\r\n'
                         f'Host: {url.netloc}\r\nAccept: multipart/x-mixed-replace, image/jpeg\r\n'
                         'Connection: close\r\n\r\n').encode('latin-1')
        self._socket: socket.socket | None = None
        self._leftover = b''
        self._last_data = 0.0

    @property
    def source(self) -> str:
        return self.config.url

    def _open(self) -> None:
        sock = socket.create_connection(self._address, timeout=CONNECT_TIMEOUT)
        try:
            sock.sendall(self._request)
            head = b''
            while b'\r\n\r\n' not in head:
                chunk = sock.recv(4096)
                if not chunk or len(head) > MAX_HEAD:
                    raise StreamRefused('no complete HTTP response head')
                head += chunk
            head, _, self._leftover = head.partition(b'\r\n\r\n')
            self.boundary = parse_response_head(head)
        except OSError:
            sock.close()
            raise
        sock.settimeout(READ_TIMEOUT)
        self._socket, self._last_data = sock, time.monotonic()

    def _read(self) -> bytes:
        assert self._socket is not None
        if self._leftover:
            chunk, self._leftover = self._leftover, b''
            return chunk
        try:
            chunk = self._socket.recv(65536)
        except TimeoutError:
            if time.monotonic() - self._last_data > self.config.stall_timeout:
                raise TimeoutError(f'no data for {self.config.stall_timeout:g} s') from None
            return b''
        if not chunk:
            raise ConnectionError('the camera closed the stream')
        self._last_data = time.monotonic()
        return chunk

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
