"""Maintenance planner node: health, RUL and risk per component, a schedule, alerts.

Subscribes twin/synced_frame and twin/anomalies; publishes the schedule on
twin/maintenance_schedule (latched), alerts on diagnostics, and serves ~/get_schedule.
"""
from __future__ import annotations

from collections import defaultdict, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_core.channels import frame_values, stack_rows
from twin_core.config import ConfigError
from twin_core.levels import RISK_LEVELS
from twin_core.paths import config_dir
from twin_core.stamps import from_seconds
from twin_core.urdf import read_arm_description
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule, MaintenanceTask, SyncedFrame
from twin_interfaces.srv import GetSchedule
from twin_maintenance.condition import HealthRow, HealthWindows, joint_channels, motor_health
from twin_maintenance.config import MaintenanceConfig
from twin_maintenance.rul import RulEstimate, RulModel, risk_level
from twin_maintenance.scheduler import DAY, Booking, Scheduler, Task
from twin_ros.common import LATCHED, declare_config, run, status
from twin_ros.stamps import to_msg

DIAGNOSTIC_LEVEL = {'LOW': 'OK', 'MEDIUM': 'OK', 'HIGH': 'WARN', 'CRITICAL': 'ERROR'}


class MaintenanceNode(Node):
    """Turns health-indicator windows into RUL estimates, risk levels and a maintenance plan."""

    def __init__(self) -> None:
        super().__init__('maintenance_planner')
        self._config = config = declare_config(self, MaintenanceConfig)
        path = config_dir() / config.rul_model
        if not path.is_file():
            raise ConfigError(f'maintenance_planner.rul_model: no model at {path} (train one with `twin_rul train`)')
        try:
            self._rul = RulModel.load(path)
        except ValueError as error:
            raise ConfigError(f'maintenance_planner.rul_model: {error}') from error
        arm = read_arm_description(config.urdf or config_dir() / 'arm.urdf')
        limits = dict(zip(arm.joint_names, arm.effort))
        unknown = set(config.joints) - set(limits)
        if unknown:
            raise ConfigError(f'maintenance_planner.joints: unknown {sorted(unknown)}')
        joints = [joint_channels(j, float(limits[j])) for j in config.joints]
        sensors = dict(entry.split(':', 1) for entry in config.sensors)
        self._sensor_prefix = {sensor: channel.split('.')[0] for sensor, channel in sensors.items()}
        self._names = tuple(dict.fromkeys([c for j in joints for c in (j.velocity, j.effort, j.temperature)]
                                          + list(sensors.values())))
        self._windows = HealthWindows(self._names, joints, sensors, config.window)
        self._history: dict[str, deque[HealthRow]] = defaultdict(lambda: deque(maxlen=config.history))
        self._assessment: dict[str, tuple[str, float, RulEstimate | None]] = {}  # risk, health, RUL
        self._anomalies: dict[str, int] = defaultdict(int)
        self._pending: list[tuple[float, dict[str, float]]] = []
        self._scheduler = Scheduler(config.calendar, config.resources, horizon=config.horizon_days * DAY)
        self._tasks: dict[str, Task] = {}
        self._bookings: list[Booking] = []
        self._schedule = MaintenanceSchedule()
        self._schedule_publisher = self.create_publisher(MaintenanceSchedule, 'twin/maintenance_schedule', LATCHED)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(SyncedFrame, 'twin/synced_frame', self._on_frame, 10)
        self.create_subscription(AnomalyEvent, 'twin/anomalies', self._on_anomaly, 10)
        self.create_service(GetSchedule, '~/get_schedule', self._get_schedule)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)
        self._publish_schedule(0.0, [])

    def _on_anomaly(self, event: AnomalyEvent) -> None:
        """Count alarms per component: a joint named in the channel, or a sensor's topic prefix."""
        if not event.active:
            return
        parts = event.sensor.split('.')
        for component in self._config.joints:
            if component in parts:
                self._anomalies[component] += 1
        for sensor, prefix in self._sensor_prefix.items():
            if parts[0] == prefix:
                self._anomalies[sensor] += 1

    def _on_frame(self, frame: SyncedFrame) -> None:
        self._pending.append(frame_values(frame))
        if len(self._pending) < self._config.batch_frames:
            return
        pending, self._pending = self._pending, []
        times = np.array([t for t, _ in pending])
        rows = self._windows.update(times, stack_rows(self._names, (v for _, v in pending)))
        for row in rows:
            self._history[row.component].append(row)
        if rows:
            self._assess(rows[-1].time)

    def _assess(self, now: float) -> None:
        config = self._config
        horizons = (config.risk.critical, config.risk.high, config.risk.medium)
        levels = (config.risk.critical_health, config.risk.high_health, config.risk.medium_health)
        tasks = {}
        for component, history in self._history.items():
            latest = history[-1].values
            if 'missing_fraction' in latest:
                health = 1.0 - latest['missing_fraction']
                risk = 'HIGH' if latest['missing_fraction'] > config.sensor_missing_limit else 'LOW'
                self._assessment[component] = (risk, health, None)
                if risk != 'LOW':
                    tasks[component] = Task(component, 'inspect sensor', config.sensor_duration,
                                            now + config.safety_margin, config.sensor_resources, risk)
                continue
            times = np.array([row.time for row in history])
            values = np.array([[row.values[f] for f in self._rul.features] for row in history])
            health = self._rul.health(values, component)
            if np.isfinite(health).any():  # indicators need the joint to move within a window
                estimate = self._rul.estimate(times, health)
                risk = risk_level(estimate, horizons, levels)
                self._assessment[component] = (risk, estimate.health, estimate)
                if risk != 'LOW':  # a low index alone: due within its rating's horizon
                    due = min(estimate.low, horizons[RISK_LEVELS[::-1].index(risk)])
                    tasks[component] = Task(component, 'replace gearbox', config.gearbox_duration,
                                            now + due - config.safety_margin, config.mechanical_resources, risk)
            motor = motor_health(latest['temperature'], config.ambient_temperature, config.temperature_limit)
            motor_risk = 'HIGH' if motor < 0.2 else 'MEDIUM' if motor < 0.4 else 'LOW'
            self._assessment[f'{component}_motor'] = (motor_risk, motor, None)
            if motor_risk != 'LOW':
                tasks[f'{component}_motor'] = Task(f'{component}_motor', 'service motor cooling', config.motor_duration,
                                                   now + config.safety_margin, config.mechanical_resources, motor_risk)
        if self._changed(tasks, now):
            self._tasks = tasks
            self._bookings, unplaced = self._scheduler.plan(list(tasks.values()), now, self._bookings)
            self._publish_schedule(now, unplaced)

    def _changed(self, tasks: dict[str, Task], now: float) -> bool:
        """Replan when tasks appear or go, a risk changes or a deadline moves by replan_change."""
        if tasks.keys() != self._tasks.keys():
            return True
        return any(task.risk != self._tasks[c].risk or abs(task.deadline - self._tasks[c].deadline)
                   > self._config.replan_change * max(self._tasks[c].deadline - now, 1.0)
                   for c, task in tasks.items())

    def _publish_schedule(self, now: float, unplaced: list[Task]) -> None:
        entries = []
        for booking in self._bookings:
            task = booking.task
            estimate = self._assessment.get(task.component, ('', 0.0, None))[2]
            entries.append(MaintenanceTask(
                component=task.component, action=task.action, risk=task.risk,
                start=to_msg(from_seconds(booking.start)), end=to_msg(from_seconds(booking.end)),
                deadline=to_msg(from_seconds(max(task.deadline, 0.0))),
                rul=estimate.median if estimate else 0.0, rul_low=estimate.low if estimate else 0.0,
                rul_high=estimate.high if estimate else 0.0, resources=list(task.resources), late=booking.late))
        self._schedule = MaintenanceSchedule(header=Header(stamp=to_msg(from_seconds(now))),
                                             revision=self._schedule.revision + 1, tasks=entries,
                                             unplaced=[t.component for t in unplaced])
        self._schedule_publisher.publish(self._schedule)

    def _get_schedule(self, _request: GetSchedule.Request, response: GetSchedule.Response) -> GetSchedule.Response:
        response.schedule = self._schedule
        return response

    def _publish_diagnostics(self) -> None:
        name = self.get_name()
        statuses = []
        for component, (risk, health, estimate) in sorted(self._assessment.items()):
            values = {'risk': risk, 'health': health, 'anomalies': self._anomalies.get(component, 0)}
            if estimate is not None:
                values.update(rul_s=estimate.median, rul_low_s=estimate.low, rul_high_s=estimate.high)
            statuses.append(status(f'{name}: {component}', DIAGNOSTIC_LEVEL[risk], f'risk {risk}', values=values))
        statuses.append(status(f'{name}: schedule', 'OK', f'revision {self._schedule.revision}, '
                               f'{len(self._schedule.tasks)} tasks'))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=statuses))


def main(args: list[str] | None = None) -> int:
    return run(MaintenanceNode, 'maintenance_planner', args)
