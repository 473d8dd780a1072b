"""twin_rul: train and evaluate remaining-useful-life estimation on run-to-failure data.

Long-format CSV: one row per unit and time (or cycle), feature columns, the normalized wear
state in a ``wear`` column (0 new .. 1 failure threshold; the training target) and the
remaining life in a ``rul`` column (empty where unknown; for evaluation). Examples::

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

from twin_maintenance.rul import RulModel, nasa_score, two_point_rul


@dataclass(frozen=True)
class Table:
    """Rows of a long-format file, sorted by unit then time."""

    units: np.ndarray
    time: np.ndarray
    features: tuple[str, ...]
    values: np.ndarray
    rul: np.ndarray  # NaN where unknown
    wear: np.ndarray  # NaN where unknown


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
               wear_column: str = 'wear', features: Sequence[str] | None = None) -> Table:
    with open(path, newline='', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise ValueError(f'{path}: no rows')
    missing = [c for c in (unit_column, time_column, *(features or ())) if c not in rows[0]]
    if missing:
        raise ValueError(f'{path}: no column {", ".join(missing)} (columns: {", ".join(rows[0])})')
    names = tuple(features or [c for c in rows[0] if c not in (unit_column, time_column, rul_column, wear_column)])
    number = lambda text: float(text) if text not in ('', None) else math.nan  # noqa: E731
    units = np.array([row[unit_column] for row in rows])
    time = np.array([number(row[time_column]) for row in rows])
    order = np.lexsort((time, units))
    values = np.array([[number(row[name]) for name in names] for row in rows]).reshape(len(rows), len(names))
    rul, wear = (np.array([number(row.get(column, '')) for row in rows]) for column in (rul_column, wear_column))
    return Table(units[order], time[order], names, values[order], rul[order], wear[order])


def default_window(table: Table) -> float:
    """Trend span: a quarter of the longest unit history."""
    return 0.25 * max(float(np.ptp(table.time[table.units == unit])) for unit in np.unique(table.units))


def evaluate(model: RulModel, table: Table, points: int = 20) -> Evaluation:
    """Estimate at up to ``points`` evenly spread rows of known RUL per unit. Point predictions
    beyond the longest remaining life in the table (no decline measurable) count as that life,
    for the model and the baseline alike.
    """
    horizon = float(np.nanmax(table.rul))
    results = []
    for unit in np.unique(table.units):
        rows = np.flatnonzero(table.units == unit)
        time, condition = table.time[rows], model.condition(table.values[rows], str(unit))
        known = np.flatnonzero(np.isfinite(table.rul[rows]))
        known = known[known >= 3]
        for i in known[np.unique(np.linspace(0, len(known) - 1, min(points, len(known))).astype(int))]:
            estimate = model.estimate(time[:i + 1], condition[:i + 1])
            window = time[:i + 1] >= time[i] - model.window
            results.append((table.rul[rows][i], min(estimate.median, horizon), estimate.low, estimate.high,
                            min(two_point_rul(time[:i + 1][window], condition[:i + 1][window]), horizon)))
    return Evaluation(*map(np.array, zip(*results)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('train', 'evaluate'):
        command = commands.add_parser(name)
        command.add_argument('--data', type=Path, required=True)
        command.add_argument('--model', type=Path, required=True, help='model file (JSON)')
        for column in ('unit', 'time', 'rul', 'wear'):
            command.add_argument(f'--{column}-column', default=column)
    train = commands.choices['train']
    train.add_argument('--features', help='comma-separated feature columns (default: all others)')
    train.add_argument('--window', type=float,
                       help='time span of the trend fit (default: a quarter of the longest unit history)')
    commands.choices['evaluate'].add_argument('--points', type=int, default=20, help='estimates per unit')
    arguments = parser.parse_args(argv)
    columns = dict(unit_column=arguments.unit_column, time_column=arguments.time_column,
                   rul_column=arguments.rul_column, wear_column=arguments.wear_column)
    if arguments.command == 'train':
        table = read_table(arguments.data, features=arguments.features.split(',') if arguments.features else None,
                           **columns)
        known = np.isfinite(table.wear)
        if not known.any():
            parser.error(f'{arguments.data}: no rows with a wear state in column {arguments.wear_column!r}')
        if np.any((table.wear[known] < 0.0) | (table.wear[known] > 1.0)):
            parser.error(f'{arguments.data}: {arguments.wear_column!r} must be in [0, 1] (0 new, 1 failure threshold)')
        model = RulModel.fit(table.features, table.units[known], table.values[known], table.wear[known],
                             arguments.window or default_window(table))
        model.save(arguments.model)
        print(f'trained on {known.sum()} rows of {len(np.unique(table.units[known]))} units '
              f'(index error {model.index_std:.3f}, window {model.window:.4g}); model in {arguments.model}')
    else:
        model = RulModel.load(arguments.model)
        table = read_table(arguments.data, features=model.features, **columns)
        print(evaluate(model, table, arguments.points).summary())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
