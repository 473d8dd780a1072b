"""Liveness of the twin's components, judged from their diagnostics reports."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_core.levels import Level


@dataclass(frozen=True)
class HealthConfig:
    """Parameters of the health monitor node."""

    expected: tuple[str, ...] = field(default=(), metadata=describe(
        'Components (diagnostic status name prefixes) that must report; silence is STALE.'))
    stale_after: float = field(default=3.0, metadata=describe(
        'Seconds without a report before a component is STALE.', min=0.1, max=3600.0))
    startup_grace: float = field(default=20.0, metadata=describe(
        'Seconds after the monitor starts during which a WARN or STALE component counts as starting '
        '(the overall level stays OK); an ERROR is reported at once.', min=0.0, max=3600.0))
    publish_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of the aggregated diagnostics_agg and the heartbeat.', min=0.1, max=50.0))
    log_period: float = field(default=10.0, metadata=describe(
        'Seconds between summary lines in the log (changes of the overall level are logged at once).',
        min=1.0, max=3600.0))


@dataclass(frozen=True)
class ComponentHealth:
    """The latest judgement on one component."""

    name: str
    level: Level
    message: str
    age: float | None  # seconds since the last report; None = never heard from


class HealthTracker:
    """Keeps the last report of every component and marks silent ones STALE, except those that
    said they finished their work (forgotten until they report again).
    """

    def __init__(self, config: HealthConfig, started: float = 0.0) -> None:
        self._config = config
        self._started = started
        self._last: dict[str, tuple[float, Level, str]] = {}
        self._finished: set[str] = set()

    def report(self, name: str, level: Level, message: str, now: float, finished: bool = False) -> None:
        """Record a status named ``name`` seen at ``now``; ``finished``: its last one."""
        if finished:
            self._last.pop(name, None)
            self._finished.add(name)
        else:
            self._last[name] = (now, level, message)
            self._finished.discard(name)

    def components(self, now: float) -> list[ComponentHealth]:
        """Every reported component plus every expected one, with silence judged STALE."""
        judged = []
        for name, (seen, level, message) in sorted(self._last.items()):
            age = now - seen
            if age > self._config.stale_after:
                level, message = Level.STALE, f'no report for {age:.1f} s (last: {message})'
            judged.append(ComponentHealth(name, level, message, age))
        for expected in self._config.expected:
            if not any(name.startswith(expected) for name in (*self._last, *self._finished)):
                judged.append(ComponentHealth(expected, Level.STALE, 'never reported', None))
        return judged

    def overall(self, now: float) -> ComponentHealth:
        """The worst level across components, with the names of those at that level; during the
        start-up grace only ERROR counts, and components not yet OK are named as starting.
        """
        judged = self.components(now)
        if not judged:
            return ComponentHealth('twin', Level.OK, 'no components expected', 0.0)
        starting = now - self._started < self._config.startup_grace
        level = max((c.level for c in judged if c.level == Level.ERROR or not starting), default=Level.OK)
        if level == Level.OK and starting and any(c.level != Level.OK for c in judged):
            names = [c.name for c in judged if c.level != Level.OK]
            return ComponentHealth('twin', Level.OK, f'starting: {", ".join(names)}', 0.0)
        culprits = [c.name for c in judged if c.level == level]
        message = 'all components OK' if level == Level.OK else f'{level}: {", ".join(culprits)}'
        return ComponentHealth('twin', level, message, 0.0)


class SummaryLog:
    """When the health summary goes to the log: at once when the overall level changes, else every ``period`` s."""

    def __init__(self, period: float) -> None:
        self._period = period
        self._level: Level | None = None
        self._at = float('-inf')

    def due(self, level: Level, now: float) -> bool:
        """True when a summary at ``level`` is to be logged at ``now`` (then counted as logged)."""
        if level == self._level and now - self._at < self._period:
            return False
        self._level, self._at = level, now
        return True
