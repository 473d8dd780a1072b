"""Maintenance planning policy: condition windows per component, risk ratings, tasks and when to replan.

Gearboxes are rated on their RUL estimate and condition index, motors on their winding temperature,
sensors on the fraction of a window they were missing. A component rated above LOW gets a task
whose deadline is the latest safe end; the plan is redone only when tasks appear or go, a risk
changes or a deadline moves by more than ``replan_change`` of the time left to it.
"""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from twin_core.channels import stack_rows
from twin_core.levels import Level, Risk
from twin_core.signals import canonical, input_type
from twin_core.status import Status
from twin_maintenance.condition import ConditionRow, ConditionWindows, joint_channels, motor_condition
from twin_maintenance.config import MaintenanceConfig
from twin_maintenance.rul import RATINGS, RulEstimate, RulModel, risk_level
from twin_maintenance.scheduler import DAY, Booking, Scheduler, Task

RISK_LEVEL = {Risk.LOW: Level.OK, Risk.MEDIUM: Level.OK, Risk.HIGH: Level.WARN, Risk.CRITICAL: Level.ERROR}
MOTOR_HIGH, MOTOR_MEDIUM = 0.2, 0.4  # motor condition below which its cooling needs service


@dataclass(frozen=True)
class Assessment:
    """A component's risk rating, condition (1 new .. 0 failed) and RUL (gearboxes only)."""

    risk: Risk
    condition: float
    rul: RulEstimate | None = None


@dataclass(frozen=True)
class Plan:
    """A schedule made at ``time``: the bookings and the tasks no slot was found for."""

    time: float
    bookings: list[Booking]
    unplaced: list[Task]


