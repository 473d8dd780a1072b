"""Inbound messages that could not be processed: counted per reason, kept on disk, bounded.

Every node that takes input from outside (drivers, bridges) hands a payload it rejects to its
:class:`DeadLetters`: the reason is counted (for the diagnostics) and the payload is kept, with
its source, reason and error, in a small SQLite file per node. The file keeps the newest
``capacity`` letters and stores at most ``per_second`` of them per second (a flood of garbage is
counted in full, never written in full). Inspect it with ``twin_dead_letters``.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from twin_core.stamps import NS_PER_S, to_seconds

MAX_PAYLOAD = 64 * 1024  # bytes kept of one payload
SCHEMA = ('CREATE TABLE IF NOT EXISTS letters (id INTEGER PRIMARY KEY AUTOINCREMENT, '
          'time_ns INTEGER, source TEXT, reason TEXT, error TEXT, size INTEGER, payload BLOB)')


def default_directory() -> Path:
    """``$TWIN_DEAD_LETTERS``, else ``$ROS_HOME/dead_letters``, else ``~/.ros/dead_letters``."""
    if os.environ.get('TWIN_DEAD_LETTERS'):
        return Path(os.environ['TWIN_DEAD_LETTERS'])
    return Path(os.environ.get('ROS_HOME', Path.home() / '.ros')) / 'dead_letters'


@dataclass(frozen=True)
class DeadLetter:
    time_ns: int
    source: str
    reason: str
    error: str
    size: int
    payload: bytes


class DeadLetters:
    """A thread-safe, bounded dead-letter store with per-reason counters."""

    def __init__(self, path: Path, capacity: int = 1000, per_second: int = 20,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.path = path
        self._clock = clock
        self.capacity = capacity
        self.per_second = per_second
        self.counts: Counter[str] = Counter()
        self.last_error = ''
        self._lock = threading.Lock()
        self._window = (0, 0)  # (second, letters stored in it)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=NORMAL')
        self._db.execute(SCHEMA)

    @classmethod
    def for_node(cls, node_name: str, directory: Path | None = None) -> DeadLetters:
        """The store of node ``node_name`` (``/robot_1/imu_driver`` -> ``robot_1__imu_driver.sqlite``)."""
        name = node_name.strip('/').replace('/', '__') or 'node'
        return cls((directory or default_directory()) / f'{name}.sqlite')

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, source: str, reason: str, error: str, payload: bytes | str = b'') -> None:
        """Count a rejected input under ``reason`` and keep it (within the rate and size bounds)."""
        data = payload.encode(errors='replace') if isinstance(payload, str) else bytes(payload)
        now = self._clock()
        with self._lock:
            self.counts[reason] += 1
            self.last_error = f'{source}: {reason}: {error}'[:300]
            second, stored = self._window
            if now // NS_PER_S != second:
                second, stored = now // NS_PER_S, 0
            if stored >= self.per_second:
                return
            self._window = (second, stored + 1)
            try:
                self._db.execute('INSERT INTO letters (time_ns, source, reason, error, size, payload) '
                                 'VALUES (?, ?, ?, ?, ?, ?)',
                                 (now, source, reason, error[:1000], len(data), data[:MAX_PAYLOAD]))
                self._db.execute('DELETE FROM letters WHERE id <= (SELECT MAX(id) FROM letters) - ?',
                                 (self.capacity,))
            except sqlite3.Error as failure:  # a full disk must not stop the node: keep counting
                self.counts['dead_letter_store_failed'] += 1
                self.last_error = f'cannot store dead letter in {self.path}: {failure}'

    def recent(self, limit: int = 20) -> list[DeadLetter]:
        """The newest ``limit`` letters, newest first."""
        with self._lock:
            rows = self._db.execute('SELECT time_ns, source, reason, error, size, payload FROM letters '
                                    'ORDER BY id DESC LIMIT ?', (limit,)).fetchall()
        return [DeadLetter(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def main(argv: Sequence[str] | None = None) -> int:
    """twin_dead_letters: list what the nodes rejected, newest first."""
    parser = argparse.ArgumentParser(prog='twin_dead_letters', description=main.__doc__)
    parser.add_argument('node', nargs='?', help='node name (e.g. mqtt_bridge); all nodes if omitted')
    parser.add_argument('--dir', type=Path, default=None, help=f'store directory (default: {default_directory()})')
    parser.add_argument('--limit', type=int, default=20, help='letters per node (default: 20)')
    args = parser.parse_args(argv)
    directory = args.dir or default_directory()
    files = [directory / f'{args.node.strip("/").replace("/", "__")}.sqlite'] if args.node \
        else sorted(directory.glob('*.sqlite'))
    if not any(path.is_file() for path in files):
        print(f'twin_dead_letters: no dead letters in {directory}')
        return 0
    for path in (p for p in files if p.is_file()):
        store = DeadLetters(path)
        print(f'== {path.stem}')
        for letter in store.recent(args.limit):
            stamp = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(to_seconds(letter.time_ns)))
            print(f'{stamp}  {letter.source}  {letter.reason}: {letter.error}  '
                  f'({letter.size} B) {letter.payload[:80]!r}')
        store.close()
    return 0
