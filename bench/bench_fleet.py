"""How the twin scales with the number of robots on one machine (``twin_launch --robots N``).

For each N: the whole fleet (N simulated cells, N twins, the fleet node when N > 1) on a private
copy of config/ and its own DDS domain; after a warm-up it records for a while:

* CPU of the whole graph (cores, from /proc via psutil) and per robot;
* per robot, the rate of /twin/joint_states and its latency (receive time - stamp, net of the
  synchronizer's deliberate timeline delay), pooled over robots: p50 / p99;
* the baseline in the same run is N = 1 (ratios against it).

    python bench/bench_fleet.py --robots 1 2 3 --warmup 20 --duration 20
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from bench_e2e import Recorder, graph_cpu
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from twin_bringup.launcher import node_environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import isolated_config  # noqa: E402


def joint_states_topic(robots: int, index: int) -> str:
    return '/twin/joint_states' if robots == 1 else f'/robot_{index}/twin/joint_states'


def measure(robots: int, warmup: float, duration: float) -> dict[str, float]:
    """Run a fleet of ``robots``; CPU, rates and latencies over ``duration`` s after ``warmup``."""
    domain = random.randint(1, 101)
    workdir = Path(tempfile.mkdtemp(prefix=f'bench_fleet_{robots}_'))
    config = isolated_config(workdir)
    env = node_environment(str(config / 'fastdds_loopback.xml'))
    env.update(ROS_DOMAIN_ID=str(domain), ROS_LOG_DIR=str(workdir / 'ros_log'))
    os.environ.update({k: env[k] for k in ('FASTDDS_DEFAULT_PROFILES_FILE', 'RMW_IMPLEMENTATION')})
    delay = yaml.safe_load((config / 'sync.yaml').read_text())['twin_sync']['ros__parameters']['delay']
    recorder = Recorder(domain)
    topics = [joint_states_topic(robots, i) for i in range(1, robots + 1)]
    for topic in topics:
        recorder.subscribe(topic, JointState, qos_profile_sensor_data)
    recorder.thread.start()
    log = open(workdir / 'launch.log', 'w')
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'twin_bringup.launcher', '--config-dir', str(config), '--robots', str(robots)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(warmup * robots)  # every robot's nodes start at once on the same cores
        parent = psutil.Process(launcher.pid)
        cpu_before, wall_before = graph_cpu(parent), time.monotonic()
        recorder.recording = True
        time.sleep(duration)
        recorder.recording = False
        cpu_after, elapsed = graph_cpu(parent), time.monotonic() - wall_before
        processes = len(cpu_after)
    finally:
        os.killpg(launcher.pid, 2)
        launcher.wait(timeout=60)
        recorder.close()
    latencies = np.concatenate([np.asarray(recorder.latencies[t]) - delay for t in topics]) * 1e3
    rates = [len(recorder.latencies[t]) / elapsed for t in topics]
    cores = sum(cpu_after[key] - cpu_before.get(key, 0.0) for key in cpu_after) / elapsed
    restarts = log_restarts(workdir / 'launch.log')
    return {'robots': robots, 'processes': processes, 'cores': cores, 'min_rate': min(rates),
            'p50': float(np.percentile(latencies, 50)) if latencies.size else float('nan'),
            'p99': float(np.percentile(latencies, 99)) if latencies.size else float('nan'),
            'restarts': restarts, 'load': os.getloadavg()[0]}


def log_restarts(path: Path) -> int:
    return sum('restarting in' in line for line in path.read_text().splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--robots', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--warmup', type=float, default=20.0, help='s per robot before recording')
    parser.add_argument('--duration', type=float, default=20.0)
    args = parser.parse_args()
    results = [measure(n, args.warmup, args.duration) for n in args.robots]
    base = results[0]
    print(f'{os.cpu_count()} cores; {args.duration:.0f} s recorded after {args.warmup:.0f} s warm-up per robot; '
          f'latency = /twin/joint_states receive time - stamp - timeline delay, pooled over robots')
    print(f'{"robots":>6s} {"procs":>6s} {"cores":>6s} {"x base":>7s} {"cores/robot":>11s} '
          f'{"min Hz":>7s} {"p50 ms":>7s} {"p99 ms":>7s} {"restarts":>8s} {"load":>5s}')
    for r in results:
        print(f'{r["robots"]:6d} {r["processes"]:6d} {r["cores"]:6.2f} {r["cores"] / base["cores"]:7.2f} '
              f'{r["cores"] / r["robots"]:11.2f} {r["min_rate"]:7.1f} {r["p50"]:7.1f} {r["p99"]:7.1f} '
              f'{r["restarts"]:8d} {r["load"]:5.1f}')


if __name__ == '__main__':
    main()
