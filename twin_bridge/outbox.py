"""Durable MQTT state in one sqlite3 file: the bounded outbox and the ids already delivered.

WAL journal with ``synchronous=NORMAL``: every commit survives a crash of the process (the
bridge or the broker restarting); the last commits may be lost on a power failure.
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = '''
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_order ON seen (n);
'''


@dataclass(frozen=True, slots=True)
class Pending:
    """An outgoing message waiting for the broker's acknowledgement."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class Store:
    """One connection to the bridge's database, shared by all threads under ``lock``.

    (Separate connections would contend for sqlite's file lock, whose busy handler sleeps.)
    """

    db: sqlite3.Connection
    lock: threading.Lock


def open_store(path: Path) -> Store:
    """Open the bridge's database, creating it if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False)
    connection.execute('PRAGMA journal_mode=WAL')
    connection.execute('PRAGMA synchronous=NORMAL')
    connection.executescript(SCHEMA)
    return Store(connection, threading.Lock())


class Outbox:
    """A bounded FIFO of pending messages; message ids are ``<database epoch>/<seq>``.

    The epoch is drawn when the database is created, so ids stay unique if it is deleted.
    When full, the oldest pending message is dropped and counted in ``dropped``.
    """

    def __init__(self, store: Store, capacity: int) -> None:
        self._db, self._lock = store.db, store.lock
        self.capacity = capacity
        self.dropped = 0
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', ?)", (secrets.token_hex(6),))
        self.epoch = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
        self.depth = self._db.execute('SELECT count(*) FROM outbox').fetchone()[0]
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self._next_seq = (row[0] if row else 0) + 1

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest message ever added."""
        return self._next_seq - 1

    def add(self, topic: str, qos: int, retain: bool, payload_for: Callable[[str], bytes]) -> Pending:
        """Store a message whose payload ``payload_for(message_id)`` builds; drop the oldest if full."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            entry = Pending(seq, topic, payload_for(f'{self.epoch}/{seq}'), qos, retain)
            with self._db:
                if self.depth >= self.capacity:
                    self._db.execute('DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox)')
                    self.dropped += 1
                    self.depth -= 1
                self._db.execute('INSERT INTO outbox VALUES (?, ?, ?, ?, ?)',
                                 (seq, topic, entry.payload, qos, int(retain)))
            self.depth += 1
            return entry

    def remove(self, seqs: list[int]) -> None:
        """Forget acknowledged messages (already dropped ones are ignored)."""
        with self._lock, self._db:
            removed = self._db.executemany('DELETE FROM outbox WHERE seq = ?', [(s,) for s in seqs])
            self.depth -= removed.rowcount

    def after(self, seq: int, limit: int) -> list[Pending]:
        """Up to ``limit`` pending messages with a sequence number above ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute('SELECT seq, topic, payload, qos, retain FROM outbox '
                                    'WHERE seq > ? ORDER BY seq LIMIT ?', (seq, limit)).fetchall()
        return [Pending(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]


class SeenIds:
    """The ``window`` most recent inbound message ids, in memory and on disk."""

    def __init__(self, store: Store, window: int) -> None:
        self._db, self._lock = store.db, store.lock
        self.window = window
        rows = self._db.execute('SELECT id, n FROM seen ORDER BY n DESC LIMIT ?', (window,)).fetchall()
        self._ids: OrderedDict[str, None] = OrderedDict((i, None) for i, _ in reversed(rows))
        self._count = rows[0][1] if rows else 0

    def __contains__(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._ids

    def add(self, message_id: str) -> None:
        with self._lock, self._db:
            self._count += 1
            self._ids[message_id] = None
            self._db.execute('INSERT OR REPLACE INTO seen VALUES (?, ?)', (message_id, self._count))
            if len(self._ids) > self.window:
                self._ids.popitem(last=False)
                self._db.execute('DELETE FROM seen WHERE n <= ?', (self._count - self.window,))
