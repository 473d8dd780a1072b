"""Durable MQTT state in one sqlite3 file: the bounded outbox and the ids already delivered.

Writes are grouped: :meth:`Outbox.add`, :meth:`Outbox.remove` and :meth:`SeenIds.add` only queue
their rows in memory, and :meth:`Store.commit` writes everything queued in one transaction. The
bridge's sender decides when to commit (a batch is every message queued since the last commit)
and hands a message to the broker only once it is committed; at most ``MAX_UNSAVED`` messages
wait for a commit (the next :meth:`Outbox.add` commits them itself). WAL journal with
``synchronous=NORMAL``: a commit survives a crash of the process; the last commits may be lost on
a power failure. A commit that fails (disk full, I/O error) keeps every queued row in memory for
the next one and is reported in :attr:`Store.error`.
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

SCHEMA = '''
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_order ON seen (n);
'''
MAX_UNSAVED = 256  # messages queued for commit at most: the next add commits them itself


@dataclass(frozen=True, slots=True)
class Pending:
    """An outgoing message waiting for the broker's acknowledgement."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Writer(Protocol):
    """Rows queued in memory for the store's next commit."""

    @property
    def unsaved(self) -> bool: ...

    def write(self, db: sqlite3.Connection) -> Callable[[], None]:
        """Write the queued rows in the open transaction; return what to do once it is committed."""
        ...


