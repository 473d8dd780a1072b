"""A component's diagnostic status as the cores judge it, before a node shell turns it into a message."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twin_core.levels import Level

# Key of a component's last status, value 'true': it ended its work and reports no more (a
# health monitor forgets it instead of judging its silence STALE).
FINISHED = 'finished'


@dataclass(frozen=True)
class Status:
    """One diagnostic status: a component name, a level, a message, key values and the hardware it is about."""

    name: str
    level: Level
    message: str
    values: Mapping[str, Any] = field(default_factory=dict)
    hardware_id: str = ''