class MaintenancePlanner:
    """Turns synchronized frames into assessments per component and a maintenance plan."""

    def __init__(self, config: MaintenanceConfig, rul: RulModel, effort_limits: Mapping[str, float]) -> None:
        """``effort_limits`` (N·m) by joint name, from the robot description."""
        unknown = set(config.joints) - set(effort_limits)
        if unknown:
            raise ValueError(f'joints: unknown {sorted(unknown)}')
        self.config, self._rul = config, rul
        joints = [joint_channels(j, float(effort_limits[j])) for j in config.joints]
        sensors = {sensor: canonical(channel) for sensor, channel in (entry.split(':', 1) for entry in config.sensors)}
        self._sensor_inputs = {sensor: input_type(channel) for sensor, channel in sensors.items()}
        self.names = tuple(dict.fromkeys([c for j in joints for c in (j.velocity, j.effort, j.temperature)]
                                         + list(sensors.values())))
        self._windows = ConditionWindows(self.names, joints, sensors, config.window)
        self._history: dict[str, deque[ConditionRow]] = defaultdict(lambda: deque(maxlen=config.history))
        self._pending: list[tuple[float, dict[str, float]]] = []
        self._scheduler = Scheduler(config.calendar, config.resources, horizon=config.horizon_days * DAY)
        self._tasks: dict[str, Task] = {}
        self.assessments: dict[str, Assessment] = {}
        self.alarms: dict[str, int] = defaultdict(int)
        self.bookings: list[Booking] = []

    def count_alarm(self, sensor: str) -> None:
        """Count a raised alarm of channel ``sensor`` for the joints it names and the sensors whose
        channel comes from the same kind of input.
        """
        parts = sensor.split('.')
        for joint in self.config.joints:
            if joint in parts:
                self.alarms[joint] += 1
        kind = input_type(sensor)
        for name, sensor_kind in self._sensor_inputs.items():
            if kind is not None and kind == sensor_kind:
                self.alarms[name] += 1

    def add_frame(self, time: float, values: Mapping[str, float]) -> Plan | None:
        """Buffer a frame (channel → value); every ``batch_frames`` frames, close the windows due and
        assess when one closed. A new plan when that changed the tasks enough.
        """
        self._pending.append((time, dict(values)))
        if len(self._pending) < self.config.batch_frames:
            return None
        pending, self._pending = self._pending, []
        rows = self._windows.update(np.array([t for t, _ in pending]), stack_rows(self.names, (v for _, v in pending)))
        for row in rows:
            self._history[row.component].append(row)
        return self.assess(rows[-1].time) if rows else None

    def assess(self, now: float) -> Plan | None:
        """Rate every component from its latest windows; a new plan when the tasks changed enough."""
        rated: list[tuple[Assessment, Task] | None] = []
        for component, history in self._history.items():
            latest = history[-1].values
            if 'missing_fraction' in latest:
                rated.append(self._sensor(component, latest['missing_fraction'], now))
            else:
                rated += [self._gearbox(component, history, now), self._motor(component, latest['temperature'], now)]
        tasks = {}
        for assessment, task in filter(None, rated):
            self.assessments[task.component] = assessment
            if assessment.risk > Risk.LOW:
                tasks[task.component] = task
        if not self._changed(tasks, now):
            return None
        self._tasks = tasks
        self.bookings, unplaced = self._scheduler.plan(list(tasks.values()), now, self.bookings)
        return Plan(now, self.bookings, unplaced)

    def _sensor(self, sensor: str, missing: float, now: float) -> tuple[Assessment, Task]:
        config = self.config
        risk = Risk.HIGH if missing > config.sensor_missing_limit else Risk.LOW
        return Assessment(risk, 1.0 - missing), Task(sensor, 'inspect sensor', config.sensor_duration,
                                                     now + config.safety_margin, config.sensor_resources, risk)

    def _gearbox(self, joint: str, history: deque[ConditionRow], now: float) -> tuple[Assessment, Task] | None:
        config, risk_config = self.config, self.config.risk
        values = np.array([[row.values[f] for f in self._rul.features] for row in history])
        condition = self._rul.condition(values, joint)
        if not np.isfinite(condition).any():  # indicators need the joint to move within a window
            return None
        horizons = (risk_config.critical, risk_config.high, risk_config.medium)
        levels = (risk_config.critical_health, risk_config.high_health, risk_config.medium_health)
        estimate = self._rul.estimate(np.array([row.time for row in history]), condition)
        risk = risk_level(estimate, horizons, levels)
        # a low index alone: due within its rating's horizon
        due = min(estimate.low, horizons[RATINGS.index(risk)]) if risk in RATINGS else estimate.low
        return Assessment(risk, estimate.condition, estimate), Task(
            joint, 'replace gearbox', config.gearbox_duration, now + due - config.safety_margin,
            config.mechanical_resources, risk)

    def _motor(self, joint: str, temperature: float, now: float) -> tuple[Assessment, Task]:
        config = self.config
        condition = motor_condition(temperature, config.ambient_temperature, config.temperature_limit)
        risk = Risk.HIGH if condition < MOTOR_HIGH else Risk.MEDIUM if condition < MOTOR_MEDIUM else Risk.LOW
        return Assessment(risk, condition), Task(f'{joint}_motor', 'service motor cooling', config.motor_duration,
                                              now + config.safety_margin, config.mechanical_resources, risk)

    def report(self) -> list[Status]:
        """Per assessed component: its risk (HIGH a warning, CRITICAL an error), condition, alarms and RUL."""
        reports = []
        for component, assessment in sorted(self.assessments.items()):
            values = {'risk': assessment.risk, 'health': assessment.condition,
                      'anomalies': self.alarms.get(component, 0)}
            if assessment.rul is not None:
                values.update(rul_s=assessment.rul.median, rul_low_s=assessment.rul.low,
                              rul_high_s=assessment.rul.high)
            reports.append(Status(component, RISK_LEVEL[assessment.risk], f'risk {assessment.risk}', values))
        return reports

    def _changed(self, tasks: dict[str, Task], now: float) -> bool:
        if tasks.keys() != self._tasks.keys():
            return True
        return any(task.risk != self._tasks[c].risk or abs(task.deadline - self._tasks[c].deadline)
                   > self.config.replan_change * max(self._tasks[c].deadline - now, 1.0)
                   for c, task in tasks.items())
