"""Anomaly detector node: twin/synced_frame in, twin/anomalies and diagnostics out."""
from __future__ import annotations

import time
from collections import deque

import numpy as np
import torch
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_anomaly.anomaly import AnomalyEvent, AnomalyModel, OnlineDetector
from twin_anomaly.config import AnomalyConfig
from twin_core.channels import frame_values, stack_rows
from twin_core.config import ConfigError
from twin_core.paths import config_dir
from twin_interfaces.msg import AnomalyEvent as AnomalyEventMsg
from twin_interfaces.msg import SyncedFrame
from twin_ros.common import LEVELS, declare_config, run, status

LATENCY_HISTORY = 1000
CELL_STATUS = 'cell/status'
MIN_SPEED_OVERRIDE = 0.05  # below this the cell is all but still


def cell_at_rest(frame: SyncedFrame) -> bool:
    """True while the cell reports a stop or a speed override near zero.

    The models describe a cell in production: in a commanded standstill repeated encoder values
    and zero velocities look like faults, so only dropouts raise alarms then (alarms still clear).
    """
    for sample in frame.samples:
        if sample.topic == CELL_STATUS and sample.names:
            values = dict(zip(sample.names, sample.values))
            return values.get('stopped', 0.0) > 0.5 or values.get('speed_override', 1.0) < MIN_SPEED_OVERRIDE
    return False


def stamp(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class AnomalyNode(Node):
    """Scores frames in micro-batches and publishes alarm transitions as events."""

    def __init__(self) -> None:
        super().__init__('anomaly_detector')
        self._config = config = declare_config(self, AnomalyConfig)
        path = config_dir() / config.model
        if not (path / 'model.json').is_file():
            raise ConfigError(f'anomaly_detector.model: no model in {path} (fit one with `twin_anomaly fit`)')
        self._model = AnomalyModel.load(path)
        self._detector = OnlineDetector(self._model)
        self._pending: list[tuple[float, dict[str, float], float, bool]] = []
        self._latency: deque[float] = deque(maxlen=LATENCY_HISTORY)
        self._frames = self._events = self._suppressed = 0
        self._last: dict[str, AnomalyEvent] = {}
        self._events_publisher = self.create_publisher(AnomalyEventMsg, 'twin/anomalies', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(SyncedFrame, 'twin/synced_frame', self._on_frame, 10)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)

    def _on_frame(self, frame: SyncedFrame) -> None:
        seconds, values = frame_values(frame)
        self._pending.append((seconds, values, time.perf_counter(), cell_at_rest(frame)))
        if len(self._pending) >= self._config.batch_frames:
            self._score()

    def _score(self) -> None:
        pending, self._pending = self._pending, []
        times = np.array([p[0] for p in pending])
        _, events = self._detector.process(times, stack_rows(self._model.names, (p[1] for p in pending)))
        done = time.perf_counter()
        self._latency.extend(done - p[2] for p in pending)
        self._frames += len(pending)
        resting = {p[0] for p in pending if p[3]}
        for event in events:
            if event.active and event.stamp in resting and event.method != 'missing':
                self._suppressed += 1
                continue
            if event.active:
                self._events += 1
                self._last[event.sensor] = event
            self._events_publisher.publish(AnomalyEventMsg(
                header=Header(stamp=stamp(event.stamp), frame_id='base_link'), sensor=event.sensor,
                method=event.method, score=float(event.score), threshold=event.threshold,
                severity=LEVELS[event.severity][0], description=event.description, active=event.active))

    def _publish_diagnostics(self) -> None:
        name = self.get_name()
        latency = np.array(self._latency) * 1e3 if self._latency else np.zeros(1)
        statuses = [status(f'{name}: detector', 'OK', f'{self._frames} frames, {self._events} alarms', values={
            'frames': self._frames, 'alarms': self._events, 'suppressed_at_rest': self._suppressed,
            'decision_latency_ms_p50': float(np.median(latency)),
            'decision_latency_ms_max': float(latency.max())})]
        active = self._detector.active
        alarmed = {self._model.score_names[j].rsplit('/', 1)[0] for j in np.flatnonzero(active)}
        for sensor, event in sorted(self._last.items()):
            level = event.severity if sensor in alarmed else 'OK'
            statuses.append(status(f'{name}: {sensor}', level, event.description if sensor in alarmed else 'normal',
                                   values={'score': float(event.score), 'threshold': event.threshold}))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=statuses))


def main(args: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    return run(AnomalyNode, 'anomaly_detector', args)
