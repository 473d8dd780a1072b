"""twin_train: fit a registry model (or the thermal model) on a truth CSV and save it with metadata."""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from twin_core.progress import progress_bar
from twin_predictor.joint_data import JointData, load_truth
from twin_predictor.registry import MODELS, create, save
from twin_predictor.thermal import fit_thermal, save_thermal, temperature_rmse
from twin_predictor.training import fit, samples_from, validation_loss


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(': ', 1)[1])
    parser.add_argument('--model', required=True, choices=[*MODELS, 'thermal'])
    parser.add_argument('--data', type=Path, required=True, help='truth.csv (twin_sim_generate)')
    parser.add_argument('--out', type=Path, required=True, help='model directory (model.pt + metadata.json)')
    parser.add_argument('--steps', type=int, default=20000, help='optimiser steps')
    parser.add_argument('--time-limit', type=float, default=300.0, help='stop training after this many s')
    parser.add_argument('--batch', type=int, default=512)
    parser.add_argument('--learning-rate', type=float, default=3e-3)
    parser.add_argument('--hidden', default='', help='hidden layer sizes, e.g. 64,64 (default: per model)')
    parser.add_argument('--members', type=int, default=0, help='ensemble members (default: per model)')
    parser.add_argument('--invariant-joints', default='',
                        help='physics_informed: joints whose angle cannot change M and V, e.g. a base yaw '
                             'about the gravity axis (comma-separated names)')
    parser.add_argument('--validation', type=float, default=0.1, help='final fraction of the data held out')
    parser.add_argument('--ambient', type=float, default=25.0, help='thermal: ambient temperature (°C)')
    parser.add_argument('--window', type=float, default=1.0, help='thermal: averaging window (s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    return parser.parse_args(argv)


def overrides(arguments: argparse.Namespace, joint_names: tuple[str, ...]) -> dict[str, object]:
    result: dict[str, object] = {}
    if arguments.hidden:
        result['hidden'] = tuple(int(size) for size in arguments.hidden.split(','))
    if arguments.members:
        result['members'] = arguments.members
    if arguments.invariant_joints:
        result['invariant_joints'] = tuple(joint_names.index(name) for name in arguments.invariant_joints.split(','))
    return result


def train_thermal(arguments: argparse.Namespace, data: JointData, training: dict[str, object]) -> str:
    model = fit_thermal(data, arguments.ambient, arguments.window)
    metrics = {'rmse_60s_K': temperature_rmse(model, data, 60.0, arguments.window),
               'time_constant_s': [float(v) for v in model.time_constant]}
    metadata = save_thermal(model, arguments.out, data.joint_names, training, metrics)
    return f'thermal v{metadata["version"]}: time constants {metrics["time_constant_s"]} s, ' \
           f'60 s-ahead RMSE {metrics["rmse_60s_K"]:.3f} K'


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(arguments.seed)
    data = load_truth(arguments.data)
    training = {'data': str(arguments.data), 'sha256': data.sha256, 'rows': len(data.time), 'dt': data.dt}
    if arguments.model == 'thermal':
        print(train_thermal(arguments, data, training))
        return 0
    split = int(len(data.time) * (1.0 - arguments.validation))
    train, held_out = samples_from(data.slice(0, split)), samples_from(data.slice(split, len(data.time)))
    model = create(arguments.model, len(data.joint_names), train.scales(),
                   **overrides(arguments, data.joint_names))
    start = time.perf_counter()
    with progress_bar(arguments.steps, f'training (at most {arguments.time_limit:g} s)', 'step') as bar:
        history = fit(model, train, arguments.steps, arguments.batch, arguments.learning_rate, arguments.seed,
                      arguments.time_limit, bar)
    seconds = time.perf_counter() - start
    metrics = {'train_loss': validation_loss(model, train), 'validation_loss': validation_loss(model, held_out),
               'steps': len(history), 'training_seconds': seconds}
    metadata = save(model, arguments.out, arguments.model, data.joint_names,
                    {**training, 'validation_fraction': arguments.validation}, metrics)
    print(f'{arguments.model} v{metadata["version"]}: {len(history)} steps in {seconds:.0f} s, '
          f'train loss {metrics["train_loss"]:.2e}, validation loss {metrics["validation_loss"]:.2e} '
          f'-> {arguments.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
