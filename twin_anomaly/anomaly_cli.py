"""twin_anomaly: fit, score and evaluate anomaly detectors on a multivariate time-series CSV.

The CSV has a header, a time column (seconds, or ISO 8601 date-times such as
``2024-03-01T12:00:00.25``; naive ones are read as UTC), numeric sensor columns and optionally a
0/1 label column (1 = anomalous; ``label`` unless ``--label-column`` says otherwise), which is never
fitted as a sensor. Examples::

    twin_anomaly fit --data normal.csv --model models/anomaly --urdf config/arm.urdf
    twin_anomaly score --data run.csv --model models/anomaly --out scores.csv
    twin_anomaly evaluate --data faults.csv --model models/anomaly --label-column label
    twin_anomaly frames --bag run1 --out frames.csv   # twin/synced_frame of a twin_record bag
    twin_anomaly generate --out bench/anomaly --seed 0   # a labelled benchmark (fit.csv, test.csv)

Rows more than ``gap_steps`` sample periods apart, or going back in time, belong to different
stretches (files, experiments): each stretch is scored from its own start.
"""
from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin_anomaly.metrics import EventScores, event_scores
from twin_anomaly.settings import DEFAULT_METHODS, METHODS, DetectorSettings
from twin_core.channels import Series, read_csv, write_csv
from twin_core.cli import run_command
from twin_core.progress import progress_bar

if TYPE_CHECKING:  # the models import torch and scikit-learn: only the commands that need them do
    from twin_anomaly.anomaly import AnomalyModel

TWIN_FRAME_RATE_HZ = 100.0  # the twin's frames: the default durations are the node's frame counts
DURATIONS = {  # option: (help, fewest frames); given in s, counted in frames of the data's rate
    'window': ('s of the local linear prediction of each sensor', 2),
    'gap': ('s between that window and the predicted sample', 0),
    'min_run': ('s: shortest run of repeated or missing values that can alarm', 1),
    'debounce': ('s above threshold before an alarm rises', 1),
    'clear': (f's below {DetectorSettings.clear_ratio} x threshold before an alarm clears', 1),
    'conv_window': ('s of the convolutional autoencoder\'s window (rounded to a multiple of 4 samples)', 4),
}
FIT_OPTIONS = {
    'target_far': 'fraction of held-out normal samples allowed above each raw threshold (0..1)',
    'holdout': 'fraction of the normal samples (the end of each of up to 8 blocks in time) kept out of '
               'fitting to calibrate the thresholds (0..1; 0: calibrate on the fitted samples)',
    'margin': 'alarm threshold = margin x the calibrated quantile',
    'seed': 'random seed of the multivariate models',
}


def sample_rate(series: Series) -> float:
    """Samples per second: the inverse of the median step between increasing times."""
    steps = np.diff(series.time)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ValueError('cannot infer the sampling rate: the time column never increases')
    return float(1.0 / np.median(steps))


def frame_counts(arguments: argparse.Namespace, rate_hz: float) -> dict[str, int]:
    """The duration options as frame counts at ``rate_hz`` (at least each one's fewest)."""
    counts = {option: max(fewest, round(getattr(arguments, option) * rate_hz))
              for option, (_, fewest) in DURATIONS.items()}
    counts['conv_window'] = 4 * max(1, round(counts['conv_window'] / 4))
    return counts


def _models() -> Any:
    """The model module (imports torch and scikit-learn), one thread for torch."""
    import torch

    from twin_anomaly import anomaly
    torch.set_num_threads(1)
    return anomaly


def detect(model: AnomalyModel, series: Series, batch: int = 0) -> np.ndarray:
    """Alarm state per frame and score, fed in blocks of ``batch`` frames (0: one block); each
    contiguous stretch of the series by its own detector.
    """
    from twin_anomaly.features import stretches
    models = _models()
    alarms = [np.zeros((0, len(model.score_names)), dtype=bool)]
    for start, end in stretches(series.time, model.settings.gap_steps):
        detector = models.OnlineDetector(model)
        step = batch or end - start
        alarms += [detector.process(series.time[i:min(i + step, end)], series.values[i:min(i + step, end)])[0]
                   for i in range(start, end, step)]
    return np.vstack(alarms)


