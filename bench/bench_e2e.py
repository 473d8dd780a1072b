"""End-to-end benchmark of the data path over DDS: simulator → drivers → sync → twin state.

Starts the whole graph (``twin_launch`` on a private copy of config/, its own DDS domain, the
loopback-only profile), lets it warm up, then records for a while:

* latency of each stage: receive time minus header stamp (the stamp is the sensor instant, mapped
  from the device clock), for /imu/data, /encoders/joint_states, /twin/live/joint_states (the live
  mirror of each encoder sample), /twin/synced_frame and /twin/joint_states (aligned); the
  synchronizer's timeline lags by its configured ``delay`` on purpose, so the table also shows the
  aligned state's latency net of that delay;
* the baseline measured in the same run: one DDS hop of sensor_msgs/Imu at 1 kHz between two
  plain rclpy processes (the floor any stage pays);
* CPU of every node process of the graph (cores, from /proc via psutil).

The graph runs once per executor (``--executors``, default both: the twin's lean executor, then
rclpy's SingleThreadedExecutor), one after the other in the same run.

    python bench/bench_e2e.py --warmup 8 --duration 20
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState

from twin_bringup.launcher import node_environment
from twin_interfaces.msg import SyncedFrame
from twin_ros.executor import CHOICES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import isolated_config  # noqa: E402

SIMULATOR = {'workcell_sim', '-m'}  # '-m': the launcher itself
STAGES = {'/imu/data': Imu, '/encoders/joint_states': JointState, '/twin/live/joint_states': JointState,
          '/twin/synced_frame': SyncedFrame, '/twin/joint_states': JointState}
RAW_PUBLISHER = '''
import sys, time, rclpy
from sensor_msgs.msg import Imu

rclpy.init()
node = rclpy.create_node('raw_imu_publisher')
pub = node.create_publisher(Imu, '/bench/raw_imu', 100)
period, deadline = 0.001, time.monotonic() + float(sys.argv[1])
next_due = time.monotonic()
while time.monotonic() < deadline:
    message = Imu()
    message.header.stamp = node.get_clock().now().to_msg()
    pub.publish(message)
    next_due += period
    time.sleep(max(0.0, next_due - time.monotonic()))
node.destroy_node()
rclpy.shutdown()
'''


class Recorder:
    """Receive-time minus stamp, per topic, from an rclpy node spinning in a thread."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('bench_recorder', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.recording = False
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except rclpy.executors.ExternalShutdownException:
            pass

    def subscribe(self, topic: str, msg_type: type, qos) -> None:
        def record(message) -> None:
            if self.recording:
                stamp = message.header.stamp
                self.latencies[topic].append(time.time() - (stamp.sec + stamp.nanosec * 1e-9))
        self.node.create_subscription(msg_type, topic, record, qos)

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


def set_imu_rate(config: Path, rate_hz: float) -> None:
    """The simulated IMU's output rate, and the driver's noise model to match."""
    for filename, node, keys in (('workcell.yaml', 'workcell_sim', ('channels', 'imu')),
                                 ('imu_driver.yaml', 'imu_driver', ('noise',))):
        document = yaml.safe_load((config / filename).read_text())
        section = document[node]['ros__parameters']
        for key in keys:
            section = section[key]
        section['rate_hz'] = rate_hz
        (config / filename).write_text(yaml.safe_dump(document))


def graph_cpu(launcher: psutil.Process) -> dict[tuple[str, int], float]:
    """CPU seconds used so far by each node process, keyed by (executable, pid): robots of a
    fleet run the same executables.
    """
    usage = {}
    for child in launcher.children():
        try:
            times = child.cpu_times()
            usage[(Path(child.cmdline()[1]).name, child.pid)] = times.user + times.system
        except (psutil.NoSuchProcess, IndexError):
            continue
    return usage


def row(name: str, values: list[float], duration: float, rated: float) -> str:
    if not values:
        return f'{name:34s} {rated:8.0f} {"no messages":>10s}'
    ms = np.asarray(values) * 1e3
    return (f'{name:34s} {rated:8.0f} {len(values) / duration:8.1f} {np.percentile(ms, 50):8.2f} '
            f'{np.percentile(ms, 99):8.2f} {ms.max():8.2f}')


