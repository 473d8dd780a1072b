"""Desired vs measured through the twin's cores: the tracking error the twin state shows on the
nominal cycle, and how fast a stuck encoder raises the tracking alarm.

Simulates the cell (the simulator's own controller, physics at 1 kHz) and every 10 ms hands the
twin what it receives: the encoder reading (quantised positions, noisy velocities and efforts),
IMU, motor temperatures and cell status as one frame, and the controller's desired joint state
(position, velocity: the plan's point 0) as a separate stream. The twin's state estimator
(:class:`twin_state.estimator.StateEstimator`, ``config/state.yaml`` defaults) reads the desired
stream at each frame's stamp; its tracking error feeds the analytics' tracking alarms
(:class:`twin_anomaly.tracking.TrackingAlarms`, ``config/anomaly.yaml`` defaults). Transport over
DDS is not part of this (the live sync delay, 30 ms, adds to the times below).

* nominal: ``--nominal`` s after ``--warmup`` s; RMS and peak tracking error per joint;
* faults: ``--faults`` times, each in a fresh cell at a different phase of the cycle, an
  ``encoder_stuck`` fault on ``--joint`` (``--fault-duration`` s): from the onset to the tracking
  alarm, beside, in the same run, the actuation's tracking check (``config/actuation.yaml``
  defaults: 0.03 rad for 0.02 s, on the same encoder samples and desired states) as the baseline.

    nice python bench/bench_tracking.py [--nominal 60] [--faults 5]
"""
from __future__ import annotations

import argparse

import numpy as np

from twin_anomaly.config import TrackingAlarmConfig
from twin_anomaly.tracking import TrackingAlarms
from twin_control.config import TrackingConfig
from twin_control.tracking import TrackingMonitor
from twin_core import signals
from twin_core.levels import Quality
from twin_core.stamps import from_seconds
from twin_core.urdf import urdf_file
from twin_sim.paths import scenario_path
from twin_sim.scenario import Fault, Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell
from twin_state.config import StateConfig
from twin_state.estimator import StateEstimator
from twin_state.state import FrameInput, TwinState

PERIOD = 0.01  # s between frames (the synchronizer's 100 Hz grid)


class Twin:
    """The simulated cell and the twin's state estimator fed from it every PERIOD."""

    def __init__(self, seed: int) -> None:
        self.cell = Workcell(urdf_file(), Scenario.from_file(scenario_path('nominal')), SimSettings(), seed=seed)
        self.estimator = StateEstimator(StateConfig(), urdf_file())
        self.joints = self.cell.joint_names
        self._steps = round(PERIOD / self.cell.settings.timestep)
        self._encoder_names = tuple(f'{joint}.{quantity}' for quantity in ('position', 'velocity', 'effort')
                                    for joint in self.joints)

    def step(self) -> tuple[float, np.ndarray, TwinState | None]:
        """Advance one period; the stamp, the encoder positions and the twin state there."""
        cell = self.cell
        cell.step(self._steps)
        stamp = cell.time
        reference = cell.controller.reference
        self.estimator.desired(from_seconds(stamp), self.joints, reference.position, reference.velocity)
        positions, velocities, efforts = cell.encoder_sample()
        truth = cell.truth()
        frame = [FrameInput('encoders/joint_states', signals.JOINT_STATE_TYPE, 0.0, Quality.EXACT, self._encoder_names,
                        np.concatenate((positions, velocities, efforts))),
                 FrameInput('imu/data', signals.IMU_TYPE, 0.0, 0,
                        tuple(name.removeprefix(signals.IMU_PREFIX) for name in
                              (*signals.IMU_ACCELERATION, *signals.IMU_ANGULAR_VELOCITY)), cell.imu_sample()),
                 FrameInput('cell/status', signals.CELL_STATUS_TYPE, 0.0, 0,
                        (signals.TASK_ID, signals.TASK_PROGRESS, signals.SPEED_OVERRIDE, signals.STOPPED),
                        np.array([truth.task_id, truth.task_progress, truth.speed_override, truth.stopped],
                                 dtype=float))]
        frame += [FrameInput(f'motors/{joint}/temperature', signals.TEMPERATURE_TYPE, 0.0, Quality.EXACT,
                             ('temperature',), np.array([temperature]))
                  for joint, temperature in zip(self.joints, cell.motor_temperatures())]
        return stamp, positions, self.estimator.ingest(stamp, frame)


