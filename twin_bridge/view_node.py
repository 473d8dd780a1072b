"""twin_view node: the twin's topics, live, for Foxglove or Lichtblick over a WebSocket.

Started by ``view:=true`` / ``twin_launch --view``, or alone::

    ros2 run twin_bringup twin_view --ros-args --params-file config/view.yaml

then in Foxglove or Lichtblick: Open connection, Foxglove WebSocket, ``ws://<host>:8765``; the
camera's newest image (where it is published) at ``http://<host>:8766/``.
"""
from __future__ import annotations

import os
from functools import partial

import foxglove
from foxglove import Channel, Schema
from foxglove.channels import FrameTransformsChannel
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import String

from twin_bag.config import RELIABLE_DEPTH
from twin_bridge.view import (
    CAMERA_TYPE,
    CDR,
    DESCRIPTION_TYPE,
    ROS2_SCHEMA_ENCODING,
    TRANSFORMS_TOPIC,
    Newest,
    ViewConfig,
    camera_page,
    is_jpeg,
    joint_transforms,
    schemas,
    transforms_message,
)
from twin_core.config import ConfigError
from twin_core.kinematics import ArmKinematics
from twin_core.mjpeg_server import MjpegServer
from twin_core.stamps import from_msg, to_seconds
from twin_core.urdf import urdf_file
from twin_ros.common import declare_config, qos_profile, run, supervised_workers
from twin_ros.messages import message_class


class ViewNode(Node):
    """Forwards each served topic's raw messages to the WebSocket server's channel of it."""

    def __init__(self) -> None:
        super().__init__('twin_view')
        config = declare_config(self, ViewConfig)
        urdf = urdf_file(config.urdf)
        if not urdf.is_file():
            raise ConfigError(f'{self.get_name()}.urdf: no such file: {urdf}')
        topics = [self.resolve_topic_name(t) for t in config.topics]
        try:
            classes = [message_class(name) for name in config.types]
            definitions = schemas([*config.types, DESCRIPTION_TYPE, CAMERA_TYPE],
                                  os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep))
        except (KeyError, LookupError) as error:
            raise ConfigError(f'{self.get_name()}.types: {error}') from None
        self._server = foxglove.start_server(name=self.get_fully_qualified_name(), host=config.host,
                                             port=config.port)
        self.port = self._server.port
        for topic, type_name, cls, qos in zip(topics, config.types, classes, config.qos):
            channel = _channel(topic, type_name, definitions)
            self.create_subscription(cls, topic, partial(self._forward, channel), qos_profile(qos, RELIABLE_DEPTH),
                                     raw=True)
        self._description_channel = _channel(self.resolve_topic_name('robot_description'), DESCRIPTION_TYPE,
                                             definitions)
        self._description = serialize_message(String(data=urdf.read_text()))
        self._send_description()
        self.create_timer(config.description_period_s, self._send_description)
        self._kinematics = ArmKinematics.from_urdf(urdf)
        self._frame_prefix = config.frame_prefix
        self._transform_period_ns = int(1e9 / config.transform_rate_hz)
        self._last_transforms_ns = 0
        self._transforms = FrameTransformsChannel(self.resolve_topic_name(TRANSFORMS_TOPIC))
        self.create_subscription(JointState, 'twin/joint_states', self._send_transforms, RELIABLE_DEPTH)
        self.get_logger().info(f'serving {len(topics) + 2} topics on ws://{config.host}:{self.port}')
        self._camera_server: MjpegServer | None = None
        if config.camera.enabled:
            self._start_camera(config, definitions)

    def _start_camera(self, config: ViewConfig, definitions: dict[str, bytes]) -> None:
        """The camera's newest image: kept as it comes, handed on at most camera.rate_hz."""
        topic = self.resolve_topic_name(config.camera.topic)
        self._newest = Newest()
        self._camera_channel = _channel(topic, CAMERA_TYPE, definitions)
        self._camera_server = MjpegServer(config.host, config.camera.http_port, supervised_workers(self),
                                          camera_page(self.get_fully_qualified_name(), config.camera.rate_hz))
        try:
            self._camera_server.open()
        except OSError as error:
            self._camera_server = None
            raise ConfigError(f'{self.get_name()}.camera.http_port: cannot listen on {config.host}:'
                              f'{config.camera.http_port}: {error.strerror}') from None
        self.camera_port = self._camera_server.address[1]
        self.create_subscription(CompressedImage, topic, self._newest.put, qos_profile_sensor_data, raw=True)
        self.create_timer(1.0 / config.camera.rate_hz, self._send_camera)
        self._refused_format = ''
        self.get_logger().info(f'serving {topic} at most {config.camera.rate_hz:g} Hz on '
                               f'http://{config.host}:{self.camera_port}/')

    def _send_camera(self) -> None:
        raw = self._newest.take()
        if raw is None or self._camera_server is None:
            return
        image = deserialize_message(raw, CompressedImage)
        if not is_jpeg(image.format):
            if image.format != self._refused_format:
                self._refused_format = image.format
                self.get_logger().warning(f'camera images of format {image.format!r} are not shown (JPEG only)')
            return
        self._camera_server.publish(bytes(image.data), to_seconds(from_msg(image.header.stamp)))
        self._camera_channel.log(raw, log_time=self._now_ns())

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _forward(self, channel: Channel, data: bytes) -> None:
        channel.log(data, log_time=self._now_ns())

    def _send_description(self) -> None:
        self._description_channel.log(self._description, log_time=self._now_ns())

    def _send_transforms(self, message: JointState) -> None:
        now = self._now_ns()
        if now - self._last_transforms_ns < self._transform_period_ns:
            return
        self._last_transforms_ns = now
        transforms = joint_transforms(self._kinematics, dict(zip(message.name, message.position)),
                                      self._frame_prefix)
        self._transforms.log(transforms_message(transforms, message.header.stamp.sec,
                                                message.header.stamp.nanosec), log_time=now)

    def destroy_node(self) -> None:
        server = getattr(self, '_server', None)
        if server is not None:
            server.stop()
        camera_server = getattr(self, '_camera_server', None)
        if camera_server is not None:
            camera_server.close()
        super().destroy_node()


def _channel(topic: str, type_name: str, definitions: dict[str, bytes]) -> Channel:
    return Channel(topic, message_encoding=CDR,
                   schema=Schema(name=type_name, encoding=ROS2_SCHEMA_ENCODING, data=definitions[type_name]))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(ViewNode, 'twin_view', args)
