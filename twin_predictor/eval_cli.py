"""twin_eval_predictor: open-loop rollout scores of saved models vs the analytic models on held-out data."""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from twin_predictor.analytic import AnalyticArm
from twin_predictor.evaluation import Model, evaluate, table
from twin_predictor.joint_data import load_truth
from twin_predictor.registry import load


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(': ', 1)[1])
    parser.add_argument('--data', type=Path, required=True, help='held-out truth.csv')
    parser.add_argument('--model', action='append', default=[], metavar='DIR',
                        help='saved model directory (repeatable)')
    parser.add_argument('--wrong-link', default='link_2', help='link whose mass the mis-specified model gets wrong')
    parser.add_argument('--mass-error', type=float, default=0.05, help='relative mass error of that link')
    parser.add_argument('--windows', type=int, default=40, help='rollouts (evenly spaced start states)')
    parser.add_argument('--horizon', type=float, default=2.0, help='rollout length (s)')
    parser.add_argument('--integrator', choices=('euler', 'rk4'), default='euler')
    parser.add_argument('--json', type=Path, default=None, help='also write the scores as JSON')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    torch.set_num_threads(1)
    data = load_truth(arguments.data)
    models: dict[str, Model] = {}
    for directory in arguments.model:
        model, metadata = load(directory)
        models[f'{metadata["name"]} v{metadata["version"]}'] = model
    models[f'analytic, {arguments.wrong_link} mass {arguments.mass_error:+.0%}'] = AnalyticArm(
        data.dt, mass_errors={arguments.wrong_link: arguments.mass_error})
    models['analytic, exact'] = AnalyticArm(data.dt)
    results = evaluate(models, data, arguments.windows, arguments.horizon, arguments.integrator)
    print(f'{arguments.windows} open-loop rollouts of {arguments.horizon:g} s on {arguments.data} '
          f'(recorded torques, dt {data.dt * 1e3:g} ms, {arguments.integrator})')
    print(table(results))
    if arguments.json:
        arguments.json.write_text(json.dumps({name: asdict(s) for name, s in results.items()}, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
