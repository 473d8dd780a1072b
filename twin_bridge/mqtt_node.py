"""mqtt_bridge node: configured ROS topics to MQTT and validated MQTT payloads to ROS topics."""
from __future__ import annotations

from functools import partial
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_msgs.msg import Header

from twin_bridge.mqtt_config import MqttBridgeConfig
from twin_bridge.mqtt_core import MqttBridge
from twin_core.config import ConfigError
from twin_core.dead_letters import DeadLetters
from twin_ros.common import declare_config, run, status, supervised_workers
from twin_ros.messages import message_class


class MqttBridgeNode(Node):
    """Subscribes the outbound topics (raw bytes for CDR mappings), publishes the inbound ones."""

    def __init__(self) -> None:
        super().__init__('mqtt_bridge')
        self.config = declare_config(self, MqttBridgeConfig)
        depth = self.config.ros_queue_depth
        self._workers = supervised_workers(self)
        self._dead_letters = DeadLetters.for_node(self.get_fully_qualified_name())
        self._core = MqttBridge(self.config, self._deliver, deserialize_message, self._on_state,
                                self._workers, self._dead_letters)
        self._publishers = [self.create_publisher(_type(m.type_name), m.ros_topic, depth)
                            for m in self._core.inbound]
        for index, mapping in enumerate(self._core.outbound):
            self.create_subscription(_type(mapping.type_name), mapping.ros_topic,
                                     partial(self._core.send, index), depth,
                                     raw=mapping.payload == 'cdr')
        self._status_name = f'{self.get_name()}: mqtt {self.config.broker.host}:{self.config.broker.port}'
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_timer(1.0 / self.config.diagnostics_rate_hz, self._publish_diagnostics)
        self._core.start()

    def _deliver(self, index: int, message: Any) -> None:
        """Publish a validated inbound message or its CDR bytes (paho's thread); a racing shutdown
        is not an error.
        """
        if self.context.ok():
            self._publishers[index].publish(message)

    def _on_state(self, connected: bool, detail: str) -> None:
        if connected:  # rclpy wants one severity per logging call site
            self.get_logger().info(detail)
        else:
            self.get_logger().error(detail)

    def _publish_diagnostics(self) -> None:
        level, message, values = self._core.health()
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()),
            status=[status(self._status_name, level, message, self.config.client.client_id, values)]))

    def destroy_node(self) -> None:
        self._core.stop()
        self._workers.stop()
        self._dead_letters.close()
        super().destroy_node()


def _type(type_name: str) -> type:
    try:
        return message_class(type_name)
    except LookupError as error:
        raise ConfigError(str(error)) from None


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(MqttBridgeNode, 'mqtt_bridge', args)
