"""Regenerate the reference bags in test/data/bags/: for each reference scenario the simulator
and the four drivers run live (pty, UDP and OPC UA devices on private ports) while
``twin_record`` records the driver outputs and the ground truth into a zstd MCAP bag.
``manifest.yaml`` next to the bags lists each bag's scenario, seed, fault interval (from the
ground truth, in s from the bag's start) and what it should show.

    python scripts/reference_bags.py [--out test/data/bags] [--only nominal collision]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rosbags.highlevel import AnyReader

from twin_bringup.launcher import clean_stale_shared_memory
from twin_core.paths import config_dir, resolve_executable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from sandbox import isolated_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEED = 7
DURATION_S = 11.0  # recorded per bag
FAULT_AT_S = 5.5  # fault onset, simulated s after the recorder is started (~3.5 s into the bag)
DRIVERS = ('imu_driver', 'encoder_driver', 'lidar_driver', 'plc_driver')
TRUTH = '/workcell_sim/truth'
TOPICS = (
    '/imu/data:sensor_msgs/msg/Imu:sensor_data',
    '/encoders/joint_states:sensor_msgs/msg/JointState:sensor_data',
    '/scan:sensor_msgs/msg/LaserScan:sensor_data',
    *(f'/motors/joint_{i}/temperature:sensor_msgs/msg/Temperature:sensor_data' for i in range(1, 5)),
    '/cell/status:twin_interfaces/msg/CellStatus:sensor_data',
    '/workcell_sim/joint_states:sensor_msgs/msg/JointState',
    f'{TRUTH}:twin_interfaces/msg/WorkcellTruth',
)


@dataclass(frozen=True)
class Reference:
    """One reference bag: the nominal scenario with at most one fault and its wear settings."""

    name: str
    shows: str
    fault: dict[str, Any] | None = None  # type, target, duration, parameters
    wear: dict[str, Any] = field(default_factory=lambda: {'rate': 1.0})
    expect: dict[str, Any] = field(default_factory=dict)


def alarms(*channels: str) -> dict[str, Any]:
    """Expect an alarm within the fault interval on a channel starting with one of ``channels``."""
    return {'alarm_channels': list(channels)}


REFERENCES = (
    Reference('nominal', 'production of a new arm: no ERROR alarm nor maintenance alert',
              expect={'error_alarms': False, 'maintenance_alert': False}),
    Reference('collision', 'a 300 N push on link_3: alarms within the fault interval',
              {'type': 'collision', 'target': 'link_3', 'duration': 0.15,
               'parameters': {'force': [0.0, 300.0, 0.0]}}, expect=alarms('joint_', 'imu.')),
    Reference('encoder_stuck', 'joint_3 encoder frozen: alarms within the fault interval',
              {'type': 'encoder_stuck', 'target': 'joint_3', 'duration': 4.0},
              expect=alarms('joint_3.position', 'joint_3.velocity', 'joint_3.effort')),
    Reference('imu_bias_jump', 'IMU bias step: alarms within the fault interval',
              {'type': 'imu_bias_jump', 'target': 'imu', 'duration': 4.0,
               'parameters': {'accel_bias': [0.5, 0.0, 0.0], 'gyro_bias': [0.0, 0.0, 0.03]}},
              expect=alarms('imu.')),
    Reference('sensor_dropout', 'lidar silent: alarms within the fault interval',
              {'type': 'sensor_dropout', 'target': 'lidar', 'duration': 3.0},
              expect=alarms('scan.')),
    Reference('overheating', 'joint_2 motor cooling lost; from cold motors no visible effect in the bag',
              {'type': 'overheating', 'target': 'joint_2', 'duration': 6.0,
               'parameters': {'cooling_factor': 0.05}}, expect=alarms('joint_2.temperature')),
    Reference('wear', 'worn gearboxes (joint_2, joint_4) wearing 40000x faster: HIGH/CRITICAL risk',
              wear={'rate': 40000.0, 'initial': {'joint_1': 0.2, 'joint_2': 0.85,
                                                  'joint_3': 0.2, 'joint_4': 0.95}},
              expect={'maintenance_alert': True}),
)


def scenario(reference: Reference, fault_at: float) -> dict[str, Any]:
    """The nominal scenario with the reference's wear and fault (starting at ``fault_at`` sim s)."""
    document = yaml.safe_load((config_dir() / 'scenarios' / 'nominal.yaml').read_text())
    document.update(name=f'reference_{reference.name}', description=reference.shows,
                    wear=reference.wear, faults=[])
    if reference.fault:
        document['faults'] = [{**reference.fault, 'start': fault_at}]
    return document


