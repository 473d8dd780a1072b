"""Supervised background threads: a worker that dies is reported at once and restarted.

Every node runs its background work (device readers, broker links, uploaders, OPC UA loops)
through one :class:`Workers`. A worker whose function raises anything is not lost silently: the
failure (worker, exception, traceback) goes to ``on_failure`` right away, the worker restarts
after a backoff (:class:`twin_core.restart.Backoff`, the launchers' policy), and
:meth:`Workers.health` reports ERROR until it has run again for ``recovered_after`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin_core.levels import Level
from twin_core.restart import Backoff

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerFailure:
    worker: str
    error: str
    traceback: str


@dataclass
class _Worker:
    name: str
    target: Callable[[], None]
    stop: threading.Event | None = None  # the worker's own stop request, besides the node's
    thread: threading.Thread | None = None
    failures: int = 0
    last_error: str = ''
    failed_at: float | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=10.0))


class Workers:
    """The supervised background threads of one node."""

    def __init__(self, on_failure: Callable[[WorkerFailure], None] | None = None,
                 recovered_after: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.on_failure = on_failure or _log_failure
        self.recovered_after = recovered_after
        self._clock = clock
        self._workers: dict[str, _Worker] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def spawn(self, name: str, target: Callable[[], None], stop: threading.Event | None = None
              ) -> threading.Thread:
        """Run ``target`` in thread ``name`` until :attr:`stopping` (or ``stop``) is set.

        ``target`` returns only when asked to stop; a return or an exception before that is a
        failure. The returned thread ends once the worker has stopped.
        """
        worker = _Worker(name, target, stop)
        with self._lock:
            self._workers[name] = worker
        worker.thread = threading.Thread(target=self._supervise, args=(worker,), name=name, daemon=True)
        worker.thread.start()
        return worker.thread

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless stopping; True if the workers are stopping."""
        return self._stopping.wait(seconds)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every worker to stop and join the threads this object started."""
        self._stopping.set()
        deadline = self._clock() + timeout
        for worker in list(self._workers.values()):
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - self._clock()))

    def health(self) -> tuple[Level, str, dict[str, Any]]:
        """(level, message, values): ERROR while a worker is down or failed recently."""
        now = self._clock()
        failing = [w for w in self._workers.values()
                   if w.failed_at is not None and now - w.failed_at < self.recovered_after]
        values: dict[str, Any] = {}
        for worker in self._workers.values():
            values[f'{worker.name}.failures'] = worker.failures
            if worker.last_error:
                values[f'{worker.name}.last_error'] = worker.last_error
        if failing:
            return Level.ERROR, '; '.join(f'{w.name} failed: {w.last_error}' for w in failing), values
        return Level.OK, f'{len(self._workers)} workers running', values

    def _supervise(self, worker: _Worker) -> None:
        def stopped() -> bool:
            return self._stopping.is_set() or (worker.stop is not None and worker.stop.is_set())

        while not stopped():
            started = self._clock()
            try:
                worker.target()
                if stopped():
                    return
                raise RuntimeError('returned while the node is running')
            except Exception as error:
                self._failed(worker, error, traceback.format_exc())
            deadline = self._clock() + worker.backoff.delay(self._clock() - started)
            while not stopped() and self._clock() < deadline:
                self._stopping.wait(min(0.05, deadline - self._clock()))

    def _failed(self, worker: _Worker, error: BaseException, trace: str) -> None:
        worker.failures += 1
        worker.last_error = f'{type(error).__name__}: {error}'[:300]
        worker.failed_at = self._clock()
        try:
            self.on_failure(WorkerFailure(worker.name, worker.last_error, trace))
        except Exception:  # reporting must never take the supervisor down: say it on stderr
            traceback.print_exc()


def _log_failure(failure: WorkerFailure) -> None:
    """The report of workers nobody else watches: never silent."""
    _log.error('worker %s failed, restarting: %s\n%s', failure.worker, failure.error, failure.traceback)
