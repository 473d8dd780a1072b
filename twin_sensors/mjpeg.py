"""MJPEG over HTTP as IP cameras serve it: a ``multipart/x-mixed-replace`` response, one JPEG per part.

``parse_response_head`` checks the HTTP response and returns the part boundary;
``MultipartParser`` splits the body into parts incrementally (``Content-Length`` when a part
has one, else the next boundary), resynchronising on the next boundary after a damaged part.
Rejected input is counted in the driver's statistics under a reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from twin_sensors.stats import DriverStats

MAX_HEAD = 16 * 1024  # bytes of an HTTP response head or part header block
DEAD_LETTER_BYTES = 256  # of a rejected part kept as its dead letter
_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";,\s]+)"?', re.IGNORECASE)


class StreamRefused(ConnectionError):
    """The server's response is not an MJPEG stream (an OSError: the reader retries with backoff)."""


def parse_response_head(head: bytes) -> bytes:
    """The multipart boundary of an HTTP response head (status line and headers, no body)."""
    lines = head.decode('latin-1').split('\r\n')
    status = lines[0].split(' ', 2)
    if len(status) < 2 or not status[0].startswith('HTTP/1.'):
        raise StreamRefused(f'not an HTTP response: {lines[0][:80]!r}')
    if status[1] != '200':
        raise StreamRefused(f'HTTP {" ".join(status[1:])[:80]}')
    headers = parse_headers(lines[1:])
    content_type = headers.get('content-type', '')
    if not content_type.lower().startswith('multipart/'):
        raise StreamRefused(f'not a multipart stream: Content-Type {content_type[:80]!r}')
    if 'chunked' in headers.get('transfer-encoding', '').lower():
        raise StreamRefused('chunked transfer encoding is not supported')
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise StreamRefused(f'no boundary in Content-Type {content_type[:80]!r}')
    return match.group(1).removeprefix('--').encode('latin-1')


def parse_headers(lines: list[str]) -> dict[str, str]:
    """``Name: value`` lines to a dict with lower-case names (lines without a colon are skipped)."""
    headers = {}
    for line in lines:
        name, colon, value = line.partition(':')
        if colon and name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # lower-case names
    body: bytes


class MultipartParser:
    """Splits a multipart body into parts; ``reset`` starts a new response."""

    def __init__(self, stats: DriverStats, max_part: int = 4 * 1024 * 1024) -> None:
        self.stats = stats
        self.max_part = max_part
        self.bytes_skipped = 0
        self._delimiter = b''
        self._buffer = bytearray()

    def reset(self, boundary: bytes) -> None:
        self._delimiter = b'--' + boundary
        self._buffer.clear()

    def feed(self, chunk: bytes) -> list[Part]:
        """The parts completed by ``chunk``."""
        if not self._delimiter:
            raise RuntimeError('reset(boundary) before feeding a stream')
        self._buffer += chunk
        parts = []
        while (item := self._next()) is not None:
            if isinstance(item, Part):
                parts.append(item)
        return parts

    def _next(self) -> Part | bool | None:
        """A part, True when something was consumed without one, None when more bytes are needed."""
        buffer, delimiter = self._buffer, self._delimiter
        start = buffer.find(delimiter)
        if start < 0:
            self._skip(max(len(buffer) - len(delimiter), 0))
            return None
        self._skip(start)
        head_end = buffer.find(b'\r\n\r\n', len(delimiter))
        if head_end < 0:
            if len(buffer) > MAX_HEAD:
                return self._reject('bad_part', 'part headers longer than 16 KiB', len(delimiter))
            return None
        headers = parse_headers(buffer[len(delimiter):head_end].decode('latin-1').split('\r\n'))
        body_start = head_end + 4
        length_text = headers.get('content-length')
        if length_text is None:
            end = buffer.find(b'\r\n' + delimiter, body_start)
            if end < 0:
                if len(buffer) - body_start > self.max_part:
                    return self._reject('oversize', f'no boundary within {self.max_part} bytes', body_start)
                return None
            return self._take(headers, body_start, end)
        if not length_text.isdigit() or int(length_text) > self.max_part:
            return self._reject('bad_part' if not length_text.isdigit() else 'oversize',
                                f'Content-Length {length_text[:40]!r} (at most {self.max_part})', body_start)
        end = body_start + int(length_text)
        return self._take(headers, body_start, end) if len(buffer) >= end else None

    def _take(self, headers: dict[str, str], start: int, end: int) -> Part:
        part = Part(headers, bytes(self._buffer[start:end]))
        del self._buffer[:end]
        return part

    def _skip(self, count: int) -> None:
        """Drop bytes before a boundary (the CRLF ending the previous part is expected)."""
        if count:
            self.bytes_skipped += max(count - 2, 0) if self._buffer[:2] == b'\r\n' else count
            del self._buffer[:count]

    def _reject(self, reason: str, detail: str, consumed: int) -> bool:
        self.stats.error(reason, detail, payload=bytes(self._buffer[:DEAD_LETTER_BYTES]))
        del self._buffer[:consumed]
        return True