def prepare(reference: Reference, directory: Path, fault_at: float) -> Path:
    """A private config/ whose graph holds the simulator (this scenario, SEED) and the drivers."""
    config = isolated_config(directory)
    (config / 'scenarios' / 'reference.yaml').write_text(
        yaml.safe_dump(scenario(reference, fault_at), sort_keys=False))
    workcell = yaml.safe_load((config / 'workcell.yaml').read_text())
    workcell['workcell_sim']['ros__parameters'].update(
        seed=SEED, scenario=str(config / 'scenarios' / 'reference.yaml'), truth_dir='')
    (config / 'workcell.yaml').write_text(yaml.safe_dump(workcell))
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['nodes'] = [n for n in graph['nodes'] if n['name'] in ('workcell_sim', *DRIVERS)]
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph, sort_keys=False))
    return config


def wait_for_sim_time(target: float, timeout: float) -> None:
    """Block until the simulator's truth reports ``target`` s of simulated time."""
    import rclpy

    from twin_interfaces.msg import WorkcellTruth
    rclpy.init()
    node = rclpy.create_node('reference_bags_clock')
    latest = [-1.0]
    node.create_subscription(WorkcellTruth, TRUTH, lambda m: latest.__setitem__(0, m.sim_time), 10)
    deadline = time.monotonic() + timeout
    try:
        while latest[0] < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f'simulated time {latest[0]:.1f} s after {timeout} s '
                                   f'(waiting for {target} s): is the simulator running?')
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGINT the process group (SIGKILL after ``timeout`` s)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            clean_stale_shared_memory()


