"""Cloud uploader node: records topics as raw CDR into spool segments that a background
thread uploads to S3; diagnostics reports the spool and the uploads.
"""
from __future__ import annotations

import importlib
import os
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_bag.writer import load_typestore
from twin_bridge.cloud_config import CloudUploaderConfig
from twin_bridge.cloud_health import CloudHealth
from twin_bridge.spool import Spool
from twin_bridge.uploader import Uploader
from twin_core.config import ConfigError
from twin_ros.common import declare_config, qos_profile, run, status, supervised_workers

RELIABLE_DEPTH = 1000


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
        self._health = CloudHealth(config.spool)
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
        spool = self._health.spool(self._spool.stats(), time.monotonic())
        upload, new_error = self._health.upload(self._uploader.stats())
        if new_error:
            self.get_logger().error(f'upload failed, retrying with backoff: {upload.message}')
        name = self.get_name()
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()),
            status=[status(f'{name}: {r.name}', r.level, r.message, values=r.values) for r in (spool, upload)]))

    def destroy_node(self) -> None:
        """Finalize the open segment and stop the upload thread; pending segments stay."""
        self._spool.close()
        self._uploader.stop()
        self._workers.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(CloudUploader, 'cloud_uploader', args)