def run_graph(args: argparse.Namespace, executor: str) -> None:
    """Start the graph with the given executor in every node, record, print its tables."""
    domain = random.randint(1, 101)
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    workdir = Path(tempfile.mkdtemp(prefix='bench_e2e_'))
    config = isolated_config(workdir)
    set_imu_rate(config, args.imu_rate)
    env = node_environment(str(config / 'fastdds_loopback.xml'))
    env['ROS_LOG_DIR'] = str(workdir / 'ros_log')
    env['TWIN_EXECUTOR'] = executor
    os.environ.update({k: env[k] for k in ('FASTDDS_DEFAULT_PROFILES_FILE', 'RMW_IMPLEMENTATION')})
    delay = yaml.safe_load((config / 'sync.yaml').read_text())['twin_sync']['ros__parameters']['delay']

    recorder = Recorder(domain)
    for topic, msg_type in STAGES.items():
        recorder.subscribe(topic, msg_type, qos_profile_sensor_data)
    recorder.subscribe('/bench/raw_imu', Imu, 100)
    recorder.thread.start()

    log = open(workdir / 'launch.log', 'w')
    launcher = subprocess.Popen([sys.executable, '-m', 'twin_bringup.launcher', '--config-dir', str(config)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(args.warmup)
        raw = subprocess.Popen([sys.executable, '-c', RAW_PUBLISHER, str(args.duration)], env=env)
        parent = psutil.Process(launcher.pid)
        cpu_before, wall_before = graph_cpu(parent), time.monotonic()
        recorder.recording = True
        time.sleep(args.duration)
        recorder.recording = False
        cpu_after, elapsed = graph_cpu(parent), time.monotonic() - wall_before
        raw.wait(timeout=30)
    finally:
        os.killpg(launcher.pid, 2)
        launcher.wait(timeout=30)
        recorder.close()

    print(f'\nexecutor {executor}: {len(cpu_after)} node processes, IMU {args.imu_rate:g} Hz, domain {domain}, '
          f'recorded {elapsed:.1f} s after {args.warmup:.0f} s warm-up; {os.cpu_count()} cores, '
          f'load {os.getloadavg()[0]:.1f}')
    print(f'{"stage (receive time - stamp)":34s} {"rated":>8s} {"msg/s":>8s} {"p50 ms":>8s} {"p99 ms":>8s} '
          f'{"max ms":>8s}')
    rated = {'/imu/data': args.imu_rate, '/encoders/joint_states': 500.0, '/twin/live/joint_states': 500.0,
             '/twin/synced_frame': 100.0, '/twin/joint_states': 100.0, '/bench/raw_imu': 1000.0}
    print(row('baseline: one DDS hop, Imu 1 kHz', recorder.latencies['/bench/raw_imu'], elapsed, 1000.0))
    for topic in STAGES:
        print(row(topic, recorder.latencies[topic], elapsed, rated[topic]))
    net = [v - delay for v in recorder.latencies['/twin/joint_states']]
    print(row(f'/twin/joint_states - {delay * 1e3:.0f} ms delay', net, elapsed, 100.0))
    print(f'{"node":34s} {"cores":>8s}')
    twin = 0.0
    for key in sorted(cpu_after):
        cores = (cpu_after[key] - cpu_before.get(key, 0.0)) / elapsed
        twin += cores if key[0] not in SIMULATOR else 0.0
        print(f'{key[0]:34s} {cores:8.3f}')
    total = sum(cpu_after[n] - cpu_before.get(n, 0.0) for n in cpu_after) / elapsed
    print(f'{"twin (every node but the simulator)":34s} {twin:8.3f}')
    print(f'{"total":34s} {total:8.3f}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--warmup', type=float, default=8.0)
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--imu-rate', type=float, default=1000.0, help='IMU output rate (Hz)')
    parser.add_argument('--executors', nargs='+', choices=CHOICES, default=list(CHOICES),
                        help='run the graph once per executor, one after the other')
    args = parser.parse_args()
    for executor in args.executors:
        run_graph(args, executor)


if __name__ == '__main__':
    main()
