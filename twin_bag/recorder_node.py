"""Recorder node: raw subscriptions to the configured topics, written to one MCAP bag.

    twin_record --out run1 --topics /scan:sensor_msgs/msg/LaserScan:sensor_data --duration 60
    ros2 run twin_bringup twin_record --ros-args --params-file my_topics.yaml  # parameters: RecorderConfig

Message times are receive times on the node's clock (``use_sim_time`` respected). At the end
of ``duration_s`` its last diagnostics status says ``finished: true`` (the health monitor then
forgets it rather than calling it STALE).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
from functools import partial
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosbags.rosbag2 import WriterError
from std_msgs.msg import Header

from twin_bag.config import RELIABLE_DEPTH, RecorderConfig, parse_topic
from twin_bag.recorder import Recording
from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_core.status import FINISHED
from twin_ros.common import declare_config, qos_profile, run_cli, status
from twin_ros.messages import message_class


class Recorder(Node):
    """Writes every message of the configured topics into the bag until stopped."""

    def __init__(self, overrides: list[Parameter] | None = None) -> None:
        super().__init__('twin_recorder', parameter_overrides=overrides or [])
        self._recording: Recording | None = None
        config = declare_config(self, RecorderConfig)
        # The bag keeps full names, so a robot's namespace is part of what it recorded.
        config = replace(config, topics=tuple(self.resolve_topic_name(t) for t in config.topics))
        try:
            classes = [message_class(name) for name in config.types]
            self._recording = recording = Recording(
                config, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep), self._now_ns())
        except (KeyError, LookupError) as error:
            raise ConfigError(f'{self.get_name()}.types: {error}') from None
        except WriterError as error:
            raise ConfigError(f'{self.get_name()}.output: {error}') from None
        for topic, cls, qos in zip(config.topics, classes, config.qos):
            self.create_subscription(cls, topic, partial(self._on_message, topic),
                                     qos_profile(qos, RELIABLE_DEPTH),
                                     raw=True)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)
        if config.duration_s:
            self.create_timer(config.duration_s, self._on_duration)
        self.get_logger().info(f'recording {len(config.topics)} topics into {recording.path}')

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_message(self, topic: str, data: bytes) -> None:
        if self._recording is not None:  # None once the bag is closed
            self._recording.write(topic, data, self._now_ns())

    def _on_duration(self) -> None:
        self.get_logger().info('duration reached')
        self._finish()
        rclpy.try_shutdown(context=self.context)

    def _publish_diagnostics(self, finished: bool = False) -> None:
        if self._recording is None:
            return
        counts = self._recording.counts
        last = {FINISHED: 'true'} if finished else {}
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()),
            status=[status(f'{self.get_name()}: bag', Level.OK, 'finished' if finished else 'recording',
                           values={'path': self._recording.path, 'messages': counts.total(),
                                   **counts, **last})]))

    def _finish(self) -> None:
        """Finish the bag (once) and, while the node can still publish, say so on diagnostics."""
        if self._recording is None:
            return
        if rclpy.ok(context=self.context):  # after a Ctrl-C the context is already down
            self._publish_diagnostics(finished=True)
        recording, self._recording = self._recording, None
        recording.close()
        self.get_logger().info(f'wrote {recording.counts.total()} messages to {recording.path}')

    def destroy_node(self) -> None:
        """Finish the bag (once: rclpy also calls this at shutdown), then leave the graph."""
        self._finish()
        super().destroy_node()


def cli_overrides(argv: list[str]) -> dict[str, Any]:
    """Parameters from ``--out DIR --topics /a:pkg/msg/T[:sensor_data] ... --duration S``."""
    parser = argparse.ArgumentParser(prog='twin_record', description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='bag directory to create')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC:TYPE[:sensor_data|latched]')
    parser.add_argument('--duration', type=float, help='seconds to record')
    parser.add_argument('--compression', choices=('zstd', 'none'))
    options = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if options.topics:
        try:
            specs = [parse_topic(spec) for spec in options.topics]
        except ValueError as error:
            parser.error(str(error))
        for key, values in zip(('topics', 'types', 'qos'), zip(*specs)):
            overrides[key] = list(values)
    for key, value in (('output', options.out), ('duration_s', options.duration),
                       ('compression', options.compression)):
        if value is not None:
            overrides[key] = value
    return overrides


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run_cli(Recorder, 'twin_recorder', cli_overrides, args)
