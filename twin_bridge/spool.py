"""Durable spool of rosbag2 MCAP segments waiting for upload.

Messages (raw CDR) go into the open segment, a rosbags writer on ``<n>.partial/``. A segment
is finalized by closing the writer, fsyncing and hashing the .mcap file, then renaming it to
``<start UTC>_<sha256 prefix>.mcap`` in the spool directory (atomic; the directory is fsynced
too). Finalized segments are immutable until :meth:`Spool.remove` after a confirmed upload.
Disk use stays under ``max_mb`` by the configured policy; write errors (a full disk) drop the
open segment's messages, never finalized ones; writing resumes a second later and the
disk-full state clears with the next finalized segment.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rosbags.typesys.store import Typestore

from twin_bag.writer import BagWriter
from twin_bridge.cloud_config import DROP_OLDEST, SpoolConfig
from twin_core.stamps import NS_PER_S, from_seconds

MB = 1_000_000
SEGMENT_SUFFIX = '.mcap'
PARTIAL_SUFFIX = '.partial'
RECORD_OVERHEAD = 47  # bytes an MCAP message costs besides its payload (record, index)
SEGMENT_OVERHEAD = 4096  # header, schemas, channels, summary and metadata of a segment
HASH_CHARS = 16
TIME_FORMAT = '%Y%m%dT%H%M%S'


def segment_name(start_ns: int, sha256_hex: str) -> str:
    """``YYYYMMDDTHHMMSS.ffffffZ_<sha256 prefix>.mcap``: sorts by start, unique by content."""
    start = datetime.fromtimestamp(start_ns // NS_PER_S, UTC)
    return (f'{start.strftime(TIME_FORMAT)}.{start_ns % NS_PER_S // 1000:06d}Z_'
            f'{sha256_hex[:HASH_CHARS]}{SEGMENT_SUFFIX}')


def segment_start(name: str) -> datetime:
    """The UTC start time encoded in a segment name (to the second)."""
    return datetime.strptime(name[:len('YYYYMMDDTHHMMSS')], TIME_FORMAT).replace(
        tzinfo=UTC)


@dataclass(frozen=True)
class SpoolStats:
    """A snapshot of the spool's counters."""

    pending_segments: int
    pending_bytes: int
    open_bytes: int
    messages: int
    dropped_messages: int
    dropped_segments: int
    policy_hits: int
    abandoned_segments: int
    disk_full: bool
    last_error: str


