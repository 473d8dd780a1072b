"""A labelled anomaly benchmark in the generic CSV layout: experiments of simulated drive units.

Each experiment runs one unit (the arm's shoulder joint: its friction, damping and gear ratio from
the URDF, the simulator's motor thermal law) sweeping between two positions and holding at each
end, in payload × speed regimes that change every few minutes. Units differ in friction, sensor
offsets and gains, noise level and ambient temperature; every sensor drifts slowly. Sampled at
``RATE_HZ``: time as ISO 8601 date-times (each experiment on its own day), sensors
``position, velocity, torque, current, temperature, vibration``, the settings ``payload`` and
``speed_setpoint``, ``label`` (1 = anomalous) and the text columns ``unit``, ``experiment`` and
``anomaly`` (type; never read as sensors).

The first ``NORMAL_SECONDS`` of every experiment are normal and go to ``fit.csv``; the rest, with
``ANOMALIES_PER_EXPERIMENT`` anomalies of the types in ``ANOMALY_TYPES`` at random times, to
``test.csv``. Fit with ``twin_anomaly fit --data fit.csv``, evaluate with
``twin_anomaly evaluate --data test.csv``.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from twin_core.urdf import read_arm_description, urdf_file
from twin_sim.thermal import MotorParameters, MotorThermalModel

RATE_HZ = 1.0
NORMAL_SECONDS = 1800
TEST_SECONDS = 2400
UNITS = 10
JOINT = 1  # joint_2, the shoulder
UNLOADED_TORQUE = 25.0  # N·m, the arm's own gravity load at horizontal
REACH = 0.4  # m, payload lever arm
PAYLOADS = (0.0, 5.0, 10.0)  # kg
SPEEDS = (0.3, 0.6, 1.0)  # rad/s while moving
SWING = (-1.0, 1.0)  # rad: the ends it moves between
HOLD_SECONDS = 6.0
REGIME_SECONDS = (240, 600)  # a regime lasts between these
SENSORS = ('position', 'velocity', 'torque', 'current', 'temperature', 'vibration')
NOISE = np.array((0.003, 0.02, 0.6, 0.06, 0.15, 0.01))  # per sensor, before the unit's factor
OFFSET = np.array((0.01, 0.0, 1.0, 0.1, 0.5, 0.01))  # unit-to-unit sensor offsets (σ)
DRIFT_PER_HOUR = np.array((0.002, 0.0, 0.4, 0.04, 0.5, 0.005))  # σ of each experiment's drift rate
ANOMALY_TYPES = ('bias', 'drift', 'stuck', 'spikes', 'friction', 'decoupled', 'dropout')
ANOMALY_SECONDS = (60, 240)
ANOMALIES_PER_EXPERIMENT = 3
START = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BenchmarkFiles:
    """What :func:`write_benchmark` wrote."""

    fit: Path
    test: Path
    experiments: int
    fit_rows: int
    test_rows: int
    anomalous_rows: int
    events: int


@dataclass(frozen=True)
class Experiment:
    """One experiment's sensor values (n, sensors), settings (n, 2), labels and anomaly names."""

    unit: int
    start: datetime
    values: np.ndarray
    settings: np.ndarray
    labels: np.ndarray
    anomaly: list[str]


