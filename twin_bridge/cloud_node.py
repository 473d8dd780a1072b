"""Cloud uploader node: records topics as raw CDR into spool segments that a background
thread uploads to S3; diagnostics reports the spool and the uploads.
"""
from __future__ import annotations

import importlib
import os
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from std_msgs.msg import Header

from twin_bag.writer import load_typestore
from twin_bridge.cloud_config import CloudUploaderConfig
from twin_bridge.spool import MB, Spool
from twin_bridge.uploader import Uploader
from twin_core.config import ConfigError
from twin_core.levels import Level
from twin_ros.common import declare_config, qos_profile, run, status, supervised_workers

RELIABLE_DEPTH = 1000
ALERT_HOLD_S = 60.0


def message_class(type_name: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``."""
    package, _, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class CloudUploader(Node):
    """Subscribes the configured topics (raw), spools them and uploads segments to S3."""

    def __init__(self) -> None:
        super().__init__('cloud_uploader')
        self._config = config = declare_config(self, CloudUploaderConfig)
        try:
            typestore = load_typestore(config.types,
                                       os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep))
            classes = [message_class(name) for name in config.types]
        except (KeyError, ImportError, AttributeError) as error:
            raise ConfigError(f'{self.get_name()}.types: {error}') from None
        self._spool = Spool(config.spool, typestore, on_finalized=self._on_finalized)
        self._workers = supervised_workers(self)
        self._uploader = Uploader(self._spool, config.s3, config.robot, self._workers)
        self._policy_hits = 0
        self._alert_until = 0.0
        self._logged_error = ''
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        for topic, type_name, cls, qos in zip(config.topics, config.types, classes, config.qos):
            self.create_subscription(
                cls, topic, partial(self._on_message, topic, type_name),
                qos_profile(qos, RELIABLE_DEPTH), raw=True)
        self.create_timer(min(1.0, config.spool.segment_max_s / 4.0), self._on_tick)
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)
        self._uploader.start()
        self.get_logger().info(
            f'recording {len(config.topics)} topics into {self._spool.directory} '
            f'({len(self._spool.pending())} segments pending); uploading to '
            f's3://{config.s3.bucket}/{config.s3.prefix} via {config.s3.endpoint_url or "AWS"}')

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_message(self, topic: str, type_name: str, data: bytes) -> None:
        self._spool.write(topic, type_name, data, self._now_ns())

    def _on_finalized(self) -> None:
        self._uploader.notify()

    def _on_tick(self) -> None:
        self._spool.tick(self._now_ns())

    def _publish_diagnostics(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=stamp), status=[self._spool_status(), self._upload_status()]))

    def _spool_status(self) -> DiagnosticStatus:
        stats, spool = self._spool.stats(), self._config.spool
        if stats.policy_hits > self._policy_hits:
            self._policy_hits = stats.policy_hits
            self._alert_until = time.monotonic() + ALERT_HOLD_S
        if stats.disk_full:
            level, message = Level.ERROR, stats.last_error
        elif time.monotonic() < self._alert_until:
            level, message = Level.WARN, f'spool reached {spool.max_mb} MB: {spool.policy}'
        else:
            level, message = Level.OK, 'recording'
        return status(f'{self.get_name()}: spool', level, message, values={
            'pending_segments': stats.pending_segments,
            'spool_mb': (stats.pending_bytes + stats.open_bytes) / MB, 'max_mb': spool.max_mb,
            'messages': stats.messages, 'dropped_messages': stats.dropped_messages,
            'dropped_segments': stats.dropped_segments, 'policy_hits': stats.policy_hits,
            'abandoned_segments': stats.abandoned_segments, 'last_error': stats.last_error})

    def _upload_status(self) -> DiagnosticStatus:
        stats = self._uploader.stats()
        if stats.failing and stats.last_error != self._logged_error:
            self._logged_error = stats.last_error
            self.get_logger().error(f'upload failed, retrying with backoff: {stats.last_error}')
        level = (Level.ERROR if stats.needs_operator else Level.WARN) if stats.failing else Level.OK
        return status(f'{self.get_name()}: upload', level,
                      stats.last_error if stats.failing else 'uploading', values={
                          'uploaded_segments': stats.uploaded_segments,
                          'uploaded_mb': stats.uploaded_bytes / MB, 'failures': stats.failures,
                          'retry_in_s': stats.retry_in, 'last_error': stats.last_error})

    def destroy_node(self) -> None:
        """Finalize the open segment and stop the upload thread; pending segments stay."""
        self._spool.close()
        self._uploader.stop()
        self._workers.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(CloudUploader, 'cloud_uploader', args)
