"""Maintenance planner node: condition, RUL and risk per component, a schedule, alerts.

Subscribes twin/synced_frame and twin/anomalies; publishes the schedule on
twin/maintenance_schedule (latched; an empty one with the first frame, stamped like the frames,
until the first assessment), alerts on diagnostics, and serves ~/get_schedule.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_core.cdr import SyncedFrameWire
from twin_core.channels import frame_values
from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_core.paths import config_dir
from twin_core.stamps import from_seconds
from twin_core.urdf import read_arm_description, urdf_file
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule, MaintenanceTask
from twin_interfaces.srv import GetSchedule
from twin_maintenance.config import MaintenanceConfig
from twin_maintenance.planner import MaintenancePlanner, Plan
from twin_maintenance.rul import RulModel
from twin_ros.common import (
    ANALYTICS_BATCH_PERIOD_NS,
    LATCHED,
    declare_config,
    run,
    status,
    subscribe_synced_frames,
)
from twin_ros.stamps import to_msg


class MaintenanceNode(Node):
    """Turns condition-indicator windows into RUL estimates, risk levels and a maintenance plan."""

    def __init__(self) -> None:
        super().__init__('maintenance_planner')
        config = declare_config(self, MaintenanceConfig)
        self.spin_batch_period_ns = ANALYTICS_BATCH_PERIOD_NS
        path = config_dir() / config.rul_model
        if not path.is_file():
            raise ConfigError(f'maintenance_planner.rul_model: no model at {path} (train one with `twin_rul train`)')
        try:
            rul = RulModel.load(path)
        except ValueError as error:
            raise ConfigError(f'maintenance_planner.rul_model: {error}') from error
        arm = read_arm_description(urdf_file(config.urdf))
        try:
            self._planner = MaintenancePlanner(config, rul, dict(zip(arm.joint_names, arm.effort)))
        except ValueError as error:
            raise ConfigError(f'maintenance_planner.{error}') from None
        self._schedule = MaintenanceSchedule()
        self._schedule_publisher = self.create_publisher(MaintenanceSchedule, 'twin/maintenance_schedule', LATCHED)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        subscribe_synced_frames(self, self._on_frame)
        self.create_subscription(AnomalyEvent, 'twin/anomalies', self._on_anomaly, 10)
        self.create_service(GetSchedule, '~/get_schedule', self._get_schedule)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)

    def _on_anomaly(self, event: AnomalyEvent) -> None:
        if event.active:
            self._planner.count_alarm(event.sensor)

    def _on_frame(self, frame: SyncedFrameWire) -> None:
        time, values = frame_values(frame)
        if not self._schedule.revision:  # no plan yet: an empty one, made at the frames' time
            self._publish_schedule(Plan(time, [], []))
        plan = self._planner.add_frame(time, values)
        if plan is not None:
            self._publish_schedule(plan)

    def _publish_schedule(self, plan: Plan) -> None:
        entries = []
        for booking in plan.bookings:
            task = booking.task
            assessment = self._planner.assessments.get(task.component)
            estimate = assessment.rul if assessment else None
            entries.append(MaintenanceTask(
                component=task.component, action=task.action, risk=str(task.risk),
                start=to_msg(from_seconds(booking.start)), end=to_msg(from_seconds(booking.end)),
                deadline=to_msg(from_seconds(max(task.deadline, 0.0))),
                rul=estimate.median if estimate else 0.0, rul_low=estimate.low if estimate else 0.0,
                rul_high=estimate.high if estimate else 0.0, resources=list(task.resources), late=booking.late))
        self._schedule = MaintenanceSchedule(header=Header(stamp=to_msg(from_seconds(plan.time))),
                                             revision=self._schedule.revision + 1, tasks=entries,
                                             unplaced=[t.component for t in plan.unplaced])
        self._schedule_publisher.publish(self._schedule)

    def _get_schedule(self, _request: GetSchedule.Request, response: GetSchedule.Response) -> GetSchedule.Response:
        response.schedule = self._schedule
        return response

    def _publish_diagnostics(self) -> None:
        name = self.get_name()
        statuses = [status(f'{name}: {r.name}', r.level, r.message, values=r.values) for r in self._planner.report()]
        statuses.append(status(f'{name}: schedule', Level.OK, f'revision {self._schedule.revision}, '
                               f'{len(self._schedule.tasks)} tasks'))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=statuses))


def main(args: list[str] | None = None) -> int:
    return run(MaintenanceNode, 'maintenance_planner', args)
