"""When a launcher restarts a node that exited: never after a configuration error, else with backoff.

Both launchers (``twin_launch`` and ``launch/twin.launch.py``) ask the same policy, so a node that
exits with a configuration error (code 2) stops the launch in either, and a crashed node comes
back after the same delays.
"""
from __future__ import annotations

from dataclasses import dataclass

CONFIG_ERROR_EXIT_CODE = 2


@dataclass
class Backoff:
    """Restart delays that double per crash and reset after a stable run."""

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 30.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self, ran_for: float) -> float:
        """The wait before restarting a process that ran ``ran_for`` seconds."""
        if ran_for >= self.stable_after:
            self._next = self.initial
        delay, self._next = self._next, min(self._next * 2.0, self.maximum)
        return delay


def restart_delay(code: int, ran_for: float, backoff: Backoff) -> float | None:
    """Seconds to wait before restarting a node that exited with ``code``; None: do not restart.

    A configuration error will not go away by itself: the node stays down and the launch stops.
    """
    if code == CONFIG_ERROR_EXIT_CODE:
        return None
    return backoff.delay(ran_for)
