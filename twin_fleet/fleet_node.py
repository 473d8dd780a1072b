"""Fleet node: health, alarms and RUL of every robot's twin; one plan for the shared maintenance team.

Subscribes, per robot namespace ``<r>``: ``/<r>/diagnostics`` (the health monitor's heartbeat),
``/<r>/twin/anomalies`` and ``/<r>/twin/maintenance_schedule``. Publishes a status per robot on
``diagnostics``, the fleet's plan on ``fleet/maintenance_schedule`` (latched; components named
``<r>/<component>``) and serves it on ``~/get_schedule``.
"""
from __future__ import annotations

import math
import time
from functools import partial

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_core.stamps import from_seconds, to_seconds
from twin_fleet.config import FleetConfig
from twin_fleet.fleet import Fleet, worst
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule, MaintenanceTask
from twin_interfaces.srv import GetSchedule
from twin_maintenance.scheduler import DAY, PlannedTask, Scheduler
from twin_ros.common import LATCHED, declare_config, run, status, status_level
from twin_ros.stamps import to_msg


class FleetNode(Node):
    """Aggregates the robots' twins and plans their shared maintenance team."""

    def __init__(self) -> None:
        super().__init__('fleet')
        self._config = config = declare_config(self, FleetConfig)
        scheduler = Scheduler(config.calendar, config.resources, horizon=config.horizon_days * DAY)
        try:
            self._fleet = Fleet(config.robots, scheduler, config.stale_after)
        except ValueError as error:
            raise ConfigError(f'fleet.robots: {error}') from None
        self._schedule = MaintenanceSchedule()
        self._schedule_publisher = self.create_publisher(MaintenanceSchedule, 'fleet/maintenance_schedule', LATCHED)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        for robot in config.robots:
            self.create_subscription(DiagnosticArray, f'/{robot}/diagnostics', partial(self._on_health, robot), 50)
            self.create_subscription(AnomalyEvent, f'/{robot}/twin/anomalies', partial(self._on_anomaly, robot), 50)
            self.create_subscription(MaintenanceSchedule, f'/{robot}/twin/maintenance_schedule',
                                     partial(self._on_schedule, robot), LATCHED)
        self.create_service(GetSchedule, '~/get_schedule', self._get_schedule)
        self.create_timer(1.0 / config.publish_rate_hz, self._tick)
        self.get_logger().info(f'fleet of {len(config.robots)}: {", ".join(config.robots)}; '
                               f'shared team: {", ".join(config.resources)}')

    def _on_health(self, robot: str, message: DiagnosticArray) -> None:
        for entry in message.status:
            if entry.name.endswith(': heartbeat'):
                self._fleet.on_health(robot, status_level(entry), entry.message, time.monotonic())

    def _on_anomaly(self, robot: str, event: AnomalyEvent) -> None:
        level = Level(min(event.severity, Level.STALE))
        self._fleet.on_alarm(robot, f'{event.sensor}/{event.method}', level, event.active)

    def _on_schedule(self, robot: str, schedule: MaintenanceSchedule) -> None:
        self._fleet.on_schedule(robot, tuple(PlannedTask.from_message(t) for t in schedule.tasks))

    def _tick(self) -> None:
        now = self.get_clock().now()
        bookings, unplaced = self._fleet.plan(to_seconds(now.nanoseconds))
        tasks = []
        for booking in bookings:
            robot, _, component = booking.task.component.partition('/')
            own = next((t for t in self._fleet.robots[robot].tasks if t.component == component), PlannedTask())
            tasks.append(MaintenanceTask(
                component=booking.task.component, action=booking.task.action, risk=str(booking.task.risk),
                start=to_msg(from_seconds(booking.start)), end=to_msg(from_seconds(booking.end)),
                deadline=to_msg(from_seconds(max(booking.task.deadline, 0.0))),
                rul=own.rul, rul_low=own.rul_low, rul_high=own.rul_high, resources=list(booking.task.resources),
                late=booking.late))
        if [(t.component, t.start, t.end) for t in tasks] != [(t.component, t.start, t.end)
                                                              for t in self._schedule.tasks]:
            self._schedule = MaintenanceSchedule(
                header=Header(stamp=now.to_msg()), revision=self._schedule.revision + 1, tasks=tasks,
                unplaced=[t.component for t in unplaced])
            self._schedule_publisher.publish(self._schedule)
        self._publish_diagnostics(now.to_msg(), len(bookings), sum(b.late for b in bookings))

    def _publish_diagnostics(self, stamp: Time, booked: int, late: int) -> None:
        summaries = self._fleet.summaries(time.monotonic())
        statuses = [status(f'fleet: {s.robot}', s.level, s.message, hardware_id=s.robot, values={
            'active_alarms': s.active_alarms, 'worst_risk': s.worst_risk,
            'min_rul_h': 'none' if math.isinf(s.min_rul) else round(s.min_rul / 3600.0, 3)})
            for s in summaries]
        levels = [s.level for s in summaries]
        statuses.append(status('fleet: maintenance', Level.WARN if late else Level.OK,
                               f'{booked} tasks booked for the shared team, {late} late', values={
                                   'revision': self._schedule.revision, 'unplaced': len(self._schedule.unplaced),
                                   'conflicts_in_robot_plans': self._fleet.conflicts()}))
        statuses.append(status('fleet: robots', worst(levels),
                               ', '.join(f'{level} {levels.count(level)}' for level in Level if level in levels)))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=stamp), status=statuses))

    def _get_schedule(self, _request: GetSchedule.Request, response: GetSchedule.Response) -> GetSchedule.Response:
        response.schedule = self._schedule
        return response


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(FleetNode, 'fleet', args)
