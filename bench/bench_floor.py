"""The least the twin's topic traffic costs in rclpy: the default graph's topics, rates, sizes and
fan-out, published and taken as bytes by processes that do nothing else.

Each process of the default layout (drivers, core, analytics, actuation, health) is stood in for
by one process. A thread publishes its topics at their rates, what is due every 2 ms (as the IMU
driver does with its lines); the project's executor takes its subscriptions, one per subscribing
node as in the graph, into callbacks that do nothing. Sizes and fan-out were read from the running
graph (twin_launch with the simulator, a raw subscriber per topic); rates are bench_e2e's rated
ones (IMU 1 kHz, encoders 500 Hz, lidar 20 Hz, twin 100 Hz). The cheapest path is used throughout
(bytes, no message objects), so the result is a floor: what rclpy and Fast DDS cost for these
messages alone, under which no work of the twin's own can bring it. bench_e2e's "twin cores" is
the real thing.
``--layout composed`` stands in for the one-process layout (every node in one process).
Run: ``python bench/bench_floor.py [--layout graph|composed] [--warmup 5] [--duration 20]``.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROCESSES = ('drivers', 'core', 'analytics', 'actuation', 'health')
LAYOUTS = {'graph': [[process] for process in PROCESSES], 'composed': [list(PROCESSES)]}
PUBLISH_PERIOD_S = 0.002


@dataclass(frozen=True)
class Topic:
    name: str
    rate_hz: float
    size: int  # serialized bytes
    publisher: str  # process
    subscribers: tuple[str, ...] = ()  # one entry per subscribing node (a process may hold several)
    reliable: bool = True


TRAFFIC = (
    Topic('/imu/data', 1000, 324, 'drivers', ('core',), reliable=False),
    Topic('/encoders/joint_states', 500, 188, 'drivers', ('core', 'core', 'actuation'), reliable=False),
    Topic('/scan', 20, 1500, 'drivers', ('core',), reliable=False),
    *(Topic(f'/motors/joint_{j}/temperature', 10, 52, 'drivers', ('core',), reliable=False) for j in range(1, 5)),
    Topic('/cell/status', 10, 48, 'drivers', ('core',), reliable=False),
    Topic('/plan/desired_joint_states', 100, 152, 'drivers', ('core', 'actuation'), reliable=False),
    Topic('/plan/joint_trajectory', 10, 976, 'drivers', ('analytics',)),
    Topic('/twin/synced_frame', 100, 4400, 'core', ('core', 'analytics', 'analytics')),
    Topic('/twin/state', 100, 908, 'core', ('actuation', 'analytics')),
    Topic('/twin/joint_states', 100, 196, 'core', ('analytics',), reliable=False),
    Topic('/twin/live/joint_states', 500, 196, 'core', reliable=False),
    Topic('/twin/end_effector_pose', 100, 84, 'core', reliable=False),
    Topic('/twin/markers', 5, 3937, 'core'),
    Topic('/twin/anomalies', 3, 123, 'analytics', ('core', 'actuation', 'analytics')),
    Topic('/twin/predicted_trajectory', 1, 1423, 'analytics', ('core',)),
    Topic('/twin/predicted_trajectory_std', 1, 1423, 'analytics', ('core',)),
    Topic('/twin/predicted_markers', 1, 3380, 'core'),
    Topic('/twin/prediction_info', 1, 64, 'analytics'),
    Topic('/diagnostics_agg', 1, 5157, 'health'),
)
DIAGNOSTICS_HZ = {'drivers': 10, 'core': 2, 'analytics': 4, 'actuation': 1, 'health': 1}  # 1 Hz per publisher


def traffic() -> list[Topic]:
    """The table plus each process's /diagnostics (its own topic here, so that counts stay per sender)."""
    return [*TRAFFIC, *(Topic(f'/diagnostics/{process}', hz, 728, process, ('health',))
                        for process, hz in DIAGNOSTICS_HZ.items())]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stand_in(processes: list[str], warmup: float, duration: float) -> None:
    """Publish and take the share of the traffic of ``processes`` (those of the graph this process
    stands in for); print its CPU and counts as JSON.
    """
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message
    from std_msgs.msg import UInt8MultiArray

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    from twin_ros.executor import make_executor

    rclpy.init()
    node = rclpy.create_node(f'floor_{"_".join(processes)}')
    received: dict[str, int] = {}
    published: list[tuple[Topic, Any, bytes]] = []  # (topic, its publisher, the bytes it sends)

    def counter(name: str) -> Callable[[bytes], None]:
        def count(_: bytes) -> None:
            received[name] += 1
        return count

    for topic in traffic():
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if topic.reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        for _ in range(sum(topic.subscribers.count(process) for process in processes)):
            received[topic.name] = 0
            node.create_subscription(UInt8MultiArray, topic.name, counter(topic.name), qos, raw=True)
        if topic.publisher in processes:
            payload = serialize_message(UInt8MultiArray(data=bytes(max(topic.size - 24, 0))))
            published.append((topic, node.create_publisher(UInt8MultiArray, topic.name, qos), payload))
    executor = make_executor()
    executor.add_node(node)
    spinner = threading.Thread(target=spin_until_shutdown, args=(executor,))
    spinner.start()
    sent = [0]
    stop = threading.Event()
    publishing = threading.Thread(target=publish_paced, args=(published, sent, stop))
    publishing.start()
    time.sleep(warmup)
    cpu, count_sent, count_received = cpu_seconds(), sent[0], dict(received)
    time.sleep(duration)
    result = {'process': '+'.join(processes), 'cores': (cpu_seconds() - cpu) / duration,
              'sent': (sent[0] - count_sent) / duration,
              'received': {name: (received[name] - count_received[name]) / duration for name in received}}
    stop.set()
    publishing.join()
    print(json.dumps(result), flush=True)
    rclpy.try_shutdown()  # ends the spin
    spinner.join()
    executor.shutdown()
    node.destroy_node()


