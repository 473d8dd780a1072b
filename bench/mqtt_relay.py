"""The least a ROS <-> MQTT bridge in Python does per message, for bench_mqtt's floor row.

/bench/in (std_msgs/Header, taken as CDR bytes) -> paho QoS 1 -> bench/relay -> paho ->
/bench/out (the bytes published as they came): one rclpy node on the project's executor and one
paho client, in one process as mqtt_bridge. No outbox, no payload format, no validation, no
duplicate check: what is left is rclpy's and paho's own cost.
Run: ``python bench/mqtt_relay.py PORT v311|v5 MAX_INFLIGHT QUEUE_DEPTH`` (Ctrl-C stops it).
"""
from __future__ import annotations

import socket
import sys

import paho.mqtt.client as mqtt
import rclpy
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from rclpy.node import Node
from std_msgs.msg import Header

from twin_ros.executor import make_executor

TOPIC = 'bench/relay'


def on_connect(client: mqtt.Client, *_: object) -> None:
    """Subscribe; no Nagle delay on the connection that carries both directions (as mqtt_bridge)."""
    if isinstance(sock := client.socket(), socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.subscribe(TOPIC, qos=1)


def relay(port: int, protocol: str, max_inflight: int, depth: int) -> None:
    rclpy.init()
    node = Node('bench_mqtt_relay')
    v5 = protocol == 'v5'
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id='bench_relay', clean_session=None if v5 else True,
                         protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311)
    client.max_inflight_messages_set(max_inflight)
    client.on_connect = on_connect
    publisher = node.create_publisher(Header, '/bench/out', depth)
    client.on_message = lambda _client, _userdata, message: publisher.publish(message.payload)

    def forward(data: bytes) -> None:
        client.publish(TOPIC, data, qos=1)

    node.create_subscription(Header, '/bench/in', forward, depth, raw=True)
    client.connect('127.0.0.1', port)
    client.loop_start()
    executor = make_executor()
    executor.add_node(node)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    port, protocol, max_inflight, depth = sys.argv[1:5]
    relay(int(port), protocol, int(max_inflight), int(depth))
