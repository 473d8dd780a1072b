"""Anomaly detector node: twin/synced_frame (the models) and twin/state (tracking alarms) in,
twin/anomalies and diagnostics out.
"""
from __future__ import annotations

import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_anomaly.alarms import AlarmStream, LateInputs, at_rest
from twin_anomaly.anomaly import AnomalyEvent, AnomalyModel
from twin_anomaly.config import AnomalyConfig
from twin_anomaly.tracking import TrackingAlarms
from twin_core.cdr import SyncedFrameWire
from twin_core.channels import frame_values
from twin_core.config import ConfigError
from twin_core.paths import config_dir
from twin_core.stamps import from_msg, from_seconds, to_seconds
from twin_interfaces.msg import AnomalyEvent as AnomalyEventMsg
from twin_interfaces.msg import TwinState
from twin_ros.common import ANALYTICS_BATCH_PERIOD_NS, declare_config, run, status, subscribe_synced_frames
from twin_ros.stamps import to_msg

CELL_STATUS = 'cell/status'


def cell_status(frame: SyncedFrameWire) -> dict[str, float]:
    """The frame's cell status values by name; empty without one."""
    for sample in frame.samples:
        if sample.topic == CELL_STATUS and sample.names:
            return dict(zip(sample.names, sample.values))
    return {}


class AnomalyNode(Node):
    """Scores frames in micro-batches and publishes alarm transitions as events."""

    def __init__(self) -> None:
        super().__init__('anomaly_detector')
        torch.set_num_threads(1)  # small batches: threads would only add overhead (and in a container, for all)
        config = declare_config(self, AnomalyConfig)
        self.spin_batch_period_ns = ANALYTICS_BATCH_PERIOD_NS
        path = config_dir() / config.model
        if not (path / 'model.json').is_file():
            raise ConfigError(f'anomaly_detector.model: no model in {path} (fit one with `twin_anomaly fit`)')
        self._alarms = AlarmStream(AnomalyModel.load(path), config.batch_frames)
        self._late_inputs = LateInputs()
        self._events_publisher = self.create_publisher(AnomalyEventMsg, 'twin/anomalies', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        subscribe_synced_frames(self, self._on_frame)
        self._tracking = TrackingAlarms(config.tracking)
        if config.tracking.enabled:
            self.create_subscription(TwinState, 'twin/state', self._on_state, 10)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)

    def _on_frame(self, frame: SyncedFrameWire) -> None:
        late = self._late_inputs.check((sample.topic, sample.quality) for sample in frame.samples)
        self._publish(self._alarms.add(*frame_values(frame), at_rest(cell_status(frame)), bool(late)))

    def _on_state(self, state: TwinState) -> None:
        self._publish(self._tracking.update(to_seconds(from_msg(state.header.stamp)), state.joint_names,
                                            state.tracking_error))

    def _publish(self, events: list[AnomalyEvent]) -> None:
        for event in events:
            self._events_publisher.publish(AnomalyEventMsg(
                header=Header(stamp=to_msg(from_seconds(event.stamp)), frame_id='base_link'), sensor=event.sensor,
                method=event.method, score=float(event.score), threshold=event.threshold,
                severity=int(event.severity), description=event.description, active=event.active))

    def _publish_diagnostics(self) -> None:
        name = self.get_name()
        reports = self._alarms.report() + ([self._tracking.report()] if self._tracking.config.enabled else [])
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[
            status(f'{name}: {r.name}', r.level, r.message, values=r.values) for r in reports]))


def main(args: list[str] | None = None) -> int:
    return run(AnomalyNode, 'anomaly_detector', args)
