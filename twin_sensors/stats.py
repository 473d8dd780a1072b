"""Counters a driver reports on /diagnostics: connection, message rate, errors per reason, reconnects.

A device that is not there yet when the driver starts (a cell powering up, a simulator still
loading) is waited for during :data:`DEVICE_STARTUP_GRACE_S` before it counts as an error.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from twin_core.dead_letters import DeadLetters
from twin_core.levels import Level
from twin_sensors.wire import FrameDecoder

DEVICE_STARTUP_GRACE_S = 15.0


class DriverStats:
    """Updated by the reader thread, read by the diagnostics timer (single writer per field)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, dead_letters: DeadLetters | None = None,
                 source: str = '', startup_grace: float = DEVICE_STARTUP_GRACE_S) -> None:
        self.clock = clock
        self.dead_letters = dead_letters
        self.source = source  # names the input in dead letters
        self.connected = False
        self.connects = 0
        self.messages = 0
        self.errors: Counter[str] = Counter()
        self.last_error = ''
        self._window = (clock(), 0)
        self._grace_ends = clock() + startup_grace
        self._overdue_told = False

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    def waiting(self) -> bool:
        """True while the device has never been reached and the start-up grace lasts."""
        return self.connects == 0 and self.clock() < self._grace_ends

    def overdue(self) -> bool:
        """True once, at the first call after the grace ended without the device ever reached."""
        if self.connects or self._overdue_told or self.waiting():
            return False
        self._overdue_told = True
        return True

    def set_state(self, connected: bool, detail: str) -> None:
        """Record a connection state change (``detail`` becomes ``last_error`` on a loss)."""
        self.connected = connected
        if connected:
            self.connects += 1
        else:
            self.last_error = detail

    def error(self, reason: str, detail: str, count: int = 1, payload: bytes | str = b'') -> None:
        """Count ``count`` dropped inputs under ``reason``; keep ``payload`` as a dead letter."""
        self.errors[reason] += count
        self.last_error = detail
        if self.dead_letters is not None:
            self.dead_letters.add(self.source, reason, detail, payload)

    def rate(self) -> float:
        """Messages per second since the previous call."""
        now, count = self.clock(), self.messages
        start, start_count = self._window
        self._window = (now, count)
        return (count - start_count) / (now - start) if now > start else 0.0

    def health(self, rate: float) -> tuple[Level, str]:
        """OK while waiting for the device at start-up, ERROR while disconnected, WARN while connected
        without data, else OK; ``rate`` from :meth:`rate`.
        """
        if self.waiting():
            return Level.OK, f'waiting for the device: {self.last_error or "not opened yet"}'
        if not self.connected:
            return Level.ERROR, f'disconnected: {self.last_error or "not opened yet"}'
        if rate == 0.0:
            return Level.WARN, 'connected, no data'
        return Level.OK, f'{rate:.1f} Hz'

    def values(self, rate: float) -> dict[str, Any]:
        """Diagnostic key/values; ``rate`` from :meth:`rate`."""
        return {'connected': self.connected, 'rate_hz': rate, 'messages': self.messages,
                'reconnects': self.reconnects,
                **{f'errors.{reason}': count for reason, count in sorted(self.errors.items())},
                'last_error': self.last_error}


def frame_decoder_values(decoder: FrameDecoder) -> dict[str, int]:
    """Diagnostic key/values of a binary frame stream: corruption, resyncs and sequence gaps."""
    return {'errors.crc': decoder.crc_errors, 'errors.bad_header': decoder.bad_headers,
            'bytes_skipped': decoder.bytes_skipped, 'sequence_gaps': decoder.sequence_gaps,
            'frames_missed': decoder.frames_missed}