def method_alarms(model: AnomalyModel, alarms: np.ndarray) -> dict[str, np.ndarray]:
    """Any-score alarms per method (``robust`` = all per-sensor scores) and for all together."""
    names = model.score_names
    groups = {'all': alarms.any(axis=1)}
    for method in model.settings.methods:
        robust = method == 'robust'
        columns = [j for j, name in enumerate(names)
                   if (not name.startswith('multivariate/') if robust else name == f'multivariate/{method}')]
        groups[method] = alarms[:, columns].any(axis=1)
    return groups


def evaluate(model: AnomalyModel, series: Series, tolerance: float = 0.0,
             ignore: np.ndarray | None = None) -> dict[str, EventScores]:
    """Event-wise scores of each method and of the fixed-threshold baseline."""
    alarms = method_alarms(model, detect(model, series))
    alarms['baseline'] = _models().range_alarms(model, series.values)
    alarms['always alarm'] = np.ones(len(series.time), dtype=bool)
    return {name: event_scores(series.time, series.labels, alarm, tolerance, ignore)
            for name, alarm in alarms.items()}


def _load(arguments: argparse.Namespace, model: AnomalyModel | None = None, path: Path | None = None,
          names: Sequence[str] | None = None) -> Series:
    columns = names or (model.names if model else (arguments.columns.split(',') if arguments.columns else None))
    return read_csv(path or arguments.data, arguments.time_column, arguments.label_column, columns,
                    label_required=arguments.command == 'evaluate')


def _fit(arguments: argparse.Namespace) -> int:
    series = _load(arguments)
    for extra in arguments.data_also:
        more = _load(arguments, path=extra, names=series.names)
        series = Series(np.concatenate([series.time, more.time]), series.names,
                        np.vstack([series.values, more.values]),
                        None if series.labels is None else np.concatenate([series.labels, more.labels]))
    if series.labels is not None:
        series = series.rows(series.labels == 0)
    rate = sample_rate(series)
    frames = frame_counts(arguments, rate)
    print(f'sampled at {rate:.4g} Hz: ' + ', '.join(f'{option} {count} samples' for option, count in frames.items()))
    settings = DetectorSettings(methods=tuple(arguments.methods), **frames,
                                **{option: getattr(arguments, option) for option in FIT_OPTIONS})
    started = time.perf_counter()
    from twin_core.kinematics import ArmKinematics
    kinematics = ArmKinematics.from_urdf(arguments.urdf) if arguments.urdf else None
    with (progress_bar(settings.autoencoder_epochs, 'autoencoder', 'epoch')
          if 'autoencoder' in settings.methods else nullcontext()) as epochs:
        model = _models().AnomalyModel.fit(series, settings, kinematics, epochs)
    model.save(arguments.model)
    print(f'fitted {len(series.names)} channels on {len(series.time)} rows in '
          f'{time.perf_counter() - started:.1f} s; model in {arguments.model}')
    return 0


