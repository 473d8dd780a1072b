"""A run-to-failure fleet at cycle resolution: the benchmark of supervised RUL.

Each unit is the shoulder joint (``joint_2`` of the URDF) of one robot running work cycles of
``CYCLE_SECONDS``; every cycle runs in one of six operating regimes (payload × speed, the
``payload`` and ``speed`` settings columns) drawn at random, which shifts every sensor level. Two
wear states follow the simulator's wear law (``twin_sim.wear``: a gamma process whose mean grows
with load × distance, per-unit log-normal susceptibility), time-compressed by
``WEAR_ACCELERATION``: gearbox wear excites the gear-mesh vibration, bearing wear raises Coulomb
friction and damping (the simulator's gains), hence torque, motor current and, through the
simulator's motor thermal model, winding temperature. A unit fails when either state reaches 1;
its mode is the one that did. Units differ in initial wear, friction, susceptibilities, sensor
offsets and drifts; sensors carry Gaussian noise.

Files (the twin's long CSV layout): ``train.csv`` (units run to failure: ``unit, time`` (cycle),
sensors, settings, ``wear`` (the larger state) and ``rul`` in cycles), ``test.csv`` (units cut at a
random cycle before failure, without ``rul``) and ``test_rul.csv`` (``unit, rul``: the truth at
each test unit's cut), like the public run-to-failure fleets.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin_core.urdf import read_arm_description, urdf_file
from twin_sim.thermal import MotorParameters, MotorThermalModel
from twin_sim.wear import WearParameters

JOINT = 1  # joint_2, the shoulder: the largest gravity load
CYCLE_SECONDS = 120.0  # one work cycle; the motor's thermal time constant is 300 s
MOVING_FRACTION = 0.5  # of a cycle the joint moves; it holds the load for the rest
WEAR_ACCELERATION = 700.0  # wear rate multiplier: a few hundred cycles to failure
UNLOADED_TORQUE = 25.0  # N·m, the arm's own gravity load on the joint
REACH = 0.4  # m, payload lever arm
PAYLOADS = (0.0, 5.0, 10.0)  # kg
SPEEDS = (0.6, 1.2)  # rad/s while moving
SENSORS = ('vibration', 'torque', 'current', 'temperature')
SETTINGS = ('payload', 'speed')
MODES = ('gearbox', 'bearing')
MAX_CYCLES = 2000
OTHER_MODE_SUSCEPTIBILITY = 0.4  # the non-dominant wear state's rate, relative to the dominant one


@dataclass(frozen=True)
class UnitRun:
    """One unit's cycles up to failure: sensors and settings per row (``SENSORS + SETTINGS``)."""

    values: np.ndarray  # cycles × (sensors + settings)
    wear: np.ndarray  # larger wear state per cycle, 0 new .. 1 failure
    mode: str  # the failure mode, one of MODES

    @property
    def life(self) -> int:
        """Cycles to failure (the last row is the failing cycle)."""
        return len(self.values)