def spin_until_shutdown(executor: Any) -> None:
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except ExternalShutdownException:
        pass


def publish_paced(publishers: list[tuple[Topic, Any, bytes]], sent: list[int],
                  stop: threading.Event) -> None:
    """Publish every topic at its rate, what is due together, waking at most every
    ``PUBLISH_PERIOD_S`` (as the IMU driver reads its lines); none is skipped.
    """
    start = time.monotonic()
    due = [(start + random.random() / topic.rate_hz, i) for i, (topic, _, _) in enumerate(publishers)]
    heapq.heapify(due)
    while due and not stop.is_set():
        time.sleep(max(due[0][0] - time.monotonic(), PUBLISH_PERIOD_S))
        now = time.monotonic()
        while due[0][0] <= now:
            when, i = heapq.heappop(due)
            topic, publisher, payload = publishers[i]
            publisher.publish(payload)
            sent[0] += 1
            heapq.heappush(due, (when + 1.0 / topic.rate_hz, i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--warmup', type=float, default=5.0, help='s before measuring (discovery)')
    parser.add_argument('--duration', type=float, default=20.0, help='s measured')
    parser.add_argument('--layout', choices=LAYOUTS, default='graph',
                        help="graph: the default graph's five processes; composed: all in one")
    parser.add_argument('--stand-in', help=argparse.SUPPRESS)  # comma-separated processes of the graph
    options = parser.parse_args()
    if options.stand_in:
        stand_in(options.stand_in.split(','), options.warmup, options.duration)
        return
    env = {**os.environ, 'ROS_DOMAIN_ID': os.environ.get('ROS_DOMAIN_ID') or str(random.randint(1, 101))}
    print(f'{len(traffic())} topics of the default graph at the rated rates, bytes only, no work, '
          f'layout {options.layout}; '
          f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}')
    children = [subprocess.Popen([sys.executable, __file__, '--stand-in', ','.join(group), '--warmup',
                                  str(options.warmup), '--duration', str(options.duration)],
                                 env=env, stdout=subprocess.PIPE, text=True)
                for group in LAYOUTS[options.layout]]
    results = [json.loads(child.communicate(timeout=options.warmup + options.duration + 60)[0]) for child in children]
    expected = {topic.name: topic.rate_hz for topic in traffic()}
    print(f'{"process":<40}{"cores":>7}{"sent/s":>9}{"taken/s":>9}{"of expected":>13}')
    for result in results:
        taken = sum(result['received'].values())
        wanted = sum(expected[topic.name] * topic.subscribers.count(process)
                     for topic in traffic() for process in result['process'].split('+'))
        print(f'{result["process"]:<40}{result["cores"]:>7.3f}{result["sent"]:>9.0f}{taken:>9.0f}'
              f'{100 * taken / wanted if wanted else 100:>12.1f}%')
    print(f'{"all":<40}{sum(r["cores"] for r in results):>7.3f}{sum(r["sent"] for r in results):>9.0f}'
          f'{sum(sum(r["received"].values()) for r in results):>9.0f}')
    print(f'load average {os.getloadavg()[0]:.2f} at the end')


if __name__ == '__main__':
    main()
