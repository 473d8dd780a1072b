"""twin_rul: train and evaluate remaining-useful-life estimation on run-to-failure data.

Long-format CSV: one row per unit and time (or cycle), feature columns, and the remaining
life in a ``rul`` column (empty where unknown). Examples::

    twin_rul train --data train.csv --model rul.json
    twin_rul evaluate --data test.csv --model rul.json
"""
from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin_analytics.rul import RulModel, nasa_score, two_point_rul


@dataclass(frozen=True)
class Table:
    """Rows of a long-format file, sorted by unit then time."""

    units: np.ndarray
    time: np.ndarray
    features: tuple[str, ...]
    values: np.ndarray
    rul: np.ndarray  # NaN where unknown


@dataclass(frozen=True)
class Evaluation:
    """Predictions at the evaluated rows against the truth."""

    true: np.ndarray
    predicted: np.ndarray
    low: np.ndarray
    high: np.ndarray
    naive: np.ndarray

    @staticmethod
    def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
        return float(np.sqrt(np.mean((predicted - true) ** 2)))

    def summary(self) -> str:
        inside = np.mean((self.low <= self.true) & (self.true <= self.high))
        return (f'{len(self.true)} predictions: RMSE {self.rmse(self.predicted, self.true):.1f}  '
                f'NASA score {nasa_score(self.predicted, self.true):.1f}  80 % interval coverage {inside:.2f}  |  '
                f'naive two-point: RMSE {self.rmse(self.naive, self.true):.1f}  '
                f'NASA score {nasa_score(self.naive, self.true):.3g}')


def read_table(path: Path, unit_column: str = 'unit', time_column: str = 'time', rul_column: str = 'rul',
               features: Sequence[str] | None = None) -> Table:
    with open(path, newline='', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise ValueError(f'{path}: no rows')
    names = tuple(features or [c for c in rows[0] if c not in (unit_column, time_column, rul_column)])
    number = lambda text: float(text) if text not in ('', None) else math.nan  # noqa: E731
    units = np.array([row[unit_column] for row in rows])
    time = np.array([number(row[time_column]) for row in rows])
    order = np.lexsort((time, units))
    values = np.array([[number(row[name]) for name in names] for row in rows]).reshape(len(rows), len(names))
    rul = np.array([number(row.get(rul_column, '')) for row in rows])
    return Table(units[order], time[order], names, values[order], rul[order])


def evaluate(model: RulModel, table: Table, points: int = 20) -> Evaluation:
    """Estimate at up to ``points`` evenly spread rows of known RUL per unit."""
    results = []
    for unit in np.unique(table.units):
        rows = np.flatnonzero(table.units == unit)
        time, health = table.time[rows], model.health(table.values[rows])
        known = np.flatnonzero(np.isfinite(table.rul[rows]))
        known = known[known >= 3]
        for i in known[np.unique(np.linspace(0, len(known) - 1, min(points, len(known))).astype(int))]:
            estimate = model.estimate(time[:i + 1], health[:i + 1])
            window = time[:i + 1] >= time[i] - model.window
            results.append((table.rul[rows][i], estimate.median, estimate.low, estimate.high,
                            min(two_point_rul(time[:i + 1][window], health[:i + 1][window]), model.cap)))
    return Evaluation(*map(np.array, zip(*results)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('train', 'evaluate'):
        command = commands.add_parser(name)
        command.add_argument('--data', type=Path, required=True)
        command.add_argument('--model', type=Path, required=True, help='model file (JSON)')
        for column in ('unit', 'time', 'rul'):
            command.add_argument(f'--{column}-column', default=column)
    train = commands.choices['train']
    train.add_argument('--features', help='comma-separated feature columns (default: all others)')
    train.add_argument('--cap', type=float, help='remaining life counted as healthy (default: longest life)')
    train.add_argument('--window', type=float, help='time span of the trend fit (default: cap / 4)')
    commands.choices['evaluate'].add_argument('--points', type=int, default=20, help='estimates per unit')
    arguments = parser.parse_args(argv)
    columns = dict(unit_column=arguments.unit_column, time_column=arguments.time_column,
                   rul_column=arguments.rul_column)
    if arguments.command == 'train':
        table = read_table(arguments.data, features=arguments.features.split(',') if arguments.features else None,
                           **columns)
        known = np.isfinite(table.rul)
        model = RulModel.fit(table.features, table.units[known], table.values[known], table.rul[known],
                             arguments.cap, arguments.window)
        model.save(arguments.model)
        print(f'trained on {known.sum()} rows of {len(np.unique(table.units[known]))} units '
              f'(cap {model.cap:.4g}, window {model.window:.4g}); model in {arguments.model}')
    else:
        model = RulModel.load(arguments.model)
        table = read_table(arguments.data, features=model.features, **columns)
        print(evaluate(model, table, arguments.points).summary())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
