"""MQTT bridge cost: ROS -> mqtt_bridge -> Mosquitto -> mqtt_bridge -> ROS against raw
paho -> Mosquitto -> paho, in the same run, on loopback.

burst: ``--count`` messages published as fast as possible, ``--bursts`` times; msg/s = count /
(last arrival - first send), the median burst is printed with the CPU time each process used
per message in it (bench: this process, the ROS publisher and subscriber or the paho clients;
bridge: the mqtt_bridge process; broker: Mosquitto). paced: ``--rate`` msg/s for ``--count``
messages; latency = arrival - send (p50/p99).
Bridge payloads: std_msgs/Header as JSON (~120 B) or framed CDR; raw: a 120 B payload. Both
paths use QoS 1, persistent sessions, the same MQTT protocol (``--protocol``) and the same
``--max-inflight``; the bridge runs with its durable outbox. The bench's ROS side spins the
project's executor (twin_ros.executor), as the bridge does.
restart: a paced stream during which the broker is stopped for 1 s and started again (it
persists sessions); lost/duplicated as seen by the application (the ROS subscriber, or the paho
subscriber for raw). Mosquitto runs with ``set_tcp_nodelay true`` and persistence.
floor: the same ROS ends through ``bench/mqtt_relay.py``, one process that only takes the bytes
from rclpy, hands them to paho and publishes what paho receives (no outbox, no format, no checks;
no restart run: it keeps nothing): the bridge's ceiling in Python, beside raw paho.
Run: ``python bench/bench_mqtt.py [--count 5000] [--bursts 3] [--rate 200] [--protocol v311]``.
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
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psutil
import rclpy
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rclpy.qos import QoSProfile
from std_msgs.msg import Header

from twin_ros.executor import make_executor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from harness import NodeProcess  # noqa: E402
from mqtt_fixtures import Mosquitto, bridge_params  # noqa: E402

Arrivals = list[tuple[int, int]]  # (sequence number, latency ns)
FLOOR = 'ROS -> rclpy+paho relay -> ROS'  # what any Python bridge of one process costs at least


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


@dataclass(frozen=True)
class Link:
    """MQTT settings shared by the raw clients and the bridge."""

    port: int
    protocol: str  # 'v311' or 'v5'
    max_inflight: int


class RawLoop:
    """paho publisher and subscriber (persistent sessions, QoS 1) through the broker."""

    def __init__(self, link: Link) -> None:
        self.arrivals: Arrivals = []
        self.subscriber = self._client('bench-raw-sub', link)
        self.subscriber.on_message = self._on_message
        self.subscriber.subscribe('bench/raw', qos=1)
        self.publisher = self._client('bench-raw-pub', link)
        self.others: list[psutil.Process] = []  # the paho clients run in this process
        time.sleep(0.3)

    @staticmethod
    def _client(client_id: str, link: Link) -> mqtt.Client:
        if link.protocol == 'v5':
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                 protocol=MQTTProtocolVersion.MQTTv5)
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
            connect = partial(client.connect, clean_start=False, properties=properties)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                 protocol=MQTTProtocolVersion.MQTTv311)
            connect = client.connect
        client.max_inflight_messages_set(link.max_inflight)
        client.reconnect_delay_set(0.2, 1.0)
        connect('127.0.0.1', link.port)
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


def bridge_command(link: Link, directory: Path, payload: str, depth: int) -> list[str]:
    """mqtt_bridge with its durable outbox, /bench/in -> bench/loop -> /bench/out in ``payload``."""
    params = bridge_params(directory / f'bridge_{payload}.yaml', link.port, directory / f'outbox_{payload}', {
        'client': {'client_id': f'bench_{payload}', 'reconnect_min': 0.2, 'reconnect_max': 1.0,
                   'protocol': link.protocol, 'max_inflight': link.max_inflight},
        'ros_to_mqtt': {'ros_topics': ['/bench/in'], 'types': ['std_msgs/msg/Header'],
                        'mqtt_topics': ['bench/loop'], 'qos': [1], 'retain': [False], 'payloads': [payload]},
        'mqtt_to_ros': {'mqtt_topics': ['bench/loop'], 'ros_topics': ['/bench/out'],
                        'types': ['std_msgs/msg/Header'], 'qos': [1], 'payloads': [payload], 'limits': ['']},
        'ros_queue_depth': depth})
    return ['mqtt_bridge', '--ros-args', '--params-file', str(params)]


def relay_command(link: Link, depth: int) -> list[str]:
    """The floor: rclpy and paho relaying bytes with nothing else (bench/mqtt_relay.py)."""
    return [sys.executable, str(Path(__file__).with_name('mqtt_relay.py')), str(link.port), link.protocol,
            str(link.max_inflight), str(depth)]


class BridgeLoop:
    """A ROS publisher and subscriber in this process, the bridge (``command``) in its own."""

    def __init__(self, command: list[str], depth: int, log: Path) -> None:
        self.arrivals: Arrivals = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('bench_mqtt', context=self.context)
        self.bridge = NodeProcess(command, dict(os.environ), log)
        qos = QoSProfile(depth=depth)
        self.publisher = self.node.create_publisher(Header, '/bench/in', qos)
        self.node.create_subscription(Header, '/bench/out', self._on_message, qos)
        self.others = [psutil.Process(self.bridge.process.pid)]
        self.executor = make_executor(context=self.context)
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


@dataclass(frozen=True)
class Burst:
    """One burst: msg/s and CPU µs per message of this process, the bridge (if any) and the broker."""

    rate: float
    cpu_us: tuple[float, float | None, float]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def burst(loop: RawLoop | BridgeLoop, broker: psutil.Process, count: int) -> Burst:
    """``count`` messages as fast as possible (0 msg/s if some never arrive)."""
    loop.arrivals.clear()
    processes = [psutil.Process(), *loop.others, broker]
    cpu_before = [cpu_seconds(process) for process in processes]
    start = time.monotonic_ns()
    paced(count, None, loop.send)
    wait_count(loop.arrivals, count, 120.0)
    elapsed = (time.monotonic_ns() - start) * 1e-9
    cpu_us = [(cpu_seconds(process) - before) / count * 1e6 for process, before in zip(processes, cpu_before)]
    rate = len(loop.arrivals) / elapsed if len(loop.arrivals) >= count else 0.0
    return Burst(rate, (cpu_us[0], cpu_us[1] if loop.others else None, cpu_us[-1]))


def measure(loop: RawLoop | BridgeLoop, broker: psutil.Process, count: int, bursts: int,
            rate: float) -> tuple[Burst, float, float]:
    """(median burst, paced p50 ms, paced p99 ms)."""
    runs = []
    for _ in range(bursts):
        runs.append(burst(loop, broker, count))
        time.sleep(0.5)
    median = sorted(runs, key=lambda run: run.rate)[len(runs) // 2]
    loop.arrivals.clear()
    paced(count, rate, loop.send)
    wait_count(loop.arrivals, count, 60.0)
    latencies = np.array([latency for _, latency in loop.arrivals]) * 1e-6
    return median, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


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
    parser.add_argument('--count', type=int, default=5000, help='messages per measurement')
    parser.add_argument('--bursts', type=int, default=3, help='bursts per path (the median is printed)')
    parser.add_argument('--rate', type=float, default=200.0, help='paced rate, msg/s')
    parser.add_argument('--protocol', choices=('v311', 'v5'), default='v311', help='MQTT protocol of both paths')
    parser.add_argument('--max-inflight', type=int, default=20,
                        help='unacknowledged QoS 1 messages per client, both paths (paho default 20)')
    options = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 101))
    directory = Path(tempfile.mkdtemp(prefix='twin-bench-mqtt-'))
    directory.chmod(0o755)
    (directory / 'broker').mkdir(mode=0o755)
    broker = Mosquitto(directory / 'broker')
    broker.start()
    link = Link(broker.port, options.protocol, options.max_inflight)
    depth = options.count + 1000
    print(f'{options.count} messages per burst (median of {options.bursts}), QoS 1, MQTT {options.protocol}, '
          f'max_inflight {options.max_inflight}, paced at {options.rate:g} msg/s, Mosquitto on 127.0.0.1; '
          f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}')
    print(f'{"path":<32}{"burst msg/s":>12}{"% raw":>7}{"CPU µs/msg: bench":>19}{"bridge":>8}{"broker":>8}'
          f'{"p50 ms":>8}{"p99 ms":>8}{"restart lost":>14}{"dup":>5}')
    raw_rate = 0.0
    try:
        paths: list[tuple[str, Callable[[], RawLoop | BridgeLoop]]] = [
            ('raw paho -> mosquitto -> paho', lambda: RawLoop(link)),
            ('ROS -> bridge (json) -> ROS',
             lambda: BridgeLoop(bridge_command(link, directory, 'json', depth), depth, directory / 'json.log')),
            ('ROS -> bridge (cdr) -> ROS',
             lambda: BridgeLoop(bridge_command(link, directory, 'cdr', depth), depth, directory / 'cdr.log')),
            (FLOOR, lambda: BridgeLoop(relay_command(link, depth), depth, directory / 'relay.log'))]
        for name, make in paths:
            loop = make()
            try:
                median, p50, p99 = measure(loop, psutil.Process(broker.process.pid), options.count,
                                           options.bursts, options.rate)
                restart = restart_run(loop, broker, options.count, options.rate) if name != FLOOR else None
            finally:
                loop.close()
            raw_rate = raw_rate or median.rate
            bench_cpu, bridge_cpu, broker_cpu = median.cpu_us
            lost, duplicated = ('-', '-') if restart is None else restart
            print(f'{name:<32}{median.rate:>12.0f}{100 * median.rate / raw_rate:>7.0f}{bench_cpu:>19.0f}'
                  f'{"-" if bridge_cpu is None else f"{bridge_cpu:.0f}":>8}{broker_cpu:>8.0f}'
                  f'{p50:>8.2f}{p99:>8.2f}{lost:>14}{duplicated:>5}')
        print(f'load average {os.getloadavg()[0]:.2f} at the end')
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    main()
