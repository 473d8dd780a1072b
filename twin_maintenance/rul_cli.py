"""twin_rul: train and evaluate remaining-useful-life estimation on run-to-failure data.

Long-format CSV: one row per unit and time (or cycle), feature columns, the normalized wear
state in a ``wear`` column (0 new .. 1 failure threshold; the training target, needed to train)
and the remaining life in a ``rul`` column (same unit as the time column; empty where unknown;
needed to evaluate). Examples::

    twin_rul train --data train.csv --model rul.json
    twin_rul evaluate --data test.csv --model rul.json --at last --predictions per_unit.csv
"""
from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from twin_core.cli import run_command
from twin_maintenance.rul import RulModel, nasa_score, two_point_rul

COLUMNS = {
    'unit': 'unit (machine) id',
    'time': 'time or cycle, increasing per unit',
    'rul': 'remaining life in time units; empty where unknown (evaluate)',
    'wear': 'normalized wear, 0 new .. 1 failure threshold (the training target)',
}


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
    units: list[str] = field(default_factory=list)  # of each prediction
    times: list[float] = field(default_factory=list)

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

    def number(row: int, column: str) -> float:
        text = rows[row].get(column)
        if text in ('', None):
            return math.nan
        try:
            return float(text)
        except ValueError:
            raise ValueError(f'{path}: row {row + 2}: {column} {text!r} is not a number') from None

    def numbers(column: str) -> np.ndarray:
        return np.array([number(row, column) for row in range(len(rows))])
    units = np.array([row[unit_column] for row in rows])
    time = numbers(time_column)
    if not np.isfinite(time).all():
        raise ValueError(f'{path}: row {int(np.argmin(np.isfinite(time))) + 2}: no {time_column}')
    order = np.lexsort((time, units))
    values = np.column_stack([numbers(name) for name in names]) if names else np.empty((len(rows), 0))
    rul, wear = numbers(rul_column), numbers(wear_column)
    return Table(units[order], time[order], names, values[order], rul[order], wear[order])


def default_window(table: Table) -> float:
    """Trend span: a quarter of the longest unit history."""
    return 0.25 * max(float(np.ptp(table.time[table.units == unit])) for unit in np.unique(table.units))


def evaluate(model: RulModel, table: Table, points: int = 20, last: bool = False,
             calibrated_units: bool = False) -> Evaluation:
    """Estimate at the last row of known RUL per unit (``last``, the field's usual test: each
    test unit cut before failure) or at up to ``points`` evenly spread ones, the last included.
    Point predictions beyond the longest remaining life in the table (no decline measurable)
    count as that life, for the model and the baseline alike. Units get the pooled condition
    index unless ``calibrated_units`` (the evaluated units are the very ones trained on).
    """
    known_rul = np.isfinite(table.rul)
    if not known_rul.any():
        raise ValueError('no row with a known remaining life to evaluate against')
    horizon = float(np.nanmax(table.rul))
    results = []
    for unit in np.unique(table.units):
        rows = np.flatnonzero(table.units == unit)
        time = table.time[rows]
        condition = model.condition(table.values[rows], str(unit) if calibrated_units else None)
        known = np.flatnonzero(known_rul[rows])
        known = known[known >= 3]
        if last:
            chosen = known[-1:]
        else:
            chosen = known[np.unique(np.linspace(len(known) - 1, 0, min(points, len(known))).astype(int))]
        for i in chosen:
            estimate = model.estimate(time[:i + 1], condition[:i + 1])
            window = time[:i + 1] >= time[i] - model.window
            results.append((unit, time[i], table.rul[rows][i], min(estimate.median, horizon), estimate.low,
                            estimate.high, min(two_point_rul(time[:i + 1][window], condition[:i + 1][window]),
                                               horizon)))
    if not results:
        raise ValueError('no unit has four rows up to a known remaining life')
    units, times, *columns = zip(*results)
    return Evaluation(*map(np.array, columns), units=list(units), times=list(times))


def write_predictions(path: Path, evaluation: Evaluation) -> None:
    """One row per estimate: unit, time, true and predicted RUL, 80 % interval, naive baseline."""
    with open(path, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow(['unit', 'time', 'rul_true', 'rul_predicted', 'rul_low', 'rul_high', 'rul_naive'])
        for row in zip(evaluation.units, evaluation.times, evaluation.true, evaluation.predicted,
                       evaluation.low, evaluation.high, evaluation.naive):
            writer.writerow([row[0], f'{row[1]:.6g}', *(f'{v:.6g}' for v in row[2:])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='twin_rul', description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('train', 'evaluate'):
        command = commands.add_parser(name)
        command.add_argument('--data', type=Path, required=True)
        command.add_argument('--model', type=Path, required=True, help='model file (JSON)')
        for column, text in COLUMNS.items():
            command.add_argument(f'--{column}-column', default=column, help=f'{text} (default: %(default)s)')
    train = commands.choices['train']
    train.add_argument('--features', help='comma-separated feature columns (default: all others)')
    train.add_argument('--window', type=float,
                       help='time span of the trend fit (default: a quarter of the longest unit history)')
    evaluation = commands.choices['evaluate']
    evaluation.add_argument('--at', choices=('last', 'spread'), default='spread', help=(
        'last: one estimate per unit at its last row of known RUL (test units cut before failure); '
        'spread: --points estimates per unit, the last included (default: %(default)s)'))
    evaluation.add_argument('--points', type=int, default=20, help='estimates per unit with --at spread')
    evaluation.add_argument('--predictions', type=Path, help='CSV of every estimate (unit, time, truth, interval)')
    evaluation.add_argument('--calibrated-units', action='store_true', help=(
        "the evaluated units are the trained ones: use each unit's own calibration (default: the "
        'pooled index, as for any unit the model has not seen)'))
    arguments = parser.parse_args(argv)
    return run_command(parser, arguments, partial(_run, parser=parser))


def _run(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
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
        result = evaluate(model, table, arguments.points, arguments.at == 'last', arguments.calibrated_units)
        print(result.summary())
        if arguments.predictions:
            write_predictions(arguments.predictions, result)
            print(f'{len(result.true)} predictions in {arguments.predictions}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