class _Segment:
    """The open segment: an MCAP bag in its own ``.partial`` directory."""

    def __init__(self, path: Path, start_ns: int, typestore: Typestore, zstd: bool) -> None:
        self.path = path
        self.start_ns = start_ns
        self.size = SEGMENT_OVERHEAD
        self.messages = 0
        try:
            self._bag = BagWriter(path, typestore, zstd)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def write(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> None:
        self._bag.write(topic, msgtype, data, stamp_ns)
        self.size += len(data) + RECORD_OVERHEAD
        self.messages += 1

    def close(self) -> Path:
        """Write the MCAP summary; return the closed .mcap file."""
        self._bag.close()
        return self.path / f'{self.path.name}{SEGMENT_SUFFIX}'

    def discard(self) -> None:
        try:
            self._bag.abort()
        except OSError:
            pass
        shutil.rmtree(self.path, ignore_errors=True)


class Spool:
    """Segments on disk: written from one thread, uploaded and removed from another.

    ``on_finalized`` is called after each finalized segment (e.g. to wake an uploader).
    """

    def __init__(self, config: SpoolConfig, typestore: Typestore,
                 on_finalized: Callable[[], None] = lambda: None) -> None:
        self.directory = Path(config.directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._config = config
        self._typestore = typestore
        self._on_finalized = on_finalized
        self._segment_max = int(config.segment_max_mb * MB)
        self._segment_max_ns = from_seconds(config.segment_max_s)
        self._max_bytes = int(config.max_mb * MB)
        self._lock = threading.Lock()
        self._pending: dict[Path, int] = {}
        self._pending_bytes = 0
        self._segment: _Segment | None = None
        self._opened = 0
        self._messages = self._dropped_messages = self._dropped_segments = 0
        self._policy_hits = self._abandoned = 0
        self._disk_error_ns: int | None = None
        self._last_error = ''
        self._recover()

    def _recover(self) -> None:
        """Adopt finalized segments left by an earlier run; remove unfinished ones."""
        for partial in self.directory.glob(f'*{PARTIAL_SUFFIX}'):
            self._abandoned += int(any(partial.glob(f'*{SEGMENT_SUFFIX}')))
            shutil.rmtree(partial, ignore_errors=True)
        for path in self.directory.glob(f'*{SEGMENT_SUFFIX}'):
            self._add_pending(path)

    def _add_pending(self, path: Path) -> None:
        size = path.stat().st_size
        with self._lock:
            self._pending[path] = size
            self._pending_bytes += size

    def pending(self) -> list[Path]:
        """Finalized segments not yet removed, oldest first."""
        with self._lock:
            return sorted(self._pending)

    def remove(self, path: Path) -> None:
        """Delete a segment whose upload is confirmed."""
        with self._lock:
            self._pending_bytes -= self._pending.pop(path, 0)
        path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def write(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> bool:
        """Append one serialized message; False if it was dropped (disk bound or disk error)."""
        size = len(data) + RECORD_OVERHEAD
        segment = self._segment
        if segment is not None and (segment.size + size > self._segment_max
                                    or stamp_ns - segment.start_ns >= self._segment_max_ns):
            self._finalize(stamp_ns)
        if (self._disk_error_ns is not None and stamp_ns - self._disk_error_ns < NS_PER_S) \
                or not self._make_room(size):
            self._dropped_messages += 1
            return False
        try:
            if self._segment is None:
                self._opened += 1
                self._segment = _Segment(self.directory / f'{self._opened}{PARTIAL_SUFFIX}',
                                         stamp_ns, self._typestore,
                                         self._config.compression == 'zstd')
            self._segment.write(topic, msgtype, data, stamp_ns)
        except OSError as error:
            self._fail(error, stamp_ns, 1)
            return False
        self._messages += 1
        return True

    def tick(self, now_ns: int) -> None:
        """Finalize the open segment once it spans ``segment_max_s`` (call periodically)."""
        if self._segment is not None and now_ns - self._segment.start_ns >= self._segment_max_ns:
            self._finalize(now_ns)

    def close(self) -> None:
        """Finalize the open segment."""
        if self._segment is not None:
            self._finalize(self._segment.start_ns)

    def stats(self) -> SpoolStats:
        """Current counters."""
        with self._lock:
            pending, pending_bytes = len(self._pending), self._pending_bytes
        return SpoolStats(
            pending_segments=pending, pending_bytes=pending_bytes,
            open_bytes=self._segment.size if self._segment else 0, messages=self._messages,
            dropped_messages=self._dropped_messages, dropped_segments=self._dropped_segments,
            policy_hits=self._policy_hits, abandoned_segments=self._abandoned,
            disk_full=self._disk_error_ns is not None, last_error=self._last_error)

    def _finalize(self, now_ns: int) -> None:
        segment, self._segment = self._segment, None
        assert segment is not None
        try:
            closed = segment.close()
            final = self.directory / segment_name(segment.start_ns, _fsync_and_hash(closed))
            os.rename(closed, final)
            _fsync_directory(self.directory)
        except OSError as error:
            self._fail(error, now_ns, 0, segment)
            return
        shutil.rmtree(segment.path, ignore_errors=True)
        self._disk_error_ns = None
        self._add_pending(final)
        self._on_finalized()

    def _make_room(self, size: int) -> bool:
        """Apply the disk bound before ``size`` more bytes; False if the message must go."""
        while True:
            with self._lock:
                used = self._pending_bytes + (
                    self._segment.size if self._segment else SEGMENT_OVERHEAD)
                if used + size <= self._max_bytes:
                    return True
                self._policy_hits += 1
                if self._config.policy != DROP_OLDEST or not self._pending:
                    return False
                oldest = min(self._pending)
                self._pending_bytes -= self._pending.pop(oldest)
            oldest.unlink(missing_ok=True)
            self._dropped_segments += 1

    def _fail(self, error: OSError, stamp_ns: int, lost: int,
              segment: _Segment | None = None) -> None:
        """A write error: drop the open segment (its messages are lost), retry in 1 s."""
        segment = segment or self._segment
        self._segment = None
        if segment is not None:
            lost += segment.messages
            self._messages -= segment.messages
            segment.discard()
        self._dropped_messages += lost
        self._disk_error_ns = stamp_ns
        reason = 'disk full' if error.errno == errno.ENOSPC else 'write error'
        self._last_error = f'{reason}: {error.strerror or error} ({lost} messages lost)'


def _fsync_and_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as file:
        while block := file.read(MB):
            digest.update(block)
        os.fsync(file.fileno())
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
