"""MQTT bridge cost: ROS -> mqtt_bridge -> Mosquitto -> mqtt_bridge -> ROS against raw
paho -> Mosquitto -> paho, in the same run, on loopback.

burst: ``--count`` messages published as fast as possible; msg/s = count / (last arrival - first
send). paced: ``--rate`` msg/s for ``--count`` messages; latency = arrival - send (p50/p99).
Bridge payloads: std_msgs/Header as JSON (~120 B) or framed CDR; raw: a 120 B payload, same QoS.
restart: a paced stream during which the broker is stopped for 1 s and started again (it
persists sessions); lost/duplicated as seen by the application (the ROS subscriber, or the paho
subscriber for raw). Mosquitto runs with ``set_tcp_nodelay true`` and persistence.
Run: ``python bench/bench_mqtt.py [--count 2000] [--rate 200]``.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import rclpy
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from std_msgs.msg import Header

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from harness import NodeProcess  # noqa: E402
from mqtt_fixtures import Mosquitto, bridge_params  # noqa: E402

Arrivals = list[tuple[int, int]]  # (sequence number, latency ns)


def paced(count: int, rate: float | None, send: Callable[[int], None]) -> None:
    """Call ``send(i)`` for i < count, at ``rate`` per second (None: as fast as possible)."""
    start = time.perf_counter()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        send(i)


def wait_count(arrivals: Arrivals, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(arrivals) < count and time.monotonic() < deadline:
        time.sleep(0.01)


class RawLoop:
    """paho publisher and subscriber (persistent sessions, QoS 1) through the broker."""

    def __init__(self, port: int) -> None:
        self.arrivals: Arrivals = []
        self.subscriber = self._client('bench-raw-sub', port)
        self.subscriber.on_message = self._on_message
        self.subscriber.subscribe('bench/raw', qos=1)
        self.publisher = self._client('bench-raw-pub', port)
        time.sleep(0.3)

    @staticmethod
    def _client(client_id: str, port: int) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                             protocol=MQTTProtocolVersion.MQTTv311)
        client.max_inflight_messages_set(20)
        client.reconnect_delay_set(0.2, 1.0)
        client.connect('127.0.0.1', port)
        client.loop_start()
        return client

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        sequence, stamp = message.payload[:40].split(b' ')[:2]
        self.arrivals.append((int(sequence), time.monotonic_ns() - int(stamp)))

    def send(self, i: int) -> None:
        self.publisher.publish('bench/raw', f'{i} {time.monotonic_ns()} '.encode().ljust(120, b'x'), qos=1)

    def close(self) -> None:
        for client in (self.publisher, self.subscriber):
            client.disconnect()
            client.loop_stop()


class BridgeLoop:
    """A ROS publisher and subscriber in this process, the mqtt_bridge node in its own."""

    def __init__(self, port: int, directory: Path, payload: str, depth: int) -> None:
        self.arrivals: Arrivals = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('bench_mqtt', context=self.context)
        params = bridge_params(directory / f'bridge_{payload}.yaml', port, directory / f'outbox_{payload}', {
            'client': {'client_id': f'bench_{payload}', 'reconnect_min': 0.2, 'reconnect_max': 1.0},
            'ros_to_mqtt': {'ros_topics': ['/bench/in'], 'types': ['std_msgs/msg/Header'],
                            'mqtt_topics': ['bench/loop'], 'qos': [1], 'retain': [False], 'payloads': [payload]},
            'mqtt_to_ros': {'mqtt_topics': ['bench/loop'], 'ros_topics': ['/bench/out'],
                            'types': ['std_msgs/msg/Header'], 'qos': [1], 'payloads': [payload], 'limits': ['']},
            'ros_queue_depth': depth})
        self.bridge = NodeProcess(['mqtt_bridge', '--ros-args', '--params-file', str(params)],
                                  dict(os.environ), directory / f'bridge_{payload}.log')
        qos = QoSProfile(depth=depth)
        self.publisher = self.node.create_publisher(Header, '/bench/in', qos)
        self.node.create_subscription(Header, '/bench/out', self._on_message, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20.0
        while self.publisher.get_subscription_count() == 0 or self.node.count_publishers('/bench/out') == 0:
            assert time.monotonic() < deadline, self.bridge.output()
            time.sleep(0.05)
        time.sleep(1.0)  # connected to the broker

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (rclpy.executors.ExternalShutdownException, rclpy.executors.ShutdownException):
            pass

    def _on_message(self, message: Header) -> None:
        sent = message.stamp.sec * 1_000_000_000 + message.stamp.nanosec
        self.arrivals.append((int(message.frame_id), time.monotonic_ns() - sent))

    def send(self, i: int) -> None:
        now = time.monotonic_ns()
        message = Header(frame_id=str(i))
        message.stamp.sec, message.stamp.nanosec = divmod(now, 1_000_000_000)
        self.publisher.publish(message)

    def close(self) -> None:
        self.bridge.stop()
        self.context.try_shutdown()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


def measure(loop: RawLoop | BridgeLoop, count: int, rate: float) -> tuple[float, float, float]:
    """(burst msg/s, paced p50 ms, paced p99 ms)."""
    start = time.monotonic_ns()
    paced(count, None, loop.send)
    wait_count(loop.arrivals, count, 120.0)
    burst = len(loop.arrivals) / ((time.monotonic_ns() - start) * 1e-9) if len(loop.arrivals) >= count else 0.0
    time.sleep(0.5)
    loop.arrivals.clear()
    paced(count, rate, loop.send)
    wait_count(loop.arrivals, count, 60.0)
    latencies = np.array([latency for _, latency in loop.arrivals]) * 1e-6
    return burst, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def restart_run(loop: RawLoop | BridgeLoop, broker: Mosquitto, count: int, rate: float) -> tuple[int, int]:
    """(lost, duplicated) across a broker restart in the middle of a paced stream."""
    time.sleep(0.5)
    loop.arrivals.clear()
    sender = threading.Thread(target=paced, args=(count, rate, loop.send))
    sender.start()
    time.sleep(count / rate / 3)
    broker.restart(down_for=1.0)
    sender.join()
    wait_count(loop.arrivals, count, 60.0)
    time.sleep(1.0)
    received = [sequence for sequence, _ in loop.arrivals]
    return count - len(set(received)), len(received) - len(set(received))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=2000, help='messages per measurement')
    parser.add_argument('--rate', type=float, default=200.0, help='paced rate, msg/s')
    options = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 101))
    directory = Path(tempfile.mkdtemp(prefix='twin-bench-mqtt-'))
    directory.chmod(0o755)
    (directory / 'broker').mkdir(mode=0o755)
    broker = Mosquitto(directory / 'broker')
    broker.start()
    print(f'{options.count} messages per run, QoS 1, paced at {options.rate:g} msg/s, Mosquitto on 127.0.0.1')
    print(f'{"path":<34}{"burst msg/s":>12}{"p50 ms":>9}{"p99 ms":>9}{"restart lost":>14}{"dup":>6}')
    try:
        for name, make in (('raw paho -> mosquitto -> paho', lambda: RawLoop(broker.port)),
                           ('ROS -> bridge (json) -> ROS', lambda: BridgeLoop(broker.port, directory, 'json',
                                                                             options.count + 1000)),
                           ('ROS -> bridge (cdr) -> ROS', lambda: BridgeLoop(broker.port, directory, 'cdr',
                                                                            options.count + 1000))):
            loop = make()
            try:
                burst, p50, p99 = measure(loop, options.count, options.rate)
                lost, duplicated = restart_run(loop, broker, options.count, options.rate)
            finally:
                loop.close()
            print(f'{name:<34}{burst:>12.0f}{p50:>9.2f}{p99:>9.2f}{lost:>14}{duplicated:>6}')
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    main()
