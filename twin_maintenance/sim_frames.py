"""Labelled sensor-level data from the simulated workcell: what the twin sees, frame by frame.

Samples the simulated devices at the synchronizer's frame rate, the way the drivers and the
synchronizer present them: IMU and encoders every frame, the laser scanner (20 Hz) and the
PLC's motor temperatures (10 Hz) held between updates and NaN once older than the
synchronizer's timeouts (``config/sync.yaml``). Writes ``frames.csv`` (time, channels,
``label`` 1 while a fault is active, ``fault``) plus the simulator's ``truth.csv`` (1 Hz) and
``faults.json``; ``--health-window`` also writes ``health.csv``, the joints' health
indicators in long format (unit = joint) with the true wear state at the window's end and the
remaining life until health 0.

Example::

    python -m twin_maintenance.sim_frames --scenario fault_suite --duration 2300 --out out/faults
"""
from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twin_core.channels import read_csv
from twin_core.progress import SIM_SECONDS, advance_to, progress_bar
from twin_core.signals import IMU, joint_signal, joint_signals, range_min
from twin_core.urdf import read_arm_description, urdf_file
from twin_maintenance.condition import ConditionWindows, joint_channels
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.truth import TruthRecorder
from twin_sim.workcell import Workcell

SCAN_TOPIC = 'scan'
SCAN_PERIOD, PLC_PERIOD = 0.05, 0.1  # s between laser scans and PLC temperature updates
TIMEOUTS = {'imu': 0.05, 'encoders': 0.05, 'scan': 0.2, 'plc': 0.5}  # s, as config/sync.yaml


def frame_channels(joints: Sequence[str]) -> list[str]:
    """Channel names of the frames, as :func:`~twin_core.channels.frame_values` names them."""
    return ([signal.name for signal in IMU]
            + [joint_signal(j, f).name for j in joints for f in ('position', 'velocity', 'effort')]
            + [range_min(SCAN_TOPIC).name]
            + list(joint_signals(joints, 'temperature')))


class _Held:
    """The last value of a device and when it was read; NaN once older than ``timeout``."""

    def __init__(self, size: int, timeout: float) -> None:
        self.value = np.full(size, math.nan)
        self.stamp = -math.inf
        self.timeout = timeout

    def update(self, value: np.ndarray | Sequence[float] | None, now: float) -> None:
        if value is not None:
            self.value, self.stamp = np.asarray(value, dtype=float), now

    def read(self, now: float) -> np.ndarray:
        return self.value if now - self.stamp <= self.timeout + 1e-9 else np.full_like(self.value, math.nan)


def record(workcell: Workcell, duration: float, out: Path, rate: float = 100.0) -> int:
    """Simulate ``duration`` s, writing one frame row every 1/``rate`` s; returns the row count."""
    joints = workcell.joint_names
    steps = max(1, round(1.0 / (rate * workcell.settings.timestep)))
    truth_every = max(1, round(rate))
    held = {'imu': _Held(6, TIMEOUTS['imu']), 'encoders': _Held(3 * len(joints), TIMEOUTS['encoders']),
            'scan': _Held(1, TIMEOUTS['scan']), 'plc': _Held(len(joints), TIMEOUTS['plc'])}
    next_scan = next_plc = 0.0
    count = int(duration * rate)
    out.mkdir(parents=True, exist_ok=True)
    with (TruthRecorder(out, joints) as truth, open(out / 'frames.csv', 'w', newline='') as stream,
          progress_bar(count * steps * workcell.settings.timestep, workcell.scenario.name, SIM_SECONDS) as bar):
        writer = csv.writer(stream)
        writer.writerow(['time', *frame_channels(joints), 'label', 'fault'])
        for row in range(count):
            workcell.step(steps)
            now = workcell.time
            held['imu'].update(workcell.imu_sample(), now)
            encoders = workcell.encoder_sample()
            held['encoders'].update(None if encoders is None else np.column_stack(encoders).ravel(), now)
            if now >= next_scan - 1e-9:
                next_scan += SCAN_PERIOD
                scan = workcell.lidar_scan()
                finite = None if scan is None else scan[np.isfinite(scan)]
                held['scan'].update(None if finite is None else [finite.min() if finite.size else math.nan], now)
            if now >= next_plc - 1e-9:
                next_plc += PLC_PERIOD
                held['plc'].update(workcell.motor_temperatures(), now)
            active = [fault.label for fault in workcell.faults.active]
            values = np.concatenate([held[k].read(now) for k in ('imu', 'encoders', 'scan', 'plc')])
            writer.writerow([f'{now:.3f}', *(f'{v:.7g}' for v in values), int(bool(active)), ';'.join(active)])
            if row % truth_every == 0:
                truth.record(workcell.truth(), workcell.faults.started(now))
            advance_to(bar, now)
    return count


def health_table(out: Path, window: float) -> Path:
    """``health.csv`` from ``frames.csv`` and ``truth.csv`` in ``out``: unit, time, indicators, wear, rul."""
    arm = read_arm_description(urdf_file())
    frames = read_csv(out / 'frames.csv', label_column='label')
    truth = read_csv(out / 'truth.csv', columns=[f'{k}_{j}' for k in ('health', 'wear') for j in arm.joint_names])
    joints = [joint_channels(j, float(limit)) for j, limit in zip(arm.joint_names, arm.effort)]
    rows = ConditionWindows(frames.names, joints, {}, window).update(frames.time, frames.values)
    failure, wear = {}, {}
    for column, joint in enumerate(arm.joint_names):
        wear[joint] = truth.values[:, len(arm.joint_names) + column]
        failed = np.flatnonzero(truth.values[:, column] <= 0.0)
        failure[joint] = truth.time[failed[0]] if failed.size else math.nan
    path = out / 'health.csv'
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(['unit', 'time', *rows[0].values, 'wear', 'rul'])
        for row in rows:
            rul = failure[row.component] - row.time
            writer.writerow([row.component, f'{row.time:.3f}', *(f'{v:.7g}' for v in row.values.values()),
                             f'{np.interp(row.time, truth.time, wear[row.component]):.5f}',
                             f'{rul:.3f}' if rul >= 0 else ''])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', default='nominal', help='scenario file or name in config/scenarios')
    parser.add_argument('--duration', type=float, default=60.0, help='simulated seconds')
    parser.add_argument('--rate', type=float, default=100.0, help='frames per simulated second')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, required=True, help='output directory')
    parser.add_argument('--health-window', type=float, default=0.0,
                        help='also write health.csv with indicators over windows of this many s')
    arguments = parser.parse_args(argv)
    scenario = Scenario.from_file(scenario_path(arguments.scenario))
    workcell = Workcell(urdf_file(), scenario, SimSettings(control_period_steps=10), seed=arguments.seed)
    rows = record(workcell, arguments.duration, arguments.out, arguments.rate)
    print(f'{scenario.name}: {rows} frames in {arguments.out / "frames.csv"}')
    if arguments.health_window > 0:
        print(f'health indicators in {health_table(arguments.out, arguments.health_window)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
