"""Health monitor node: aggregates diagnostics into diagnostics_agg and a heartbeat; a status
with ``finished: true`` (twin_core.status.FINISHED) retires its component.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_bringup.health import HealthConfig, HealthTracker, SummaryLog
from twin_core.levels import Level
from twin_core.stamps import to_seconds
from twin_core.status import FINISHED
from twin_ros.common import declare_config, run, status, status_level


class HealthMonitor(Node):
    """Subscribes diagnostics, publishes diagnostics_agg and its own heartbeat status."""

    def __init__(self) -> None:
        super().__init__('health_monitor')
        self._config = declare_config(self, HealthConfig)
        self._tracker = HealthTracker(self._config, started=self._now())
        self._status_name = f'{self.get_name()}: heartbeat'
        self._beats = 0
        self._summary_log = SummaryLog(self._config.log_period)
        self._aggregate = self.create_publisher(DiagnosticArray, 'diagnostics_agg', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(DiagnosticArray, 'diagnostics', self._on_diagnostics, 100)
        self.create_timer(1.0 / self._config.publish_rate_hz, self._publish)

    def _now(self) -> float:
        return to_seconds(self.get_clock().now().nanoseconds)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        now = self._now()
        for entry in message.status:
            if entry.name != self._status_name:
                finished = any(kv.key == FINISHED and kv.value == 'true' for kv in entry.values)
                self._tracker.report(entry.name, status_level(entry), entry.message, now, finished)

    def _publish(self) -> None:
        now = self._now()
        stamp = self.get_clock().now().to_msg()
        components = self._tracker.components(now)
        self._aggregate.publish(DiagnosticArray(header=Header(stamp=stamp), status=[
            status(c.name, c.level, c.message,
                   values={'age_s': 'never' if c.age is None else round(c.age, 3)})
            for c in components]))
        overall = self._tracker.overall(now)
        if self._summary_log.due(overall.level, now):
            self._log_summary(overall.level, f'{len(components)} components; {overall.message}')
        self._beats += 1
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=stamp), status=[
            status(self._status_name, overall.level, overall.message, values={
                'beat': self._beats, 'components': len(components),
                **{level.name: sum(c.level == level for c in components) for level in Level}})]))

    def _log_summary(self, level: Level, text: str) -> None:
        if level == Level.OK:  # rclpy wants one severity per logging call site
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(HealthMonitor, 'health_monitor', args)
