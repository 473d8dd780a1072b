"""Fleet node: health, alarms and RUL of every robot's twin; one plan for the shared maintenance team.

Subscribes, per robot namespace ``<r>``: ``/<r>/diagnostics`` (the health monitor's heartbeat),
``/<r>/twin/anomalies`` and ``/<r>/twin/maintenance_schedule``. Publishes a status per robot on
``diagnostics``, the fleet's plan on ``fleet/maintenance_schedule`` (latched; components named
``<r>/<component>``) and serves it on ``~/get_schedule``.
"""
from __future__ import annotations

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
from twin_fleet.fleet import Fleet, FleetPlan
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
        plan = self._fleet.schedule(to_seconds(now.nanoseconds))
        if plan.changed:
            self._schedule = MaintenanceSchedule(
                header=Header(stamp=now.to_msg()), revision=self._schedule.revision + 1, tasks=[
                    MaintenanceTask(
                        component=b.task.component, action=b.task.action, risk=str(b.task.risk),
                        start=to_msg(from_seconds(b.start)), end=to_msg(from_seconds(b.end)),
                        deadline=to_msg(from_seconds(max(b.task.deadline, 0.0))), rul=own.rul,
                        rul_low=own.rul_low, rul_high=own.rul_high, resources=list(b.task.resources), late=b.late)
                    for b, own in zip(plan.bookings, plan.own)],
                unplaced=[t.component for t in plan.unplaced])
            self._schedule_publisher.publish(self._schedule)
        self._publish_diagnostics(now.to_msg(), plan)

    def _publish_diagnostics(self, stamp: Time, plan: FleetPlan) -> None:
        reports = self._fleet.report(time.monotonic(), plan, self._schedule.revision, len(self._schedule.unplaced))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=stamp), status=[
            status(f'fleet: {r.name}', r.level, r.message, r.hardware_id, r.values) for r in reports]))

    def _get_schedule(self, _request: GetSchedule.Request, response: GetSchedule.Response) -> GetSchedule.Response:
        response.schedule = self._schedule
        return response


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(FleetNode, 'fleet', args)