def record(reference: Reference, bag: Path, work: Path, warmup: float) -> None:
    """Run the simulator and drivers, wait ``warmup`` sim s, record DURATION_S into ``bag``."""
    fault_at = warmup + FAULT_AT_S
    config = prepare(reference, work, fault_at)
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    with open(work / 'launch.log', 'w') as log:
        launcher = subprocess.Popen([resolve_executable('twin_launch'), '--config-dir', str(config)], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            try:
                wait_for_sim_time(warmup, timeout=60.0)
            except RuntimeError as error:
                raise RuntimeError(f'{error}\n{(work / "launch.log").read_text()[-3000:]}') from None
            recorder = subprocess.run(
                [resolve_executable('twin_record'), '--out', str(bag), '--compression', 'zstd',
                 '--duration', str(DURATION_S), '--topics', *TOPICS],
                env=env, stdout=log, stderr=subprocess.STDOUT, timeout=DURATION_S + 60.0,
                check=False)
        finally:
            stop(launcher)
    if recorder.returncode != 0:
        raise RuntimeError(f'twin_record failed ({recorder.returncode}); see {work / "launch.log"}')


def wall_ns(truth: list[tuple[int, float]], sim_time: float) -> int:
    """The wall time (ns) the simulator reached ``sim_time``, from the last truth before it
    (its pacing may have been re-anchored by a lag, so no single origin holds for the bag).
    """
    stamp, at = max(((s, t) for s, t in truth if t <= sim_time), key=lambda item: item[1],
                    default=truth[0])
    return stamp + round((sim_time - at) * 1e9)


def describe_bag(reference: Reference, bag: Path, fault_at: float) -> dict[str, Any]:
    """The manifest entry: counts per topic, the simulator's real-time factor and the fault
    interval from the ground truth (s from the bag's start).
    """
    with AnyReader([bag]) as reader:
        start, end = reader.start_time, reader.end_time
        counts = {c.topic: c.msgcount for c in reader.connections}
        truth: list[tuple[int, float]] = []  # header stamp (ns), simulated time (s)
        labels: set[str] = set()
        for connection, _, raw in reader.messages([c for c in reader.connections if c.topic == TRUTH]):
            message = reader.deserialize(raw, connection.msgtype)
            truth.append((message.header.stamp.sec * 10**9 + message.header.stamp.nanosec,
                          message.sim_time))
            labels.update(message.active_faults)
    duration = (end - start) / 1e9
    entry: dict[str, Any] = {
        'name': reference.name, 'bag': reference.name, 'scenario': 'nominal', 'seed': SEED,
        'duration_s': round(duration, 3), 'wear': reference.wear, 'shows': reference.shows,
        'expect': reference.expect,
        'real_time_factor': round((truth[-1][1] - truth[0][1]) / ((truth[-1][0] - truth[0][0]) / 1e9), 3),
        'messages': counts, 'size_bytes': sum(p.stat().st_size for p in bag.iterdir())}
    if reference.fault:
        if len(labels) != 1:
            raise RuntimeError(f'{bag}: the truth labels {sorted(labels)}, expected one fault')
        entry['fault'] = {**reference.fault, 'label': labels.pop(), 'onset_s': round(
            (wall_ns(truth, fault_at) - start) / 1e9, 3), 'end_s': round(
            (wall_ns(truth, fault_at + reference.fault['duration']) - start) / 1e9, 3)}
    return entry


def main(argv: list[str] | None = None) -> int:
    """Record every (or the ``--only``) reference bag and rewrite the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO / 'test' / 'data' / 'bags')
    parser.add_argument('--only', nargs='+', choices=[r.name for r in REFERENCES])
    parser.add_argument('--warmup', type=float, default=8.0,
                        help='simulated s before recording starts (drivers connected)')
    parser.add_argument('--min-real-time', type=float, default=0.9,
                        help='record again when the simulator ran slower than this (a loaded machine)')
    parser.add_argument('--attempts', type=int, default=3, help='recordings per bag at most')
    options = parser.parse_args(argv)
    manifest_path = options.out / 'manifest.yaml'
    entries = {e['name']: e for e in yaml.safe_load(manifest_path.read_text())['bags']} \
        if manifest_path.is_file() else {}
    options.out.mkdir(parents=True, exist_ok=True)
    order = [r.name for r in REFERENCES]
    for reference in REFERENCES:
        if options.only and reference.name not in options.only:
            continue
        entries[reference.name] = generate(reference, options.out / reference.name, options)
        manifest_path.write_text(yaml.safe_dump({
            'generated_by': 'scripts/reference_bags.py', 'seed': SEED,
            'bags': sorted(entries.values(), key=lambda e: order.index(e['name']))}, sort_keys=False))
    return 0


def generate(reference: Reference, bag: Path, options: argparse.Namespace) -> dict[str, Any]:
    """Record one bag (again while the simulator lags behind real time); its manifest entry."""
    for attempt in range(1, options.attempts + 1):
        began = time.monotonic()
        shutil.rmtree(bag, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f'reference_{reference.name}_') as work:
            record(reference, bag, Path(work), options.warmup)
        entry = describe_bag(reference, bag, options.warmup + FAULT_AT_S)
        print(f'{reference.name} (attempt {attempt}): {entry["size_bytes"] / 1e6:.2f} MB, simulator '
              f'at {entry["real_time_factor"]}x real time, {time.monotonic() - began:.0f} s', flush=True)
        if entry['real_time_factor'] >= options.min_real_time:
            return entry
    raise SystemExit(f'{reference.name}: the simulator kept lagging behind real time; '
                     'rerun on a quieter machine')


if __name__ == '__main__':
    sys.exit(main())
