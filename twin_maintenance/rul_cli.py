"""twin_rul: train and evaluate remaining-useful-life estimation on run-to-failure data.

Long-format CSV: one row per unit and time (or cycle), feature columns, the normalized wear
state in a ``wear`` column (0 new .. 1 failure threshold; the curve method's training target)
and the remaining life in a ``rul`` column (same unit as the time column; empty where unknown;
the supervised method's training target, and the truth to evaluate against unless ``--truth``
gives it per unit). Two methods: ``curve`` (a condition index learned from the wear state,
extrapolated per unit; model file JSON) and ``supervised`` (remaining life learned from the
sensors' recent windows, per operating regime given by ``--settings`` columns, with conformal
intervals; model directory). Examples::

    twin_rul train --data train.csv --model rul.json
    twin_rul evaluate --data test.csv --model rul.json --at last --predictions per_unit.csv
    twin_rul generate --out fleet --seed 0
    twin_rul train --method supervised --data fleet/train.csv --settings payload,speed --model fleet/model
    twin_rul evaluate --data fleet/test.csv --truth fleet/test_rul.csv --model fleet/model --at last
"""
from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from twin_core.cli import run_command
from twin_maintenance.rul import RulModel, nasa_score, rmse, two_point_rul

if TYPE_CHECKING:
    from twin_maintenance.supervised import Runs

