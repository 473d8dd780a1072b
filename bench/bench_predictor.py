"""Predictor: training time, inference cost and open-loop accuracy of the dynamics models.

Simulates an identification run (training) and a held-out run with other poses (evaluation)
at the physics rate, trains the physics-informed model, the plain MLP and the physics-informed
ensemble with the same time budget, then scores them together with the analytic model with a
5 % wrong link mass and the exact analytic model on the same held-out rollouts (recorded torques).
µs/step (inference): one semi-implicit Euler step of a single state, all members, as the node
runs it (best of 20 × 50). Run: ``nice python bench/bench_predictor.py [--budget 240] [--data DIR] [--save DIR]``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import timeit
from pathlib import Path

import torch

from twin_core.urdf import urdf_file
from twin_predictor.analytic import AnalyticArm
from twin_predictor.dynamics import DynamicsModel
from twin_predictor.evaluation import Model, evaluate, table
from twin_predictor.joint_data import JointData, load_truth
from twin_predictor.registry import create, save
from twin_predictor.rollout import euler_step
from twin_predictor.training import fit, samples_from, validation_loss
from twin_sim.generate import run
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

INVARIANT = ('joint_1',)  # base yaw about the gravity axis


def simulate(scenario: str, seconds: float, seed: int, out: Path) -> JointData:
    workcell = Workcell(urdf_file(), Scenario.from_file(scenario_path(scenario)),
                        SimSettings(control_period_steps=10), seed=seed)
    run(workcell, seconds, 1000.0, out)
    return load_truth(out / 'truth.csv')


def inference_micros(model: Model, joints: int) -> float:
    """Best of 20 × 50 steps (the machine may be shared: the minimum is the cost, not the waiting)."""
    state = torch.zeros(model.members, 1, joints)
    with torch.no_grad():
        best = min(timeit.repeat(lambda: euler_step(model.acceleration, state, state, state, 0.01),
                                 number=50, repeat=20))
    return best / 50 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train-seconds', type=float, default=300.0, help='simulated training data (s)')
    parser.add_argument('--test-seconds', type=float, default=30.0, help='simulated held-out data (s)')
    parser.add_argument('--budget', type=float, default=240.0, help='training time per model (s)')
    parser.add_argument('--windows', type=int, default=40)
    parser.add_argument('--data', type=Path, default=None, help='reuse/keep simulated data in this directory')
    parser.add_argument('--save', type=Path, default=None, help='save the trained models under this directory')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    directory = arguments.data or Path(tempfile.mkdtemp(prefix='bench_predictor_'))
    cached = lambda name: (directory / name / 'truth.csv').is_file()  # noqa: E731
    train_data = (load_truth(directory / 'train' / 'truth.csv') if cached('train')
                  else simulate('identification', arguments.train_seconds, 0, directory / 'train'))
    test_data = (load_truth(directory / 'test' / 'truth.csv') if cached('test')
                 else simulate('identification_holdout', arguments.test_seconds, 1, directory / 'test'))
    train, test = samples_from(train_data), samples_from(test_data)
    joints = len(train_data.joint_names)
    invariant = tuple(train_data.joint_names.index(name) for name in INVARIANT)
    print(f'data: {len(train)} training samples ({train_data.time[-1]:.0f} s), {len(test)} held-out samples '
          f'({test_data.time[-1]:.0f} s), dt {train_data.dt * 1e3:g} ms')

    learned: dict[str, DynamicsModel] = {
        'physics_informed': create('physics_informed', joints, train.scales(), invariant_joints=invariant),
        'mlp': create('mlp', joints, train.scales()),
        'ensemble (5 x PI)': create('ensemble', joints, train.scales(), invariant_joints=invariant),
    }
    print(f'\n{"model":<20} {"train s":>8} {"steps":>7} {"train loss":>11} {"held-out loss":>14} {"µs/step":>8}')
    for name, model in learned.items():
        start = time.perf_counter()
        steps = len(fit(model, train, 10_000_000, time_limit=arguments.budget))
        seconds = time.perf_counter() - start
        losses = {'train_loss': validation_loss(model, train), 'validation_loss': validation_loss(model, test)}
        print(f'{name:<20} {seconds:>8.0f} {steps:>7} {losses["train_loss"]:>11.2e} '
              f'{losses["validation_loss"]:>14.2e} {inference_micros(model, joints):>8.0f}', flush=True)
        if arguments.save:
            registry_name = name.split()[0]
            training = {'data': str(directory / 'train' / 'truth.csv'), 'sha256': train_data.sha256,
                        'rows': len(train_data.time), 'dt': train_data.dt}
            save(model, arguments.save / registry_name, registry_name, train_data.joint_names, training,
                 {**losses, 'steps': steps, 'training_seconds': seconds})
    analytic: dict[str, Model] = {'analytic, link_2 mass +5%': AnalyticArm(test_data.dt, mass_errors={'link_2': 0.05}),
                                  'analytic, exact': AnalyticArm(test_data.dt)}
    for name, model in analytic.items():
        print(f'{name:<20} {"-":>8} {"-":>7} {"-":>11} {"-":>14} {inference_micros(model, joints):>8.0f}')
    results = evaluate({**learned, **analytic}, test_data, arguments.windows, horizon=2.0)
    print(f'\n{arguments.windows} open-loop rollouts of 2 s on held-out data (recorded torques, '
          f'semi-implicit Euler at {test_data.dt * 1e3:g} ms); µs/step here: whole batch of rollouts')
    print(table(results))
    exact = results['analytic, exact']
    for name in learned:
        s = results[name]
        print(f'{name}: RMSE@1s {s.rmse_1s / max(results["analytic, link_2 mass +5%"].rmse_1s, 1e-12):.2f}x the '
              f'mis-specified model, {s.rmse_1s / max(exact.rmse_1s, 1e-12):.0f}x the exact model')
    print(f'\n(simulated data in {directory})')


if __name__ == '__main__':
    main()
