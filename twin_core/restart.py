"""Retry delays: when a launcher restarts a node that exited, and how long anything that failed waits.

Both launchers (``twin_launch`` and ``launch/twin.launch.py``) ask the same policy, so a node that
exits with a configuration error (code 2) stops the launch in either, and a crashed node comes
back after the same delays. Supervised workers, device readers and uploaders retry with the same
:class:`Backoff`.
"""
from __future__ import annotations

from dataclasses import dataclass

CONFIG_ERROR_EXIT_CODE = 2


@dataclass
class Backoff:
    """Delays that double per failure up to ``maximum`` and start again from ``initial`` after a
    run of ``stable_after`` s or a :meth:`reset` (a success).
    """

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 30.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self, ran_for: float = 0.0) -> float:
        """The wait before the next attempt, after one that ran ``ran_for`` seconds."""
        if ran_for >= self.stable_after:
            self.reset()
        delay, self._next = self._next, min(self._next * 2.0, self.maximum)
        return delay

    def reset(self) -> None:
        """The next delay is ``initial`` again."""
        self._next = self.initial


def restart_delay(code: int, ran_for: float, backoff: Backoff) -> float | None:
    """Seconds to wait before restarting a node that exited with ``code``; None: do not restart.

    A configuration error will not go away by itself: the node stays down and the launch stops.
    """
    if code == CONFIG_ERROR_EXIT_CODE:
        return None
    return backoff.delay(ran_for)
