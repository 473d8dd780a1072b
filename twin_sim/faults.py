"""Which faults are active at a given simulated time."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from twin_sim.scenario import Fault


class FaultSchedule:
    """Scheduled and injected faults; ``update`` only re-evaluates when something changes."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self.faults: list[Fault] = []
        self.active: tuple[Fault, ...] = ()
        self._next_change = -math.inf
        for fault in faults:
            self.add(fault, now=0.0)

    def add(self, fault: Fault, now: float) -> Fault:
        """Schedule ``fault``; one without a start time starts ``now``. Returns the scheduled fault."""
        scheduled = fault if fault.start is not None else dataclasses.replace(fault, start=now)
        self.faults.append(scheduled)
        self._next_change = -math.inf
        return scheduled

    def update(self, time: float) -> tuple[tuple[Fault, ...], tuple[Fault, ...]] | None:
        """Refresh the active set; returns (started, ended) when it changed, else None."""
        if time < self._next_change:
            return None
        active = tuple(fault for fault in self.faults if fault.is_active(time))
        boundaries = [edge for fault in self.faults for edge in (_start(fault), fault.end) if edge > time]
        self._next_change = min(boundaries, default=math.inf)
        started = tuple(fault for fault in active if not _contains(self.active, fault))
        ended = tuple(fault for fault in self.active if not _contains(active, fault))
        self.active = active
        return (started, ended) if started or ended else None

    def started(self, time: float) -> list[Fault]:
        """Faults that have started by ``time`` (active or finished), in start order."""
        return sorted((fault for fault in self.faults if _start(fault) <= time), key=_start)

    def active_of(self, fault_type: str) -> list[Fault]:
        return [fault for fault in self.active if fault.type == fault_type]

    def is_dropped(self, channel: str) -> bool:
        return any(fault.target == channel for fault in self.active_of("sensor_dropout"))


def _start(fault: Fault) -> float:
    """The start of a scheduled fault (``add`` gives every one a start)."""
    assert fault.start is not None
    return fault.start


def _contains(faults: tuple[Fault, ...], fault: Fault) -> bool:
    """Membership by identity: two injections with equal fields are distinct faults."""
    return any(item is fault for item in faults)
