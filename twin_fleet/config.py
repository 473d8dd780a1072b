"""Parameters of the fleet node."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_maintenance.scheduler import Calendar


@dataclass(frozen=True)
class FleetConfig:
    """Parameters of the ``fleet`` node (``robots`` is set by the launchers)."""

    robots: tuple[str, ...] = field(default=(), metadata=describe(
        'Namespaces of the robots in the fleet (e.g. robot_1, robot_2).'))
    resources: tuple[str, ...] = field(default=('mechanic', 'electrician'), metadata=describe(
        'The maintenance team shared by all robots: each does one task at a time.'))
    calendar: Calendar = Calendar()
    horizon_days: float = field(default=30.0, metadata=describe('Planning horizon (days).', min=1.0, max=365.0))
    stale_after: float = field(default=5.0, metadata=describe(
        'A robot whose health monitor was silent this long (s) is STALE.', min=0.5, max=600.0))
    publish_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of the fleet diagnostics and of replanning.', min=0.1, max=10.0))
