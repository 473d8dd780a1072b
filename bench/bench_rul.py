"""Supervised RUL on the fleet benchmark against plain baselines, all measured in one run.

Generates the fleet (``twin_rul generate``: units run to failure for training, units cut at a
random cycle for testing, their true remaining life apart) into a temporary directory (or
``--out``), trains the supervised model (cap and model chosen on validation units, conformal
intervals from calibration units: the test units are used for nothing but the table), evaluates
it at each test unit's last cycle next to the baselines, and the curve method of ``twin_rul``
on the same files. RUL in cycles. Run: ``python bench/bench_rul.py [--seed 0] [--out DIR]``.
"""
from __future__ import annotations

import argparse
import shlex
import tempfile
import time
from pathlib import Path

from twin_maintenance.rul_cli import main as twin_rul


def run(arguments: list[str]) -> None:
    print(f'$ twin_rul {shlex.join(arguments)}', flush=True)
    started = time.monotonic()
    if twin_rul(arguments) != 0:
        raise SystemExit(f'twin_rul {arguments[0]} failed')
    print(f'  ({time.monotonic() - started:.1f} s)\n', flush=True)


def bench(out: Path, seed: int, train_units: int, test_units: int, models: str) -> None:
    run(['generate', '--out', str(out), '--train-units', str(train_units), '--test-units', str(test_units),
         '--seed', str(seed)])
    run(['train', '--method', 'supervised', '--data', str(out / 'train.csv'), '--settings', 'payload,speed',
         '--model', str(out / 'model'), '--models', models, '--seed', str(seed)])
    run(['evaluate', '--data', str(out / 'test.csv'), '--truth', str(out / 'test_rul.csv'), '--model',
         str(out / 'model'), '--at', 'last', '--predictions', str(out / 'predictions.csv')])
    run(['train', '--data', str(out / 'train.csv'), '--model', str(out / 'curve.json')])
    run(['evaluate', '--data', str(out / 'test.csv'), '--truth', str(out / 'test_rul.csv'), '--model',
         str(out / 'curve.json'), '--at', 'last'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0, help='fleet, split and training seed')
    parser.add_argument('--train-units', type=int, default=100)
    parser.add_argument('--test-units', type=int, default=100)
    parser.add_argument('--models', default='boosting,cnn', help='supervised candidates')
    parser.add_argument('--out', type=Path, help='keep the files here (default: a temporary directory)')
    arguments = parser.parse_args()
    if arguments.out:
        bench(arguments.out, arguments.seed, arguments.train_units, arguments.test_units, arguments.models)
        return
    with tempfile.TemporaryDirectory(prefix='bench_rul_') as directory:
        bench(Path(directory), arguments.seed, arguments.train_units, arguments.test_units, arguments.models)


if __name__ == '__main__':
    main()
