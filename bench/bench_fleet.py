"""How the twin scales with the number of robots on one machine (``twin_launch --robots N``).

Two sources of device data (``--source``):

* ``sim``: the whole fleet (N simulated cells, N twins with their drivers, the fleet node when
  N > 1); the simulators' CPU counts with the graph's;
* ``bags``: no simulator and no drivers (``twin_launch --no-sim --no-drivers``); per robot a
  ``twin_play --loop --restamp`` publishes the bag's device topics (the synchronizer's inputs and
  the plan, as the report's replay picks them) into the robot's namespace at the recorded rate,
  stamps moved to the time they play at (twin_bringup.bag_feed). The players' CPU is measured
  apart from the twins'.

For each N, on a private copy of config/ and its own DDS domain, after a warm-up it records:

* CPU (cores, from /proc via psutil): the twins' processes in total, per robot and per process
  (node group), the players', the bench's own (its subscriptions);
* per robot, the rate of ``twin/joint_states`` (aligned output) and its latency (receive time -
  stamp, net of the synchronizer's deliberate timeline delay), pooled over robots: p50 / p99 and
  the worst robot's p99; with bags also robot 1's ``twin/live/joint_states`` (one robot only: the
  bench's own subscriptions take CPU from the twins);
* with bags, per robot and device topic: messages the player published (its diagnostics) against
  the bag's rate, and messages the synchronizer took (its diagnostics, as bench_e2e counts them).

An N "breaks" when a twin's state rate falls below ``--min-rate`` Hz, the worst p99 exceeds
``--max-p99`` ms or a synchronizer takes less than 99 % of what was published; the run stops
after the first N that breaks (``--keep-going`` runs every N). The baseline is the first N.

    python bench/bench_fleet.py --robots 1 2 3 --warmup 20 --duration 20
    python bench/bench_fleet.py --source bags --robots 1 2 4 6 8 --warmup 8 --duration 20
    python bench/bench_fleet.py --source bags --robots 1 2 4 6 --layout composed  # one process per robot
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import yaml
from bench_e2e import LAYOUTS, Recorder, apply_layout, delivery, graph_cpu
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import JointState

from twin_bag.player import Playback
from twin_bringup.bag_feed import played_topics, player_command, robot_namespaces, twin_command
from twin_bringup.launcher import node_environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import isolated_config  # noqa: E402

REFERENCE_BAG = Path(__file__).resolve().parent.parent / 'test' / 'data' / 'bags' / 'nominal'
ALIGNED, LIVE = 'twin/joint_states', 'twin/live/joint_states'
WATCHDOG = '-m'  # the launcher's watchdog process (python -m)


def topic(namespace: str, name: str) -> str:
    return f'/{namespace}/{name}' if namespace else f'/{name}'


@dataclass
class Fleet:
    """One measured fleet: what was started, where it records."""

    robots: int
    source: str
    workdir: Path
    config: Path
    namespaces: list[str]
    env: dict[str, str]
    launcher: subprocess.Popen[bytes] | None = None
    players: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """SIGINT the players and the launcher (it stops the twins), then wait for them."""
        for process in [*self.players, *([self.launcher] if self.launcher else [])]:
            if process.poll() is None:
                os.killpg(process.pid, 2)
        for process in [*self.players, *([self.launcher] if self.launcher else [])]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def bag_rates(bag: Path, topics: list[str]) -> dict[str, float]:
    """Messages per second of each topic as a loop plays them (a pass lasts the loop period)."""
    playback = Playback(bag, topics)
    try:
        period_s = playback.loop_period_ns * 1e-9
    finally:
        playback.close()
    with AnyReader([bag]) as reader:
        return {c.topic: c.msgcount / period_s for c in reader.connections if c.topic in topics}


def start(robots: int, source: str, bag: Path, topics: list[str], layout: str) -> Fleet:
    """Start the twins of ``robots`` robots (and their players with bags) on a fresh domain, each
    robot's nodes grouped into processes as ``layout`` says (bench_e2e's layouts).
    """
    domain = random.randint(1, 101)
    workdir = Path(tempfile.mkdtemp(prefix=f'bench_fleet_{source}_{robots}_'))
    config = isolated_config(workdir)
    apply_layout(config, layout)
    env = node_environment(str(config / 'fastdds_loopback.xml'))
    env.update(ROS_DOMAIN_ID=str(domain), ROS_LOG_DIR=str(workdir / 'ros_log'))
    os.environ.update({k: env[k] for k in ('FASTDDS_DEFAULT_PROFILES_FILE', 'RMW_IMPLEMENTATION', 'ROS_DOMAIN_ID')})
    fleet = Fleet(robots, source, workdir, config, robot_namespaces(config, robots), env)
    command = (twin_command(config, robots) if source == 'bags' else
               [sys.executable, '-m', 'twin_bringup.launcher', '--config-dir', str(config), '--robots', str(robots)])
    fleet.launcher = subprocess.Popen(command, env=env, stdout=open(workdir / 'launch.log', 'w'),
                                      stderr=subprocess.STDOUT, start_new_session=True)
    if source == 'bags':
        fleet.players = [subprocess.Popen(player_command(bag, namespace, topics), env=env,
                                          stdout=open(workdir / f'player_{index}.log', 'w'),
                                          stderr=subprocess.STDOUT, start_new_session=True)
                         for index, namespace in enumerate(fleet.namespaces, 1)]
    return fleet


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds used so far by ``processes`` and their children."""
    total = 0.0
    for process in processes:
        try:
            parent = psutil.Process(process.pid)
            for member in [parent, *parent.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def robot_of(pid: int, namespaces: list[str]) -> str | None:
    """The robot (namespace) a twin process runs for, None for shared ones (fleet node, watchdog)."""
    try:
        arguments = psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return None
    if len(namespaces) == 1:
        return None if WATCHDOG in arguments[1:2] else namespaces[0]
    return next((ns for ns in namespaces if f'__ns:=/{ns}' in arguments), None)


def measure(args: argparse.Namespace, robots: int, topics: list[str], rates: dict[str, float]) -> dict:
    """Run a fleet of ``robots``; CPU, rates, latencies and delivery over ``duration`` s after the warm-up."""
    fleet = start(robots, args.source, args.bag, topics, args.layout)
    delay = yaml.safe_load((fleet.config / 'sync.yaml').read_text())['twin_sync']['ros__parameters']['delay']
    recorder = Recorder(int(fleet.env['ROS_DOMAIN_ID']))
    first = fleet.namespaces[0]
    for namespace in fleet.namespaces:
        recorder.subscribe(topic(namespace, ALIGNED), JointState, qos_profile_sensor_data)
        if args.source == 'bags':
            recorder.subscribe(topic(namespace, 'diagnostics'), DiagnosticArray, 100)
    if args.source == 'bags':
        recorder.subscribe(topic(first, LIVE), JointState, qos_profile_sensor_data)
    recorder.thread.start()
    bench = psutil.Process()
    try:
        time.sleep(args.warmup * robots)  # every robot's nodes start at once on the same cores
        assert fleet.launcher is not None
        if fleet.launcher.poll() is not None:
            raise RuntimeError(f'twin_launch exited with code {fleet.launcher.returncode}: '
                               f'{(fleet.workdir / "launch.log").read_text()[-2000:]}')
        parent = psutil.Process(fleet.launcher.pid)
        twins_before, players_before = graph_cpu(parent), cpu_seconds(fleet.players)
        bench_before, wall_before = sum(bench.cpu_times()[:2]), time.monotonic()
        recorder.recording = True
        time.sleep(args.duration)
        recorder.recording = False
        twins_after, elapsed = graph_cpu(parent), time.monotonic() - wall_before
        players_cores = (cpu_seconds(fleet.players) - players_before) / elapsed
        bench_cores = (sum(bench.cpu_times()[:2]) - bench_before) / elapsed
        owners = {pid: robot_of(pid, fleet.namespaces) for _, pid in twins_after}
    finally:
        fleet.stop()
        recorder.close()
    used = {key: (twins_after[key] - twins_before.get(key, 0.0)) / elapsed for key in twins_after}
    per_group: dict[str, float] = defaultdict(float)
    per_robot: dict[str | None, float] = defaultdict(float)
    for (label, pid), cores in used.items():
        per_group[label] += cores
        per_robot[owners[pid]] += cores
    aligned = {ns: (np.asarray(recorder.latencies[topic(ns, ALIGNED)]) - delay) * 1e3 for ns in fleet.namespaces}
    result = {
        'robots': robots, 'processes': len(used), 'cores': sum(used.values()),
        'groups': dict(per_group), 'per_robot': {ns: per_robot[ns] for ns in fleet.namespaces},
        'shared': per_robot[None], 'players': players_cores, 'bench': bench_cores,
        'rates': {ns: len(aligned[ns]) / elapsed for ns in fleet.namespaces},
        'p50': percentile(np.concatenate(list(aligned.values())), 50),
        'p99': percentile(np.concatenate(list(aligned.values())), 99),
        'worst_p99': max(percentile(values, 99) for values in aligned.values()),
        'restarts': log_restarts(fleet.workdir / 'launch.log'), 'load': os.getloadavg()[0]}
    if args.source == 'bags':
        result['live'] = np.asarray(recorder.latencies[topic(first, LIVE)]) * 1e3
        result['delivery'] = {
            ns: delivery(recorder.messages[topic(ns, 'diagnostics')], recorder.received,
                         {topic(ns, t.lstrip('/')): (f'twin_player: {topic(ns, t.lstrip("/"))}', t.lstrip('/'))
                          for t in topics if t in rates and t != '/plan/desired_joint_states'})
            for ns in fleet.namespaces}
        result['expected'] = {topic(ns, t.lstrip('/')): rate for ns in fleet.namespaces for t, rate in rates.items()}
    return result


def percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float('nan')


def log_restarts(path: Path) -> int:
    return sum('restarting in' in line for line in path.read_text().splitlines())


def delivery_ratios(result: dict) -> tuple[float, float]:
    """Over every robot and device topic: the lowest published / the bag's rate, and the lowest
    taken by the synchronizer / published; NaN where nothing was counted (the simulator source).
    """
    if 'delivery' not in result:
        return float('nan'), float('nan')
    played, taken = [1.0], [1.0]
    for counts, span in result.get('delivery', {}).values():
        for name, (sent, synced, _) in counts.items():
            played.append(sent / (result['expected'][name] * span) if span else float('nan'))
            taken.append(synced / sent if sent else float('nan'))
    return min(played), min(taken)


def breaks(result: dict, args: argparse.Namespace) -> list[str]:
    """Why this fleet misses the requirement (empty: it meets it)."""
    reasons = []
    if min(result['rates'].values()) < args.min_rate:
        reasons.append(f'state rate {min(result["rates"].values()):.1f} Hz < {args.min_rate:g}')
    if not result['worst_p99'] <= args.max_p99:
        reasons.append(f'p99 {result["worst_p99"]:.1f} ms > {args.max_p99:g}')
    if delivery_ratios(result)[1] < 0.99:
        reasons.append(f'a synchronizer took {100 * delivery_ratios(result)[1]:.1f} % of the messages')
    return reasons


def print_details(result: dict) -> None:
    """CPU per node group and per robot, delivery per robot and topic, robot 1's live latency."""
    print(f'\n{result["robots"]} robots: {result["processes"]} twin processes, load {result["load"]:.1f}')
    for label, cores in sorted(result['groups'].items()):
        print(f'  {"watchdog" if label == WATCHDOG else label:48s} {cores:6.3f} cores')
    print('  per robot: ' + ', '.join(f'{ns or "robot"} {c:.2f}' for ns, c in result['per_robot'].items())
          + f'; shared (fleet node, watchdog) {result["shared"]:.2f}; players {result["players"]:.2f}; '
            f'bench {result["bench"]:.2f} cores')
    print('  twin/joint_states Hz: ' + ', '.join(f'{rate:.1f}' for rate in result['rates'].values())
          + f'; latency - delay: p50 {result["p50"]:.1f} ms, p99 {result["p99"]:.1f} ms, '
            f'worst robot\'s p99 {result["worst_p99"]:.1f} ms')
    if 'delivery' not in result:
        return
    live = result['live']
    print(f'  robot 1 twin/live/joint_states: p50 {percentile(live, 50):.2f} ms, p99 {percentile(live, 99):.2f} ms '
          f'({live.size} messages)')
    print(f'  {"device topic":40s} {"published":>10s} {"bag rate":>10s} {"to sync":>10s}')
    for counts, span in result['delivery'].values():
        for name, (sent, synced, _) in counts.items():
            print(f'  {name:40s} {sent:10.0f} {result["expected"][name] * span:10.0f} {synced:10.0f}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--source', choices=('sim', 'bags'), default='sim',
                        help='device data from simulated cells or from a bag played per robot')
    parser.add_argument('--bag', type=Path, default=REFERENCE_BAG, help='bag of device topics (with --source bags)')
    parser.add_argument('--robots', type=int, nargs='+', default=None,
                        help='fleet sizes (default: 1 2 3 with sim, 1 2 4 6 8 with bags)')
    parser.add_argument('--warmup', type=float, default=None, help='s per robot before recording '
                                                                  '(default: 20 with sim, 8 with bags)')
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--min-rate', type=float, default=99.0, help='Hz of twin/joint_states a robot needs')
    parser.add_argument('--max-p99', type=float, default=20.0, help='ms, the worst robot\'s p99 at most')
    parser.add_argument('--keep-going', action='store_true', help='measure every N, also after a break')
    parser.add_argument('--layout', choices=LAYOUTS, default='graph',
                        help="each robot's process layout, as bench_e2e's --layouts (composed: one process per robot)")
    args = parser.parse_args()
    bags = args.source == 'bags'
    args.robots = args.robots or ([1, 2, 4, 6, 8] if bags else [1, 2, 3])
    args.warmup = args.warmup if args.warmup is not None else 8.0 if bags else 20.0
    topics = list(played_topics(args.bag, isolated_config(Path(tempfile.mkdtemp())))) if bags else []
    rates = bag_rates(args.bag, topics) if bags else {}
    results, broken = [], None
    for robots in args.robots:
        results.append(measure(args, robots, topics, rates))
        print_details(results[-1])
        reasons = breaks(results[-1], args)
        if reasons:
            print(f'  breaks: {"; ".join(reasons)}')
            broken = broken or robots
            if not args.keep_going:
                break
    base = results[0]
    played = f' ({args.bag}, topics {" ".join(topics)})' if bags else ''
    print(f'\n{os.cpu_count()} cores; source {args.source}{played}; layout {args.layout}; '
          f'{args.duration:.0f} s recorded after {args.warmup:.0f} s warm-up per robot; latency = twin/joint_states '
          f'receive time - stamp - timeline delay; cores = every twin process{"" if bags else " and simulator"}')
    print(f'{"robots":>6s} {"procs":>6s} {"cores":>6s} {"x base":>7s} {"cores/robot":>11s} {"players":>8s} '
          f'{"min Hz":>7s} {"p50 ms":>7s} {"p99 ms":>7s} {"worst p99":>9s} {"played %":>8s} {"to sync %":>9s} '
          f'{"restarts":>8s} {"load":>5s}')
    for r in results:
        played, taken = delivery_ratios(r)
        print(f'{r["robots"]:6d} {r["processes"]:6d} {r["cores"]:6.2f} {r["cores"] / base["cores"]:7.2f} '
              f'{r["cores"] / r["robots"]:11.2f} {r["players"]:8.2f} {min(r["rates"].values()):7.1f} {r["p50"]:7.1f} '
              f'{r["p99"]:7.1f} {r["worst_p99"]:9.1f} {100 * played:8.1f} {100 * taken:9.1f} {r["restarts"]:8d} '
              f'{r["load"]:5.1f}')
    print(f'breaks at {broken} robots' if broken else f'no break up to {results[-1]["robots"]} robots')


if __name__ == '__main__':
    main()