def nominal(args: argparse.Namespace) -> None:
    twin = Twin(args.seed)
    errors = []
    for index in range(round((args.warmup + args.nominal) / PERIOD)):
        _, _, state = twin.step()
        if index * PERIOD >= args.warmup and state is not None and len(state.robot.tracking_error):
            errors.append(state.robot.tracking_error)
    error = np.array(errors) * 1e3
    print(f'nominal cycle, {args.nominal:g} s after {args.warmup:g} s: {len(error)} twin states with a plan; '
          "tracking error (measured − desired position at the state's stamp) [mrad]")
    print('| joint | RMS | peak |\n|---|---:|---:|')
    for joint, column in zip(twin.joints, error.T):
        print(f'| {joint} | {np.sqrt(np.mean(column ** 2)):.3f} | {np.abs(column).max():.3f} |')


def milliseconds(value: float | None) -> str:
    return '–' if value is None else f'{value * 1e3:.0f}'


def fault_run(args: argparse.Namespace, run: int, alarm_config: TrackingAlarmConfig,
              stop_config: TrackingConfig) -> str:
    twin = Twin(args.seed + run)
    alarms = TrackingAlarms(alarm_config)
    monitor = TrackingMonitor(twin.joints, stop_config.bound, stop_config.duration, stop_config.max_gap,
                              stop_config.settle)
    onset_at = args.warmup + run * args.spacing  # a different phase of the cycle each run
    onset, alarm, stop, peak = None, None, None, 0.0
    while onset is None or (alarm is None or stop is None) and twin.cell.time < onset + args.fault_duration:
        stamp, positions, state = twin.step()
        if onset is None and stamp >= onset_at:
            twin.cell.inject_fault(Fault('encoder_stuck', args.joint, duration=args.fault_duration))
            onset = stamp
        reference = twin.cell.controller.reference
        judged = monitor.desired(from_seconds(stamp), reference.position)
        judged += monitor.measured(from_seconds(stamp), positions)
        if onset is not None and stop is None and any(deviation.exceeded for deviation in judged):
            stop = stamp - onset
        if state is None or not len(state.robot.tracking_error):
            continue
        events = alarms.update(stamp, state.robot.joint_names, state.robot.tracking_error)
        if onset is not None:
            peak = max(peak, abs(float(state.robot.tracking_error[twin.joints.index(args.joint)])))
            if alarm is None and any(e.active and e.sensor.startswith(f'{args.joint}.') for e in events):
                alarm = stamp - onset
    return f'| {run} | {onset:.2f} | {milliseconds(alarm)} | {milliseconds(stop)} | {peak * 1e3:.1f} |'


def faults(args: argparse.Namespace) -> None:
    alarm_config, stop_config = TrackingAlarmConfig(), TrackingConfig()
    print(f'\n{args.faults} × encoder_stuck:{args.joint} ({args.fault_duration:g} s); ms from the onset; '
          f'alarm: > {alarm_config.bound:g} rad for {alarm_config.duration:g} s on the twin state, '
          f'baseline: the actuation check, > {stop_config.bound:g} rad for {stop_config.duration:g} s on the encoders')
    print('| run | onset [s] | tracking alarm | actuation check (baseline) | peak error until both [mrad] |\n'
          '|---|---:|---:|---:|---:|')
    for run in range(1, args.faults + 1):
        print(fault_run(args, run, alarm_config, stop_config), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--warmup', type=float, default=5.0, help='s simulated before measuring')
    parser.add_argument('--nominal', type=float, default=60.0, help='s of the nominal cycle measured')
    parser.add_argument('--faults', type=int, default=5)
    parser.add_argument('--spacing', type=float, default=0.37, help='s between the faults\' onsets across runs')
    parser.add_argument('--fault-duration', type=float, default=3.0)
    parser.add_argument('--joint', default='joint_2')
    parser.add_argument('--seed', type=int, default=3)
    args = parser.parse_args()
    nominal(args)
    faults(args)


if __name__ == '__main__':
    main()
