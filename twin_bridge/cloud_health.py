"""Health of the cloud uploader: the spool (reaching its size limit stays a warning for a while) and
the uploads (an error is logged once, when it first shows).
"""
from __future__ import annotations

from twin_bridge.cloud_config import SpoolConfig
from twin_bridge.spool import MB, SpoolStats
from twin_bridge.uploader import UploadStats
from twin_core.levels import Level
from twin_core.status import Status

ALERT_HOLD_S = 60.0  # how long the spool stays WARN after its size policy last acted


class CloudHealth:
    """Judges the spool's and the uploader's counters, report by report."""

    def __init__(self, spool: SpoolConfig) -> None:
        self._spool = spool
        self._policy_hits = 0
        self._alert_until = 0.0
        self._logged_error = ''

    def spool(self, stats: SpoolStats, now: float) -> Status:
        """ERROR on a full disk; WARN for ``ALERT_HOLD_S`` after the size policy acted (``now``: monotonic s)."""
        if stats.policy_hits > self._policy_hits:
            self._policy_hits = stats.policy_hits
            self._alert_until = now + ALERT_HOLD_S
        if stats.disk_full:
            level, message = Level.ERROR, stats.last_error
        elif now < self._alert_until:
            level, message = Level.WARN, f'spool reached {self._spool.max_mb} MB: {self._spool.policy}'
        else:
            level, message = Level.OK, 'recording'
        return Status('spool', level, message, {
            'pending_segments': stats.pending_segments, 'spool_mb': (stats.pending_bytes + stats.open_bytes) / MB,
            'max_mb': self._spool.max_mb, 'messages': stats.messages, 'dropped_messages': stats.dropped_messages,
            'dropped_segments': stats.dropped_segments, 'policy_hits': stats.policy_hits,
            'abandoned_segments': stats.abandoned_segments, 'last_error': stats.last_error})

    def upload(self, stats: UploadStats) -> tuple[Status, bool]:
        """The uploads' status (ERROR when only an operator can help) and whether its error is new (log it)."""
        new_error = stats.failing and stats.last_error != self._logged_error
        if new_error:
            self._logged_error = stats.last_error
        level = (Level.ERROR if stats.needs_operator else Level.WARN) if stats.failing else Level.OK
        return Status('upload', level, stats.last_error if stats.failing else 'uploading', {
            'uploaded_segments': stats.uploaded_segments, 'uploaded_mb': stats.uploaded_bytes / MB,
            'failures': stats.failures, 'retry_in_s': stats.retry_in, 'last_error': stats.last_error}), new_error