def _score(arguments: argparse.Namespace) -> int:
    model = _models().AnomalyModel.load(arguments.model)
    series = _load(arguments, model)
    alarms = detect(model, series, arguments.batch)
    names = model.score_names
    with open(arguments.out, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(['time', 'alarm', 'alarmed_scores'])
        for t, row in zip(series.time, alarms):
            writer.writerow([f'{t:.6f}', int(row.any()), ';'.join(names[j] for j in np.flatnonzero(row))])
    print(f'{int(alarms.any(axis=1).sum())} of {len(series.time)} rows in alarm; scores in {arguments.out}')
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    model = _models().AnomalyModel.load(arguments.model)
    series = _load(arguments, model)
    for name, scores in evaluate(model, series, arguments.tolerance).items():
        print(f'{name:12s} {scores.summary()}')
    return 0


def _frames(arguments: argparse.Namespace) -> int:
    from twin_anomaly.bag_frames import bag_series
    series = bag_series(arguments.bag)
    write_csv(arguments.out, series)
    faulty = 'no truth' if series.labels is None else f'{int(series.labels.sum())} labelled faulty'
    print(f'{len(series.time)} frames x {len(series.names)} channels ({faulty}) into {arguments.out}')
    return 0


def _generate(arguments: argparse.Namespace) -> int:
    from twin_anomaly.benchmark import write_benchmark
    files = write_benchmark(arguments.out, arguments.experiments, arguments.seed)
    print(f'{files.experiments} experiments: {files.fit_rows} normal rows to fit in {files.fit}, '
          f'{files.test_rows} rows ({files.anomalous_rows} anomalous, {files.events} anomalies) in {files.test}')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='twin_anomaly', description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    for name, handler in (('fit', _fit), ('score', _score), ('evaluate', _evaluate)):
        command = commands.add_parser(name)
        command.set_defaults(handler=handler)
        command.add_argument('--data', type=Path, required=True, help='CSV file')
        command.add_argument('--model', type=Path, required=True, help='model directory')
        command.add_argument('--time-column', default='time',
                             help='seconds or ISO 8601 date-times (default: %(default)s)')
        command.add_argument('--label-column', default='label', help=(
            '0/1 column, 1 = anomalous (default: %(default)s; never a sensor; fit leaves labelled '
            'rows out, evaluate needs it)'))
    fit = commands.choices['fit']
    fit.add_argument('--columns', help='comma-separated sensor columns (default: every numeric one)')
    fit.add_argument('--data-also', type=Path, nargs='*', default=[], metavar='CSV',
                     help='more normal data (same columns), e.g. frames recorded through the live data path')
    fit.add_argument('--methods', type=_methods, default=DEFAULT_METHODS, metavar='M[,M...]',
                     help=f'comma-separated, among {", ".join(METHODS)} (default: {",".join(DEFAULT_METHODS)}; '
                          'iforest only on request: its bounded score leaves faults little room above '
                          'its threshold)')
    fit.add_argument('--urdf', type=Path, help='arm description: adds the IMU gyro\'s kinematic residual')
    defaults = DetectorSettings()
    for option, (text, _) in DURATIONS.items():
        fit.add_argument(f'--{option.replace("_", "-")}', type=float,
                         default=getattr(defaults, option) / TWIN_FRAME_RATE_HZ, help=f'{text} (default: %(default)s)')
    for option, text in FIT_OPTIONS.items():
        value = getattr(defaults, option)
        fit.add_argument(f'--{option.replace("_", "-")}', type=type(value), default=value,
                         help=f'{text} (default: %(default)s)')
    frames = commands.add_parser('frames', help='CSV of the synchronized frames in a twin_record bag')
    frames.set_defaults(handler=_frames)
    frames.add_argument('--bag', type=Path, required=True)
    frames.add_argument('--out', type=Path, required=True)
    generate = commands.add_parser('generate', help=(
        'a labelled benchmark: experiments of simulated drive units (unit variation, payload and speed '
        'regimes, sensor noise and drift) at 1 Hz with anomalies of several types; fit.csv holds the normal '
        'start of each experiment, test.csv the rest'))
    generate.set_defaults(handler=_generate)
    generate.add_argument('--out', type=Path, required=True, help='directory')
    generate.add_argument('--experiments', type=int, default=40, help='experiments (default: %(default)s)')
    generate.add_argument('--seed', type=int, default=0, help='random seed (default: %(default)s)')
    commands.choices['score'].add_argument('--out', type=Path, required=True)
    commands.choices['score'].add_argument('--batch', type=int, default=0, help='frames per block (0: all)')
    commands.choices['evaluate'].add_argument('--tolerance', type=float, default=0.0,
                                              help='s after an event that still count as detecting it')
    arguments = parser.parse_args(argv)
    return run_command(parser, arguments, arguments.handler)


def _methods(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip() for m in text.split(',') if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f'{text!r}: choose among {", ".join(METHODS)}')
    return methods


if __name__ == '__main__':
    raise SystemExit(main())
