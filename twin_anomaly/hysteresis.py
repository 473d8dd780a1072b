"""An alarm on one value with hysteresis in level and time.

It rises once the value stays above ``bound`` for ``duration`` s and clears once it stays below
``clear_ratio × bound`` for ``clear_duration`` s; values in between keep the alarm as it is.
"""
from __future__ import annotations

from dataclasses import dataclass


def since(start: float | None, stamp: float, holds: bool) -> float | None:
    """When a condition that ``holds`` at ``stamp`` began (``start`` if it held before); None if not."""
    return None if not holds else stamp if start is None else start


@dataclass
class HeldAlarm:
    bound: float
    duration: float  # s above bound before rising
    clear_ratio: float
    clear_duration: float  # s below clear_ratio × bound before clearing
    over_since: float | None = None  # s, since the value went above bound
    under_since: float | None = None  # s, since the value went below clear_ratio × bound
    active: bool = False

    def update(self, stamp: float, value: float) -> bool | None:
        """The alarm's change at ``stamp`` (s) given ``value``: True when it rises, False when it
        clears, None when it stays as it was.
        """
        self.over_since = since(self.over_since, stamp, value > self.bound)
        self.under_since = since(self.under_since, stamp, value < self.clear_ratio * self.bound)
        if not self.active and self.over_since is not None and stamp - self.over_since >= self.duration:
            self.active = True
            return True
        if self.active and self.under_since is not None and stamp - self.under_since >= self.clear_duration:
            self.clear()
            return False
        return None

    def restart_timers(self) -> None:
        """Forget when the value crossed (time went back); the alarm stays as it is."""
        self.over_since = self.under_since = None

    def clear(self) -> None:
        self.active, self.over_since, self.under_since = False, None, None
