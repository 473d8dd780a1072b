"""Maintenance scheduling: tasks with safety deadlines placed into maintenance windows.

Times are seconds on the twin's clock (epoch seconds; day 0 = Thursday 1970-01-01 UTC, the
``utc_offset`` shifts to local time). A task may run only inside a maintenance window that
also lies within working hours, with every resource it needs free; a resource does one task
at a time and may have blocked intervals. Tasks are placed earliest-deadline first at the
earliest feasible start; one that cannot end before its deadline (RUL minus the safety
margin) is still placed as early as possible and marked late. Replanning keeps previous
bookings that are still in the future and on time, so a schedule only moves when it must;
when keeping them makes tasks late, a fresh plan is taken if it has fewer late tasks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from twin_core.config import describe
from twin_core.levels import Risk
from twin_core.stamps import from_msg, to_seconds

DAY, HOUR = 86400.0, 3600.0


def _hour(default: float, description: str) -> float:
    return field(default=default, metadata=describe(description, min=0.0, max=24.0))


@dataclass(frozen=True)
class Calendar:
    """Working hours and the daily maintenance window, local time."""

    work_start_hour: float = _hour(6.0, 'Start of working hours (local hour of day).')
    work_end_hour: float = _hour(22.0, 'End of working hours (local hour of day).')
    working_days: tuple[int, ...] = field(default=(0, 1, 2, 3, 4), metadata=describe(
        'Working weekdays, Monday = 0.'))
    window_start_hour: float = _hour(6.0, 'Start of the daily maintenance window (local hour).')
    window_end_hour: float = _hour(22.0, 'End of the daily maintenance window (local hour).')
    utc_offset_hours: float = field(default=0.0, metadata=describe(
        'Local time minus UTC (h).', min=-14.0, max=14.0))

    def slots(self, start: float, end: float) -> list[tuple[float, float]]:
        """Intervals within [start, end) open for maintenance (window ∩ working hours, working days)."""
        open_start = max(self.work_start_hour, self.window_start_hour) * HOUR
        open_end = min(self.work_end_hour, self.window_end_hour) * HOUR
        offset = self.utc_offset_hours * HOUR
        slots = []
        day = (start + offset) // DAY
        while day * DAY - offset < end:
            weekday = int((day + 3) % 7)
            begin, finish = day * DAY - offset + open_start, day * DAY - offset + open_end
            if weekday in self.working_days and finish > start and begin < end and open_end > open_start:
                slots.append((max(begin, start), min(finish, end)))
            day += 1
        return slots


@dataclass(frozen=True)
class Task:
    """Maintenance of one component; ``deadline`` is the latest safe end time."""

    component: str
    action: str
    duration: float
    deadline: float
    resources: tuple[str, ...]
    risk: Risk = Risk.LOW


@dataclass(frozen=True)
class Booking:
    task: Task
    start: float
    end: float
    late: bool


@dataclass
class Scheduler:
    """Places tasks given a calendar, resources and their blocked intervals."""

    calendar: Calendar
    resources: tuple[str, ...]
    blocked: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    horizon: float = 30 * DAY

    def plan(self, tasks: list[Task], now: float,
             previous: Sequence[Booking] = ()) -> tuple[list[Booking], list[Task]]:
        """(bookings, tasks that could not be placed within the horizon)."""
        kept = self._place(tasks, now, previous)
        if previous and any(booking.late for booking in kept[0]):
            fresh = self._place(tasks, now, ())
            if sum(b.late for b in fresh[0]) < sum(b.late for b in kept[0]):
                return fresh
        return kept

    def _place(self, tasks: list[Task], now: float,
               previous: Sequence[Booking]) -> tuple[list[Booking], list[Task]]:
        busy = {name: list(self.blocked.get(name, [])) for name in self.resources}
        by_component = {task.component: task for task in tasks}
        bookings = []
        for booking in previous:
            task = by_component.get(booking.task.component)
            if (task is not None and booking.start >= now and booking.end <= task.deadline
                    and booking.end - booking.start == task.duration and self._free(task, booking.start, busy)):
                bookings.append(replace(booking, task=task))
                self._reserve(task, booking.start, busy)
        kept = {booking.task.component for booking in bookings}
        unplaced = []
        for task in sorted((t for t in tasks if t.component not in kept), key=lambda t: t.deadline):
            start = self._earliest(task, now, busy)
            if start is None:
                unplaced.append(task)
                continue
            self._reserve(task, start, busy)
            bookings.append(Booking(task, start, start + task.duration, start + task.duration > task.deadline))
        return sorted(bookings, key=lambda b: b.start), unplaced

    def _earliest(self, task: Task, now: float, busy: dict[str, list[tuple[float, float]]]) -> float | None:
        if any(name not in busy for name in task.resources):
            return None
        for slot_start, slot_end in self.calendar.slots(now, now + self.horizon):
            candidates = sorted({slot_start} | {end for name in task.resources for _, end in busy[name]
                                                if slot_start < end < slot_end})
            for start in candidates:
                if start + task.duration <= slot_end and self._free(task, start, busy):
                    return start
        return None

    @staticmethod
    def _free(task: Task, start: float, busy: dict[str, list[tuple[float, float]]]) -> bool:
        end = start + task.duration
        return all(not (s < end and start < e) for name in task.resources for s, e in busy.get(name, ()))

    @staticmethod
    def _reserve(task: Task, start: float, busy: dict[str, list[tuple[float, float]]]) -> None:
        for name in task.resources:
            busy[name].append((start, start + task.duration))


@dataclass(frozen=True)
class PlannedTask:
    """One task of a published plan (``twin_interfaces/MaintenanceTask``): times in s since the
    epoch, the median RUL and its 80 % interval in s (0 when the task has no estimate).
    """

    component: str = ''
    action: str = ''
    risk: Risk = Risk.LOW
    start: float = 0.0
    end: float = 0.0
    deadline: float = 0.0
    rul: float = 0.0
    rul_low: float = 0.0
    rul_high: float = 0.0
    resources: tuple[str, ...] = ()
    late: bool = False

    @classmethod
    def from_message(cls, task: Any) -> PlannedTask:
        """From a ``MaintenanceTask`` message (rclpy or read from a bag)."""
        start, end, deadline = (to_seconds(from_msg(t)) for t in (task.start, task.end, task.deadline))
        return cls(task.component, task.action, Risk.named(task.risk), start, end, deadline, float(task.rul),
                   float(task.rul_low), float(task.rul_high), tuple(task.resources), bool(task.late))
