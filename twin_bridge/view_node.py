"""twin_view node: the twin's topics, live, for Foxglove or Lichtblick over a WebSocket.

Started by ``view:=true`` / ``twin_launch --view``, or alone::

    ros2 run twin_bringup twin_view --ros-args --params-file config/view.yaml

then in Foxglove or Lichtblick: Open connection, Foxglove WebSocket, ``ws://<host>:8765``.
"""
from __future__ import annotations

import os
from functools import partial

import foxglove
from foxglove import Channel, Schema
from foxglove.channels import FrameTransformsChannel
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from twin_bag.config import RELIABLE_DEPTH
from twin_bridge.view import (
    CDR,
    DESCRIPTION_TYPE,
    ROS2_SCHEMA_ENCODING,
    TRANSFORMS_TOPIC,
    ViewConfig,
    joint_transforms,
    schemas,
    transforms_message,
)
from twin_core.config import ConfigError
from twin_core.kinematics import ArmKinematics
from twin_core.urdf import urdf_file
from twin_ros.common import declare_config, qos_profile, run
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
            definitions = schemas([*config.types, DESCRIPTION_TYPE],
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
        super().destroy_node()


def _channel(topic: str, type_name: str, definitions: dict[str, bytes]) -> Channel:
    return Channel(topic, message_encoding=CDR,
                   schema=Schema(name=type_name, encoding=ROS2_SCHEMA_ENCODING, data=definitions[type_name]))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(ViewNode, 'twin_view', args)