def motion(seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity, payload and speed per second: sweeps and holds in changing regimes."""
    position, velocity = np.empty(seconds), np.empty(seconds)
    payload, speed = np.empty(seconds), np.empty(seconds)
    x, target, hold, regime_left = SWING[0], SWING[1], 0.0, 0
    p, v = 0.0, 0.0
    for t in range(seconds):
        if regime_left <= 0:
            p, v = rng.choice(PAYLOADS), rng.choice(SPEEDS)
            regime_left = int(rng.integers(*REGIME_SECONDS))
        regime_left -= 1
        if hold > 0:
            hold -= 1.0
            rate = 0.0
        else:
            step = min(v, abs(target - x))
            rate = math.copysign(step, target - x)
            x += rate
            if abs(target - x) < 1e-9:
                target, hold = (SWING[0] if target == SWING[1] else SWING[1]), HOLD_SECONDS
        position[t], velocity[t], payload[t], speed[t] = x, rate, p, v
    return position, velocity, payload, speed


def simulate(unit: int, traits: dict[str, np.ndarray], start: datetime, rng: np.random.Generator) -> Experiment:
    """One experiment of ``unit``: normal start, then anomalies."""
    arm = read_arm_description(urdf_file())
    seconds = NORMAL_SECONDS + TEST_SECONDS
    position, velocity, payload, speed = motion(seconds, rng)
    friction = np.full(seconds, arm.friction[JOINT] * traits['friction'][unit])
    anomalies = place_anomalies(rng)
    for kind, _, begin, end in anomalies:
        if kind == 'friction':
            friction[begin:end] *= rng.uniform(2.5, 4.0)
    gravity = (UNLOADED_TORQUE + 9.81 * REACH * payload) * np.cos(position)
    torque = gravity + np.sign(velocity) * friction + arm.damping[JOINT] * velocity
    # the winding heats with the normal torque: a friction increase shows in torque and current
    # only, so that no anomaly outlasts its label
    normal_friction = arm.friction[JOINT] * traits['friction'][unit]
    heating = gravity + np.sign(velocity) * normal_friction + arm.damping[JOINT] * velocity
    thermal = MotorThermalModel(MotorParameters(), np.array([arm.gear_ratio[JOINT]]), 25.0)
    thermal.ambient = float(traits['ambient'][unit])
    thermal.temperatures = np.array([thermal.ambient + rng.uniform(0.0, 5.0)])
    temperature = np.empty(seconds)
    for t in range(seconds):
        thermal.step(1.0 / RATE_HZ, np.array([heating[t] ** 2]),
                     np.array([abs(normal_friction * velocity[t])]))
        temperature[t] = thermal.temperatures[0]
    current = thermal.motor_current(torque) * traits['gain'][unit]
    vibration = 0.05 + 0.004 * payload + 0.04 * np.abs(velocity) * traits['friction'][unit]
    true = np.column_stack((position, velocity, torque, current, temperature, vibration))
    noise = NOISE * traits['noise'][unit]
    hours = np.arange(seconds)[:, None] / 3600.0
    drift = rng.normal(0.0, DRIFT_PER_HOUR) * hours
    values = true + traits['offset'][unit] + drift + rng.normal(0.0, noise, true.shape)
    labels = np.zeros(seconds, dtype=np.int8)
    names = ['normal'] * seconds
    for kind, sensor, begin, end in anomalies:
        column = values[begin:end, sensor]
        if kind == 'bias':
            column += rng.choice((-1, 1)) * rng.uniform(6.0, 10.0) * noise[sensor]
        elif kind == 'drift':
            column += np.linspace(0.0, rng.choice((-1, 1)) * rng.uniform(10.0, 16.0) * noise[sensor], end - begin)
        elif kind == 'stuck':
            column[:] = column[0]
        elif kind == 'spikes':
            hits = rng.random(end - begin) < 0.3
            column[hits] += rng.choice((-1, 1), hits.sum()) * rng.uniform(8.0, 15.0, hits.sum()) * noise[sensor]
        elif kind == 'decoupled':  # the current no longer follows the torque: it repeats an earlier stretch
            lag = int(rng.integers(7, 15))
            column[:] = values[begin - lag:end - lag, sensor]
        elif kind == 'dropout':
            column[:] = np.nan
        labels[begin:end] = 1
        names[begin:end] = [f'{kind}:{SENSORS[sensor]}'] * (end - begin)
    return Experiment(unit, start, values, np.column_stack((payload, speed)), labels, names)


def place_anomalies(rng: np.random.Generator) -> list[tuple[str, int, int, int]]:
    """(type, sensor, start, end) of the anomalies of one experiment, apart in its test part."""
    anomalies: list[tuple[str, int, int, int]] = []
    slot = TEST_SECONDS // ANOMALIES_PER_EXPERIMENT
    for i in range(ANOMALIES_PER_EXPERIMENT):
        kind = str(rng.choice(ANOMALY_TYPES))
        length = int(rng.integers(*ANOMALY_SECONDS))
        begin = NORMAL_SECONDS + i * slot + int(rng.integers(60, slot - length - 60))
        sensor = {'friction': 2, 'decoupled': 3, 'stuck': int(rng.choice((0, 2, 3))),
                  'dropout': int(rng.integers(0, len(SENSORS)))}.get(kind, int(rng.integers(2, len(SENSORS))))
        anomalies.append((kind, sensor, begin, begin + length))
    return anomalies


def unit_traits(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {'friction': rng.lognormal(0.0, 0.25, UNITS), 'gain': rng.normal(1.0, 0.03, UNITS),
            'noise': rng.lognormal(0.0, 0.3, UNITS), 'ambient': rng.uniform(18.0, 30.0, UNITS),
            'offset': rng.normal(0.0, OFFSET, (UNITS, len(SENSORS)))}


def generate(experiments: int, seed: int) -> list[Experiment]:
    rng = np.random.default_rng(seed)
    traits = unit_traits(rng)
    return [simulate(e % UNITS, traits, START + timedelta(days=e, hours=float(rng.uniform(6, 14))), rng)
            for e in range(experiments)]


def write_benchmark(directory: Path, experiments: int = 40, seed: int = 0) -> BenchmarkFiles:
    """Generate and write ``fit.csv`` and ``test.csv`` into ``directory``."""
    if experiments < 1:
        raise ValueError(f'experiments must be at least 1, got {experiments}')
    runs = generate(experiments, seed)
    directory.mkdir(parents=True, exist_ok=True)
    fit, test = directory / 'fit.csv', directory / 'test.csv'
    header = ['time', *SENSORS, 'payload', 'speed_setpoint', 'label', 'unit', 'experiment', 'anomaly']
    with open(fit, 'w', newline='') as fit_stream, open(test, 'w', newline='') as test_stream:
        writers = csv.writer(fit_stream), csv.writer(test_stream)
        for writer in writers:
            writer.writerow(header)
        for e, run in enumerate(runs):
            for t in range(len(run.labels)):
                stamp = (run.start + timedelta(seconds=t / RATE_HZ)).isoformat(timespec='seconds').replace('+00:00', '')
                cells = ['' if math.isnan(v) else f'{v:.5g}' for v in run.values[t]]
                writers[t >= NORMAL_SECONDS * RATE_HZ].writerow(
                    [stamp, *cells, f'{run.settings[t, 0]:g}', f'{run.settings[t, 1]:g}', int(run.labels[t]),
                     f'U{run.unit:02d}', f'E{e:03d}', run.anomaly[t]])
    labels = np.concatenate([run.labels[NORMAL_SECONDS:] for run in runs])
    return BenchmarkFiles(fit, test, experiments, experiments * NORMAL_SECONDS, len(labels), int(labels.sum()),
                          experiments * ANOMALIES_PER_EXPERIMENT)