def simulate_fleet(count: int, rng: np.random.Generator) -> list[UnitRun]:
    """``count`` units run to failure, all cycles simulated together."""
    arm = read_arm_description(urdf_file())
    wear_law, motor = WearParameters(), MotorParameters()
    effort, friction, damping = arm.effort[JOINT], arm.friction[JOINT], arm.damping[JOINT]
    thermal = MotorThermalModel(motor, np.full(count, arm.gear_ratio[JOINT]), ambient=25.0)

    modes = rng.integers(0, len(MODES), count)
    susceptibility = rng.lognormal(0.0, wear_law.susceptibility_spread, (len(MODES), count))
    susceptibility[1 - modes, np.arange(count)] *= OTHER_MODE_SUSCEPTIBILITY
    wear = rng.uniform(0.0, 0.2, (len(MODES), count))  # gearbox, bearing
    friction_factor = rng.lognormal(0.0, 0.15, count)
    offsets = rng.normal(0.0, (0.05, 0.5, 0.05, 1.5), (count, len(SENSORS)))
    drifts = rng.normal(0.0, (2e-4, 1e-3, 2e-5, 4e-3), (count, len(SENSORS)))  # per cycle
    noise = np.array((0.04, 0.5, 0.04, 0.4))

    rows, states = [], []
    failed_at = np.full(count, -1)
    for cycle in range(MAX_CYCLES):
        payload = np.array(PAYLOADS)[rng.integers(0, len(PAYLOADS), count)]
        speed = np.array(SPEEDS)[rng.integers(0, len(SPEEDS), count)]
        gear, bearing = wear
        friction_torque = (friction * friction_factor * (1.0 + wear_law.friction_gain * bearing)
                           + damping * (1.0 + wear_law.damping_gain * bearing) * speed)
        load = UNLOADED_TORQUE + 9.81 * REACH * payload
        moving_torque = load + friction_torque
        square_torque = MOVING_FRACTION * moving_torque ** 2 + (1.0 - MOVING_FRACTION) * load ** 2
        thermal.step(CYCLE_SECONDS, square_torque, MOVING_FRACTION * friction_torque * speed)
        mesh = (wear_law.vibration_amplitude * effort * gear * np.minimum(speed / wear_law.vibration_onset_speed, 1.0)
                / math.sqrt(2.0) * math.sqrt(MOVING_FRACTION))
        torque_rms = np.sqrt(square_torque)
        true = np.column_stack((0.05 + 0.01 * payload + mesh, torque_rms, thermal.motor_current(torque_rms),
                                thermal.temperatures))
        measured = true + offsets + drifts * cycle + rng.normal(0.0, noise, true.shape)
        rows.append(np.column_stack((measured, payload, speed)))
        states.append(wear.copy())
        distance = speed * MOVING_FRACTION * CYCLE_SECONDS
        mean_increment = WEAR_ACCELERATION * wear_law.nominal_rate * susceptibility * moving_torque * distance
        scale = wear_law.noise_scale
        wear = np.minimum(wear + rng.gamma(mean_increment / scale, scale), 1.0)
        failed_at[(failed_at < 0) & (wear.max(axis=0) >= 1.0)] = cycle
        if (failed_at >= 0).all():
            break
    if (failed_at < 0).any():
        raise ValueError(f'{int((failed_at < 0).sum())} units did not fail within {MAX_CYCLES} cycles')
    table, state = np.stack(rows, axis=1), np.stack(states, axis=2)  # unit × cycle × column, mode × unit × cycle
    runs = []
    for unit in range(count):
        end = failed_at[unit] + 1
        runs.append(UnitRun(table[unit, :end], state[:, unit, :end].max(axis=0),
                            MODES[int(np.argmax(state[:, unit, end - 1]))]))
    return runs


@dataclass(frozen=True)
class FleetFiles:
    """What ``write_fleet`` wrote, with each test unit's cut and truth."""

    train: Path
    test: Path
    truth: Path
    train_runs: list[UnitRun]
    test_runs: list[UnitRun]
    cuts: list[int]  # cycles kept per test unit


def cut_point(life: int, rng: np.random.Generator) -> int:
    """Cycles kept of a test unit: uniform from a tenth of its life to one before failure."""
    return int(rng.integers(max(1, life // 10), life))


def write_fleet(directory: Path, train_units: int = 100, test_units: int = 100, seed: int = 0) -> FleetFiles:
    """Simulate and write ``train.csv``, ``test.csv`` and ``test_rul.csv`` into ``directory``."""
    rng = np.random.default_rng(seed)
    runs = simulate_fleet(train_units + test_units, rng)
    train_runs, test_runs = runs[:train_units], runs[train_units:]
    cuts = [cut_point(run.life, rng) for run in test_runs]
    directory.mkdir(parents=True, exist_ok=True)
    files = FleetFiles(directory / 'train.csv', directory / 'test.csv', directory / 'test_rul.csv',
                       train_runs, test_runs, cuts)
    header = ['unit', 'time', *SENSORS, *SETTINGS]
    with open(files.train, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow([*header, 'wear', 'rul'])
        for number, run in enumerate(train_runs, 1):
            for cycle, (row, wear) in enumerate(zip(run.values, run.wear), 1):
                writer.writerow([f'train_{number}', cycle, *(f'{v:.4f}' for v in row), f'{wear:.4f}',
                                 run.life - cycle])
    with open(files.test, 'w', newline='', encoding='utf-8') as stream, \
            open(files.truth, 'w', newline='', encoding='utf-8') as truth_stream:
        writer, truth = csv.writer(stream), csv.writer(truth_stream)
        writer.writerow(header)
        truth.writerow(['unit', 'rul'])
        for number, (run, cut) in enumerate(zip(test_runs, cuts), 1):
            for cycle, row in enumerate(run.values[:cut], 1):
                writer.writerow([f'test_{number}', cycle, *(f'{v:.4f}' for v in row)])
            truth.writerow([f'test_{number}', run.life - cut])
    return files
