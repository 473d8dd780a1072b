"""The fleet's view of its twins and one maintenance plan for the team they share.

Each robot's maintenance planner books its tasks as if the team were its own. The fleet
merges every robot's tasks and places them again with the shared resources, earliest
deadline first (:class:`twin_maintenance.scheduler.Scheduler`), so one mechanic is never booked
on two robots at once; ``conflicts`` counts the overlaps the robots' own plans had.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from twin_core.levels import Level, Risk
from twin_core.status import Status
from twin_maintenance.scheduler import Booking, PlannedTask, Scheduler, Task


@dataclass
class RobotView:
    """What the fleet knows of one robot."""

    level: Level = Level.STALE
    message: str = 'no report yet'
    reported_at: float = -math.inf
    alarms: dict[str, Level] = field(default_factory=dict)  # sensor/method -> level
    tasks: tuple[PlannedTask, ...] = ()


@dataclass(frozen=True)
class RobotSummary:
    robot: str
    level: Level
    message: str
    active_alarms: int
    worst_risk: Risk
    min_rul: float  # s; inf when no task carries an estimate


@dataclass(frozen=True)
class FleetPlan:
    """The shared team's plan: its bookings (components ``robot/component``) with each one's task in its
    robot's own plan (for the RUL), the tasks no slot was found for, and whether the bookings moved.
    """

    bookings: list[Booking]
    own: list[PlannedTask]
    unplaced: list[Task]
    changed: bool

    @property
    def late(self) -> int:
        return sum(booking.late for booking in self.bookings)


class Fleet:
    """Health, alarms and maintenance tasks per robot; the shared maintenance plan."""

    def __init__(self, robots: tuple[str, ...], scheduler: Scheduler, stale_after: float) -> None:
        if len(set(robots)) != len(robots) or not robots:
            raise ValueError(f'robots must be distinct namespaces, got {list(robots)}')
        self.robots = {robot: RobotView() for robot in robots}
        self._scheduler = scheduler
        self._stale_after = stale_after
        self._bookings: list[Booking] = []
        self._planned: list[tuple[str, float, float]] = []  # (component, start, end) of the last schedule

    def on_health(self, robot: str, level: Level, message: str, now: float) -> None:
        """The robot's health monitor reported its overall ``level`` at ``now`` (monotonic s)."""
        view = self.robots[robot]
        view.level, view.message, view.reported_at = level, message, now

    def on_alarm(self, robot: str, alarm: str, level: Level, active: bool) -> None:
        """An anomaly alarm of the robot rose (``active``) or cleared."""
        alarms = self.robots[robot].alarms
        if active:
            alarms[alarm] = level
        else:
            alarms.pop(alarm, None)

    def on_schedule(self, robot: str, tasks: tuple[PlannedTask, ...]) -> None:
        """The robot's planner published a new schedule."""
        self.robots[robot].tasks = tasks

    def summaries(self, now: float) -> list[RobotSummary]:
        """Per robot: its level (STALE when silent), active alarms, worst risk and shortest RUL."""
        out = []
        for robot, view in self.robots.items():
            stale = now - view.reported_at > self._stale_after
            level = Level.STALE if stale else view.level
            message = f'silent for more than {self._stale_after:g} s' if stale else view.message
            ruls = [t.rul for t in view.tasks if t.rul > 0.0]
            alarm_levels = list(view.alarms.values())
            if Level.ERROR in alarm_levels and level < Level.ERROR:
                level = Level.ERROR
            out.append(RobotSummary(robot, level, message, len(alarm_levels),
                                    max((t.risk for t in view.tasks), default=Risk.LOW), min(ruls, default=math.inf)))
        return out

    def plan(self, now: float) -> tuple[list[Booking], list[Task]]:
        """Place every robot's tasks with the shared team; (bookings, unplaced). Components are robot/component."""
        tasks = [Task(f'{robot}/{t.component}', t.action, t.end - t.start, t.deadline, t.resources, t.risk)
                 for robot, view in self.robots.items() for t in view.tasks]
        self._bookings, unplaced = self._scheduler.plan(tasks, now, self._bookings)
        return self._bookings, unplaced

    def schedule(self, now: float) -> FleetPlan:
        """The shared plan at ``now`` (epoch s), with the robots' own tasks and whether any booking moved."""
        bookings, unplaced = self.plan(now)
        planned = [(b.task.component, b.start, b.end) for b in bookings]
        changed, self._planned = planned != self._planned, planned
        return FleetPlan(bookings, [self._own(b.task.component) for b in bookings], unplaced, changed)

    def _own(self, component: str) -> PlannedTask:
        robot, _, name = component.partition('/')
        return next((t for t in self.robots[robot].tasks if t.component == name), PlannedTask())

    def report(self, now: float, plan: FleetPlan, revision: int, unplaced: int) -> list[Status]:
        """A status per robot, of the shared plan (``revision`` and ``unplaced`` as published) and of the fleet."""
        summaries = self.summaries(now)
        reports = [Status(s.robot, s.level, s.message, {
            'active_alarms': s.active_alarms, 'worst_risk': s.worst_risk,
            'min_rul_h': 'none' if math.isinf(s.min_rul) else round(s.min_rul / 3600.0, 3)}, s.robot)
            for s in summaries]
        reports.append(Status('maintenance', Level.WARN if plan.late else Level.OK,
                              f'{len(plan.bookings)} tasks booked for the shared team, {plan.late} late',
                              {'revision': revision, 'unplaced': unplaced,
                               'conflicts_in_robot_plans': self.conflicts()}))
        levels = [s.level for s in summaries]
        reports.append(Status('robots', worst(levels),
                              ', '.join(f'{level} {levels.count(level)}' for level in Level if level in levels)))
        return reports

    def conflicts(self) -> int:
        """Pairs of tasks of different robots booked on one resource at overlapping times in their own plans."""
        booked = [(robot, t) for robot, view in self.robots.items() for t in view.tasks]
        return sum(1 for i, (robot_a, a) in enumerate(booked) for robot_b, b in booked[i + 1:]
                   if robot_a != robot_b and set(a.resources) & set(b.resources)
                   and a.start < b.end and b.start < a.end)


def worst(levels: list[Level]) -> Level:
    """The most severe of diagnostic ``levels`` (OK for none)."""
    return max(levels, default=Level.OK)