@dataclass
class Store:
    """One connection to the bridge's database, shared by all threads under ``lock``.

    (Separate connections would contend for sqlite's file lock, whose busy handler sleeps.)
    ``writers`` write their queued rows inside :meth:`commit`'s transaction. ``error`` is the
    last commit's failure ('' once a commit succeeds); ``committed_at`` the monotonic time of the
    last commit or failed attempt.
    """

    db: sqlite3.Connection
    lock: threading.Lock
    writers: list[Writer] = field(default_factory=list)
    error: str = ''
    committed_at: float = field(default_factory=time.monotonic)

    @property
    def dirty(self) -> bool:
        """Whether rows wait for :meth:`commit`."""
        return any(writer.unsaved for writer in self.writers)

    def commit(self) -> bool:
        """Write every queued row in one transaction; False (rows kept, ``error`` set) if it fails."""
        if not self.dirty:
            return True
        with self.lock:
            try:
                with self.db:
                    written = [writer.write(self.db) for writer in self.writers]
            except sqlite3.Error as error:
                self.error = f'cannot write the outbox: {error}'
                self.committed_at = time.monotonic()
                return False
            for done in written:
                done()
            self.error = ''
            self.committed_at = time.monotonic()
        return True


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
    :meth:`take` returns committed messages not taken yet, oldest first (first those a previous
    run left in the file, then this run's).
    """

    def __init__(self, store: Store, capacity: int) -> None:
        self.store = store
        self._db = store.db
        self._lock = threading.Lock()  # the in-memory queues; store.lock is taken before it
        self.capacity = capacity
        self.dropped = 0
        with store.lock, self._db:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('epoch', ?)", (secrets.token_hex(6),))
        self.epoch = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
        self.depth = self._db.execute('SELECT count(*) FROM outbox').fetchone()[0]
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self._next_seq = (row[0] if row else 0) + 1
        self._recovered = self._next_seq - 1  # messages up to here come from the file
        self._taken = 0  # highest seq taken
        self._committed = self._recovered  # highest seq written
        self._unsaved: list[Pending] = []
        self._removed: list[int] = []
        self._queue: deque[Pending] = deque()  # this run's messages not taken yet
        store.writers.append(self)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest message ever added."""
        return self._next_seq - 1

    @property
    def unsaved(self) -> bool:
        """Whether rows wait for :meth:`Store.commit`."""
        return bool(self._unsaved or self._removed)

    @property
    def ready(self) -> bool:
        """Whether :meth:`take` has something to return."""
        return self._taken < self._recovered or (bool(self._queue) and self._queue[0].seq <= self._committed)

    def add(self, topic: str, qos: int, retain: bool, payload_for: Callable[[str], bytes]) -> Pending:
        """Queue a message whose payload ``payload_for(message_id)`` builds; drop the oldest if full."""
        if self.depth >= self.capacity:
            self._drop_oldest()
        elif len(self._unsaved) >= MAX_UNSAVED and not self.store.error:  # else the sender retries
            self.store.commit()
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            entry = Pending(seq, topic, payload_for(f'{self.epoch}/{seq}'), qos, retain)
            self._unsaved.append(entry)
            self._queue.append(entry)
            self.depth += 1
        return entry

    def _drop_oldest(self) -> None:
        """Drop the oldest message on disk (none while the disk cannot be written: all wait in memory)."""
        if not self.store.commit():
            return
        with self.store.lock:
            try:
                with self._db:
                    row = self._db.execute('DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox) '
                                           'RETURNING seq').fetchone()
            except sqlite3.Error as error:
                self.store.error = f'cannot write the outbox: {error}'
                return
        if row is None:
            return
        with self._lock:
            if self._queue and self._queue[0].seq == row[0]:
                self._queue.popleft()
            self.dropped += 1
            self.depth -= 1

    def remove(self, seqs: list[int]) -> None:
        """Forget acknowledged messages at the next commit (already dropped ones are ignored)."""
        with self._lock:
            self._removed.extend(seqs)

    def flush(self) -> bool:
        """Commit everything queued (this outbox's rows and those of the store's other writers)."""
        return self.store.commit()

    @property
    def waiting(self) -> int:
        """How many messages wait for :meth:`Store.commit` (before they can be taken)."""
        return len(self._unsaved)

    def write(self, db: sqlite3.Connection) -> Callable[[], None]:
        with self._lock:
            unsaved, removed = list(self._unsaved), list(self._removed)
        if unsaved:
            db.executemany('INSERT INTO outbox VALUES (?, ?, ?, ?, ?)',
                           [(e.seq, e.topic, e.payload, e.qos, int(e.retain)) for e in unsaved])
        deleted = db.executemany('DELETE FROM outbox WHERE seq = ?', [(s,) for s in removed]).rowcount if removed else 0

        def committed() -> None:
            with self._lock:
                del self._unsaved[:len(unsaved)]
                del self._removed[:len(removed)]
                self.depth -= max(0, deleted)
                if unsaved:
                    self._committed = unsaved[-1].seq
        return committed

    def take(self, limit: int) -> list[Pending]:
        """Up to ``limit`` committed messages not taken yet, oldest first."""
        if self._taken < self._recovered:
            entries = self.after(self._taken, limit)
            entries = [e for e in entries if e.seq <= self._recovered]
            self._taken = entries[-1].seq if len(entries) == limit else self._recovered
            if entries:
                return entries
        taken: list[Pending] = []
        with self._lock:
            while self._queue and len(taken) < limit and self._queue[0].seq <= self._committed:
                taken.append(self._queue.popleft())
        if taken:
            self._taken = taken[-1].seq
        return taken

    def after(self, seq: int, limit: int) -> list[Pending]:
        """Up to ``limit`` committed messages with a sequence number above ``seq``, oldest first."""
        with self.store.lock:
            rows = self._db.execute('SELECT seq, topic, payload, qos, retain FROM outbox '
                                    'WHERE seq > ? ORDER BY seq LIMIT ?', (seq, limit)).fetchall()
        return [Pending(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]


class SeenIds:
    """The ``window`` most recent inbound message ids, in memory and (from the next commit) on disk."""

    def __init__(self, store: Store, window: int) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.window = window
        rows = store.db.execute('SELECT id, n FROM seen ORDER BY n DESC LIMIT ?', (window,)).fetchall()
        self._ids: OrderedDict[str, None] = OrderedDict((i, None) for i, _ in reversed(rows))
        self._count = rows[0][1] if rows else 0
        self._unsaved: list[tuple[str, int]] = []
        store.writers.append(self)

    def __contains__(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._ids

    @property
    def unsaved(self) -> bool:
        return bool(self._unsaved)

    def add(self, message_id: str) -> None:
        with self._lock:
            self._count += 1
            self._ids[message_id] = None
            self._unsaved.append((message_id, self._count))
            if len(self._ids) > self.window:
                self._ids.popitem(last=False)

    def flush(self) -> bool:
        return self.store.commit()

    def write(self, db: sqlite3.Connection) -> Callable[[], None]:
        with self._lock:
            unsaved = list(self._unsaved)
        if unsaved:
            db.executemany('INSERT OR REPLACE INTO seen VALUES (?, ?)', unsaved)
            db.execute('DELETE FROM seen WHERE n <= ?', (unsaved[-1][1] - self.window,))

        def committed() -> None:
            with self._lock:
                del self._unsaved[:len(unsaved)]
        return committed