COLUMNS = {
    'unit': 'unit (machine) id',
    'time': 'time or cycle, increasing per unit',
    'rul': 'remaining life in time units; empty where unknown (the supervised target; evaluate)',
    'wear': "normalized wear, 0 new .. 1 failure threshold (the curve method's target)",
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

    def summary(self) -> str:
        inside = np.mean((self.low <= self.true) & (self.true <= self.high))
        return (f'{len(self.true)} predictions: RMSE {rmse(self.predicted, self.true):.1f}  '
                f'NASA score {nasa_score(self.predicted, self.true):.1f}  80 % interval coverage {inside:.2f}  |  '
                f'naive two-point: RMSE {rmse(self.naive, self.true):.1f}  '
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


def pick(known: np.ndarray, points: int, last: bool) -> np.ndarray:
    """Of one unit's rows of known RUL (in time order), the last or up to ``points`` evenly
    spread ones, the last included.
    """
    if last:
        return known[-1:]
    return known[np.unique(np.linspace(len(known) - 1, 0, min(points, len(known))).astype(int))]


def with_truth(table: Table, path: Path) -> Table:
    """``table`` with the remaining life of each unit's last row from ``path`` (CSV ``unit, rul``:
    the truth of test units cut before failure) and no other.
    """
    with open(path, newline='', encoding='utf-8') as stream:
        rows = list(csv.DictReader(stream))
    if not rows or not {'unit', 'rul'} <= set(rows[0]):
        raise ValueError(f'{path}: expected the columns unit, rul')
    try:
        truth = {row['unit']: float(row['rul']) for row in rows}
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None
    missing = sorted(set(table.units) - set(truth))
    if missing:
        raise ValueError(f'{path}: no remaining life of unit {", ".join(missing[:5])}')
    rul = np.full(len(table.units), math.nan)
    last = np.r_[table.units[1:] != table.units[:-1], True]
    rul[last] = [truth[unit] for unit in table.units[last]]
    return Table(table.units, table.time, table.features, table.values, rul, table.wear)


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
        for i in pick(known[known >= 3], points, last):
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


def runs_of(table: Table, settings: Sequence[str]) -> Runs:
    """The table's rows as unit histories: the settings columns apart from the sensors."""
    from twin_maintenance.supervised import Runs
    missing = [c for c in settings if c not in table.features]
    if missing:
        raise ValueError(f'no settings column {", ".join(missing)} (columns: {", ".join(table.features)})')
    setting = [table.features.index(c) for c in settings]
    sensor = [j for j in range(len(table.features)) if j not in setting]
    bad = np.argwhere(~np.isfinite(table.values))
    if len(bad):
        row, column = bad[0]
        raise ValueError(f'unit {table.units[row]} at time {table.time[row]:g}: no {table.features[column]} '
                         '(the supervised method needs every value)')
    return Runs(table.units, table.time, table.values[:, sensor], table.values[:, setting])


def supervised_report(true: np.ndarray, predictions: dict[str, np.ndarray], low: np.ndarray, high: np.ndarray,
                      chosen: str, coverage: float) -> str:
    """One line per predictor: RMSE, NASA score; the chosen model also its interval's coverage and width."""
    header = f'{"model":44s} {"RMSE":>7s} {"NASA score":>11s} {f"{coverage:.0%} coverage":>13s} {"mean width":>11s}'
    lines = [header]
    for name, predicted in predictions.items():
        extra = (f'{np.mean((low <= true) & (true <= high)):13.2f} {np.mean(high - low):11.1f}' if name == chosen
                 else f'{"-":>13s} {"-":>11s}')
        lines.append(f'{name:44s} {rmse(predicted, true):7.1f} {nasa_score(predicted, true):11.4g} {extra}')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='twin_rul', description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('train', 'evaluate'):
        command = commands.add_parser(name)
        command.add_argument('--data', type=Path, required=True)
        command.add_argument('--model', type=Path, required=True,
                             help='model file (JSON; curve method) or directory (supervised method)')
        for column, text in COLUMNS.items():
            command.add_argument(f'--{column}-column', default=column, help=f'{text} (default: %(default)s)')
    train = commands.choices['train']
    train.add_argument('--method', choices=('curve', 'supervised'), default='curve', help=(
        'curve: condition index from the wear column, trend per unit; supervised: remaining life learned '
        'from the rul column (default: %(default)s)'))
    train.add_argument('--features', help='comma-separated feature (sensor) columns (default: all others)')
    train.add_argument('--window', type=float, help=(
        'curve: time span of the trend fit (default: a quarter of the longest unit history); '
        'supervised: rows of a unit each prediction looks back over (default: 30)'))
    train.add_argument('--settings', default='', help=(
        'supervised: comma-separated operating-settings columns (load, speed, ...); sensors are normalised '
        'per regime of them (default: none, one regime)'))
    train.add_argument('--regimes', type=int, help=(
        'supervised: KMeans clusters of the settings (default: their distinct values when at most 20, else 6)'))
    train.add_argument('--cap', default='auto', help=(
        'supervised: remaining-life cap of the target in time units, "none", or "auto": chosen on the '
        'validation units among none and 0.5, 0.75, 1 x the median training life (default: %(default)s)'))
    train.add_argument('--models', default='boosting,cnn', help=(
        'supervised: candidates, comma-separated, of boosting (gradient boosting on window features) and cnn '
        '(1-D CNN over the window); the one with the lower validation RMSE is kept (default: %(default)s)'))
    train.add_argument('--coverage', type=float, default=0.8, help='supervised: interval coverage (default: 0.8)')
    train.add_argument('--epochs', type=int, default=30, help='supervised: CNN epochs (default: %(default)s)')
    train.add_argument('--time-limit', type=float, default=90.0,
                       help=('supervised: time limit in s of each CNN training (a candidate, then 5 folds) '
                             '(default: %(default)s)'))
    train.add_argument('--seed', type=int, default=0, help='supervised: unit split and training seed')
    evaluation = commands.choices['evaluate']
    evaluation.add_argument('--at', choices=('last', 'spread'), default='spread', help=(
        'last: one estimate per unit at its last row of known RUL (test units cut before failure); '
        'spread: --points estimates per unit, the last included (default: %(default)s)'))
    evaluation.add_argument('--points', type=int, default=20, help='estimates per unit with --at spread')
    evaluation.add_argument('--truth', type=Path, help=(
        'CSV unit, rul: remaining life at each unit\'s last row (time units), for data without a rul column'))
    evaluation.add_argument('--predictions', type=Path, help='CSV of every estimate (unit, time, truth, interval)')
    evaluation.add_argument('--calibrated-units', action='store_true', help=(
        "curve method: the evaluated units are the trained ones: use each unit's own calibration (default: "
        'the pooled index, as for any unit the model has not seen)'))
    generate = commands.add_parser('generate', help='write the fleet benchmark (train.csv, test.csv, test_rul.csv)')
    generate.add_argument('--out', type=Path, required=True, help='directory of the files')
    generate.add_argument('--train-units', type=int, default=100, help='units run to failure (default: 100)')
    generate.add_argument('--test-units', type=int, default=100,
                          help='units cut at a random cycle before failure (default: 100)')
    generate.add_argument('--seed', type=int, default=0, help='seed of the whole fleet (default: %(default)s)')
    arguments = parser.parse_args(argv)
    return run_command(parser, arguments, partial(_run, parser=parser))


def _run(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if arguments.command == 'generate':
        from twin_maintenance.fleet_data import write_fleet
        if min(arguments.train_units, arguments.test_units) < 1:
            parser.error('--train-units and --test-units must be at least 1')
        files = write_fleet(arguments.out, arguments.train_units, arguments.test_units, arguments.seed)
        print(f'{arguments.train_units} units run to failure in {files.train}, {arguments.test_units} cut before '
              f'failure in {files.test}, their remaining life in {files.truth}')
        return 0
    columns = dict(unit_column=arguments.unit_column, time_column=arguments.time_column,
                   rul_column=arguments.rul_column, wear_column=arguments.wear_column)
    if arguments.command == 'train' and arguments.method == 'supervised':
        return _train_supervised(arguments, parser, columns)
    if arguments.command == 'evaluate' and arguments.model.is_dir():
        return _evaluate_supervised(arguments, columns)
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
        if arguments.truth:
            table = with_truth(table, arguments.truth)
        result = evaluate(model, table, arguments.points, arguments.at == 'last', arguments.calibrated_units)
        print(result.summary())
        if arguments.predictions:
            write_predictions(arguments.predictions, result)
            print(f'{len(result.true)} predictions in {arguments.predictions}')
    return 0


def _train_supervised(arguments: argparse.Namespace, parser: argparse.ArgumentParser, columns: dict[str, str]) -> int:
    from twin_maintenance.supervised import MODELS, FitOptions, SupervisedRul, cap_text
    settings = [c for c in arguments.settings.split(',') if c]
    models = tuple(m for m in arguments.models.split(',') if m)
    if not models or set(models) - set(MODELS):
        parser.error(f'--models: comma-separated of {", ".join(MODELS)}, not {arguments.models!r}')
    cap: float | str = arguments.cap
    if cap not in ('auto', 'none'):
        try:
            cap = float(arguments.cap)
        except ValueError:
            parser.error(f'--cap: a remaining life, "none" or "auto", not {arguments.cap!r}')
        if not cap > 0:
            parser.error('--cap must be positive')
    if not 0.0 < arguments.coverage < 1.0:
        parser.error('--coverage must be between 0 and 1')
    window = int(arguments.window or 30)
    if window < 1:
        parser.error('--window must be at least 1 row')
    features = arguments.features.split(',') + settings if arguments.features else None
    table = read_table(arguments.data, features=features, **columns)
    known = np.isfinite(table.rul)
    if not known.any():
        parser.error(f'{arguments.data}: no rows with a remaining life in column {arguments.rul_column!r}')
    runs = runs_of(table, settings).subset(np.flatnonzero(known))
    options = FitOptions(window=window, cap=cap, models=models,
                         coverage=arguments.coverage, clusters=arguments.regimes, epochs=arguments.epochs,
                         time_limit=arguments.time_limit, seed=arguments.seed)
    sensors = tuple(f for f in table.features if f not in settings)
    model = SupervisedRul.fit(runs, table.rul[known], sensors, settings, options)
    model.save(arguments.model)
    print(f'trained on {known.sum()} rows of {len(np.unique(runs.units))} units, {len(model.regimes.centers)} '
          f'regimes; kept {model.kind}, cap {cap_text(model.cap)}; model in {arguments.model}')
    return 0


def _evaluate_supervised(arguments: argparse.Namespace, columns: dict[str, str]) -> int:
    from twin_maintenance.supervised import BASELINE_NAMES, SupervisedRul, cap_text
    model = SupervisedRul.load(arguments.model)
    table = read_table(arguments.data, features=model.sensors + model.settings, **columns)
    if arguments.truth:
        table = with_truth(table, arguments.truth)
    known = np.isfinite(table.rul)
    if not known.any():
        raise ValueError('no row with a known remaining life to evaluate against')
    runs = runs_of(table, model.settings)
    rows = np.concatenate([pick(np.flatnonzero(known & (table.units == unit)), arguments.points,
                                arguments.at == 'last') for unit in np.unique(table.units)])
    predicted = model.predict(runs, rows)
    low, high = model.conformal.interval(predicted)
    baselines = model.baselines.predict(runs, rows)
    chosen = (f'supervised {model.kind} ({"regimes, " if model.settings else ""}'
              f'cap {cap_text(model.cap)})')
    predictions = {BASELINE_NAMES[name]: values for name, values in baselines.items()} | {chosen: predicted}
    true = table.rul[rows]
    where = 'at its last row of known RUL' if arguments.at == 'last' else f'at up to {arguments.points} rows'
    print(f'{len(np.unique(table.units[rows]))} units, {len(rows)} predictions ({where}; RUL in time units)')
    print(supervised_report(true, predictions, low, high, chosen, model.conformal.coverage))
    if arguments.predictions:
        with open(arguments.predictions, 'w', newline='', encoding='utf-8') as stream:
            writer = csv.writer(stream)
            writer.writerow(['unit', 'time', 'rul_true', 'rul_predicted', 'rul_low', 'rul_high',
                             *(f'rul_{name}' for name in baselines)])
            for i, row in enumerate(rows):
                writer.writerow([table.units[row], f'{table.time[row]:.6g}',
                                 *(f'{v[i]:.6g}' for v in (true, predicted, low, high, *baselines.values()))])
        print(f'{len(rows)} predictions in {arguments.predictions}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
