"""Prediction with and without the plan on the controlled cycle: joint error against horizon.

Simulates the nominal pick-and-place cycle (the simulator's own controller, physics at 1 kHz),
sampling every 10 ms what the twin receives: encoder readings (quantised positions, noisy
velocities and efforts), the desired joint state and the controller's plan (the current reference
and the next segment ends, as the plan channel sends them). The first ``--identify`` seconds fit the
controller model (``twin_predictor.plan.identify``) for the saved physics-informed ensemble; the
next ``--evaluate`` seconds score, from a start every ``--every`` s, in the same run:

* plan-aware: the ensemble driven by the identified controller along the plan (``plan_rollout``);
* plan-unaware: the ensemble holding the last measured torque (the predictor without a plan);
* hold: the joints stay where they were measured.

Error: predicted minus true joint position at each horizon, RMS over all joints and starts (mrad),
and the ratio of the hold baseline to the plan-aware error. Run:
``nice python bench/bench_plan.py [--identify 30] [--evaluate 60] [--step 0.02] [--save DIR]``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from twin_core.paths import config_dir
from twin_core.trajectory import JointPlan
from twin_core.urdf import urdf_file
from twin_predictor.plan import identify, plan_rollout
from twin_predictor.predictor import Predictor
from twin_predictor.registry import load
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

HORIZONS = (0.25, 0.5, 1.0)
SAMPLE_PERIOD = 0.01  # s
TARGETS = 6


@dataclass
class Recording:
    """Rows every SAMPLE_PERIOD: measured (q, qd, tau), true q, desired (q, qd, qdd), plans."""

    q: np.ndarray
    qd: np.ndarray
    tau: np.ndarray
    truth: np.ndarray
    desired: np.ndarray
    desired_velocity: np.ndarray
    desired_acceleration: np.ndarray
    plans: list[JointPlan]


def record(scenario: str, seconds: float, seed: int) -> Recording:
    cell = Workcell(urdf_file(), Scenario.from_file(scenario_path(scenario)), SimSettings(), seed=seed)
    steps = round(SAMPLE_PERIOD / cell.settings.timestep)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in ('q', 'qd', 'tau', 'truth', 'desired',
                                                            'desired_velocity', 'desired_acceleration')}
    plans = []
    for _ in range(round(seconds / SAMPLE_PERIOD)):
        cell.step(steps)
        measured = cell.encoder_sample()
        plan = cell.plan_sample(TARGETS)
        assert measured is not None and plan is not None
        reference = cell.controller.reference
        for key, value in zip(rows, (*measured, cell.truth().q, reference.position, reference.velocity,
                                     reference.acceleration)):
            rows[key].append(np.asarray(value, dtype=float))
        plans.append(JointPlan(0, cell.joint_names, plan.times, plan.positions, plan.velocities,
                               plan.accelerations))
    return Recording(**{key: np.array(value) for key, value in rows.items()}, plans=plans)


def at_horizons(times: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows (T, n) linearly interpolated at HORIZONS: (len(HORIZONS), n)."""
    return np.array([[np.interp(h, times, rows[:, j]) for j in range(rows.shape[1])] for h in HORIZONS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', default='nominal')
    parser.add_argument('--identify', type=float, default=30.0, help='seconds to fit the controller model on')
    parser.add_argument('--evaluate', type=float, default=60.0, help='seconds scored after them')
    parser.add_argument('--every', type=float, default=0.1, help='seconds between prediction starts')
    parser.add_argument('--step', type=float, default=0.02, help='integration step of the rollouts (s)')
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--save', default='', help='write the identified controller.json into this directory')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    model, metadata = load(config_dir() / 'models' / 'predictor')
    joints = tuple(metadata['joint_names'])
    horizon = max(HORIZONS)
    margin = horizon + 0.1
    start = time.perf_counter()
    data = record(arguments.scenario, arguments.identify + arguments.evaluate + margin, arguments.seed)
    print(f'simulated {len(data.q) * SAMPLE_PERIOD:.0f} s of the {arguments.scenario} cycle in '
          f'{time.perf_counter() - start:.0f} s (model: {metadata["name"]} v{metadata["version"]})')
    fit = slice(0, round(arguments.identify / SAMPLE_PERIOD))
    controller = identify(model, joints, data.q[fit], data.qd[fit], data.tau[fit], data.desired[fit],
                          data.desired_velocity[fit], data.desired_acceleration[fit])
    print('controller model (per joint): kp', np.round(controller.kp, 1).tolist(), 'kd',
          np.round(controller.kd, 2).tolist(), 'a', np.round(controller.feedforward, 3).tolist(),
          'b', np.round(controller.offset, 3).tolist(), 'residual N·m', np.round(controller.residual_rms, 3).tolist())
    if arguments.save:
        print(f'saved {controller.save(arguments.save)}')
    steps = round(horizon / arguments.step) + 1
    times = arguments.step * np.arange(steps + 1)
    unaware = Predictor(model, metadata['version'], arguments.step, steps)
    lag = round(horizon / SAMPLE_PERIOD) + 1
    starts = range(fit.stop, len(data.q) - lag, round(arguments.every / SAMPLE_PERIOD))
    errors: dict[str, list[np.ndarray]] = {'plan-aware': [], 'plan-unaware': [], 'hold position': []}
    timing = {'plan-aware': 0.0, 'plan-unaware': 0.0}
    for index in starts:
        truth = at_horizons(SAMPLE_PERIOD * np.arange(lag), data.truth[index:index + lag])
        q, qd, tau = data.q[index], data.qd[index], data.tau[index]
        desired = data.plans[index].sample(times[1:])
        begin = time.perf_counter()
        aware = plan_rollout(model, controller, q, qd, desired.position, desired.velocity, desired.acceleration,
                             arguments.step).mean(0)
        middle = time.perf_counter()
        blind = unaware.predict(q, qd, tau).mean
        timing['plan-aware'] += middle - begin
        timing['plan-unaware'] += time.perf_counter() - middle
        errors['plan-aware'].append(at_horizons(times, aware) - truth)
        errors['plan-unaware'].append(at_horizons(times, blind) - truth)
        errors['hold position'].append(q[None, :] - truth)
    rms = {name: 1e3 * np.sqrt(np.mean(np.square(rows), axis=(0, 2))) for name, rows in errors.items()}
    print(f'\n{len(starts)} predictions from {arguments.identify:g} s to {arguments.identify + arguments.evaluate:g} s '
          f'of the cycle, every {arguments.every:g} s; rollout step {arguments.step:g} s; '
          f'joint position error RMS over the {len(joints)} joints [mrad]')
    print('| prediction | ' + ' | '.join(f'{h:g} s' for h in HORIZONS) + ' | ms per prediction |')
    print('|---|' + '---:|' * (len(HORIZONS) + 1))
    for name, values in rms.items():
        cost = f'{1e3 * timing[name] / len(starts):.1f}' if name in timing else '–'
        print(f'| {name} | ' + ' | '.join(f'{v:.1f}' for v in values) + f' | {cost} |')
    ratio = rms['hold position'] / rms['plan-aware']
    print('| hold / plan-aware | ' + ' | '.join(f'{r:.1f}×' for r in ratio) + ' | |')


if __name__ == '__main__':
    main()
