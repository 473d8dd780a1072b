"""Anomaly detectors against the fixed-range and always-alarm baselines, in one run.

(a) The generic-CSV benchmark (``twin_anomaly generate``: drive units at 1 Hz, unit variation,
payload × speed regimes, seven anomaly types), fitted and evaluated through ``twin_anomaly fit`` and
``evaluate``'s own code with the durations below (chosen on another seed than the reported one).
(b) The simulator's labelled fault run and a fresh 1 h nominal run (``bench_analytics``'s
``fault_suite`` and ``nominal_test``), with a model fitted as ``bench_analytics`` fits one on
``nominal_train``. Per method: pointwise F1, false-alarm rate (FAR: fraction of normal frames in
alarm) and missed-alarm rate (MAR), anomalies found, false alarms per hour (alarmed stretches
outside every anomaly) and the time in alarm outside them; whether the default detector (``all``)
beats both baselines (higher F1, lower FAR). The isolation forest, not in the default method set,
is fitted on its own and measured on the same data. Also the convolutional autoencoder's cost per
frame scored live (blocks of the anomaly node's ``batch_frames``).

    python bench/bench_anomaly.py [--seed 0] [--data out/anomaly_bench] [--analytics out/analytics]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analytics import ensure, only  # noqa: E402

from twin_anomaly.anomaly import AnomalyModel, OnlineDetector  # noqa: E402
from twin_anomaly.anomaly_cli import evaluate  # noqa: E402
from twin_anomaly.anomaly_cli import main as twin_anomaly  # noqa: E402
from twin_anomaly.config import AnomalyConfig  # noqa: E402
from twin_anomaly.metrics import EventScores  # noqa: E402
from twin_anomaly.settings import DetectorSettings  # noqa: E402
from twin_core.channels import read_csv  # noqa: E402
from twin_core.kinematics import ArmKinematics  # noqa: E402
from twin_core.urdf import urdf_file  # noqa: E402

# twin_anomaly fit options for the 1 Hz benchmark (durations in s), chosen on seed 1
GENERIC_FIT = ['--window', '10', '--gap', '0', '--min-run', '5', '--debounce', '2', '--clear', '1',
               '--conv-window', '32']


IFOREST_NOTE = ('not in the default set: its bounded score saturates just above its held-out threshold, '
                'so faults have no room above it while a fresh normal run crosses it')


def table(title: str, scores: dict[str, EventScores]) -> None:
    print(f'\n{title}')
    print(f'  {"method":14s} {"F1":>6s} {"FAR":>9s} {"MAR":>6s} {"found":>8s} {"false/h":>8s} {"s outside":>9s}')
    for name, s in scores.items():
        print(f'  {name:14s} {s.pointwise_f1:6.3f} {s.pointwise_far:9.2e} {s.pointwise_missed:6.3f} '
              f'{s.detected:4d}/{s.events:<3d} {s.false_alarms_per_hour:8.2f} {s.false_alarm_seconds:9.0f}')
    if 'all' in scores and scores['all'].events:
        print(f'  default detector (all) beats both baselines: {"yes" if beats_baselines(scores) else "NO"}')


def beats_baselines(scores: dict[str, EventScores]) -> bool:
    """``all`` has a higher pointwise F1 and a lower pointwise FAR than the fixed-range baseline and
    than always-alarm.
    """
    best = scores['all']
    return all(best.pointwise_f1 > scores[b].pointwise_f1 and best.pointwise_far < scores[b].pointwise_far
               for b in ('baseline', 'always alarm'))


def iforest_row(title: str, scores: dict[str, EventScores]) -> None:
    """The isolation forest fitted on its own, on the same data as the table above."""
    table(f'{title}: isolation forest ({IFOREST_NOTE})', {'iforest': scores['iforest']})


def generic(data: Path, seed: int) -> None:
    directory = data / f'seed_{seed}'
    twin_anomaly(['generate', '--out', str(directory), '--seed', str(seed)])
    started = time.perf_counter()
    twin_anomaly(['fit', '--data', str(directory / 'fit.csv'), '--model', str(directory / 'model'), *GENERIC_FIT])
    print(f'fit + calibration {time.perf_counter() - started:.1f} s')
    model = AnomalyModel.load(directory / 'model')
    test = read_csv(directory / 'test.csv', label_column='label', columns=model.names)
    title = (f'(a) generic CSV benchmark, seed {seed}: {len(test.time)} test rows at 1 Hz, '
             f'{int(test.labels.sum())} anomalous')
    table(title, evaluate(model, test))
    twin_anomaly(['fit', '--data', str(directory / 'fit.csv'), '--model', str(directory / 'iforest'), *GENERIC_FIT,
                  '--methods', 'iforest'])
    iforest_row(title, evaluate(AnomalyModel.load(directory / 'iforest'), test))


def simulator(analytics: Path) -> AnomalyModel:
    train = read_csv(ensure(analytics, 'nominal_train') / 'frames.csv', label_column='label')
    started = time.perf_counter()
    model = AnomalyModel.fit(train, kinematics=ArmKinematics.from_urdf(urdf_file()))
    print(f'\nsimulator model: {len(train.time)} frames x {len(train.names)} channels fitted in '
          f'{time.perf_counter() - started:.1f} s')
    forest = AnomalyModel.fit(train, DetectorSettings(methods=('iforest',)))
    suite = read_csv(ensure(analytics, 'fault_suite') / 'frames.csv', label_column='label', columns=model.names)
    nominal = read_csv(ensure(analytics, 'nominal_test') / 'frames.csv', label_column='label', columns=model.names)
    for title, series in ((f'(b) simulator fault suite: {len(suite.time)} frames at 100 Hz, '
                           f'{int(suite.labels.sum())} faulty', suite),
                          (f'(b) simulator nominal run (fresh seed), {nominal.time[-1] / 3600:.2f} h', nominal)):
        table(title, evaluate(model, series))
        iforest_row(title, evaluate(forest, series))
    return model


def cost(model: AnomalyModel, analytics: Path) -> None:
    """µs per frame of the convolutional autoencoder alone and of the whole model, scored live."""
    nominal = read_csv(ensure(analytics, 'nominal_test') / 'frames.csv', label_column='label', columns=model.names)
    batch = AnomalyConfig().batch_frames
    print(f'\nlive scoring cost, blocks of {batch} frames (the anomaly node\'s batch_frames), 1 torch thread:')
    for name, scored in (('convolutional', only(model, 'convolutional')), ('autoencoder', only(model, 'autoencoder')),
                         ('all', model)):
        detector, frames = OnlineDetector(scored), 20000
        started = time.perf_counter()
        for i in range(0, frames, batch):
            detector.process(nominal.time[i:i + batch], nominal.values[i:i + batch])
        print(f'  {name:14s} {(time.perf_counter() - started) / frames * 1e6:7.1f} µs/frame')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0, help='seed of the generic benchmark (settings chosen on 1)')
    parser.add_argument('--data', type=Path, default=Path('out/anomaly_bench'))
    parser.add_argument('--analytics', type=Path, default=Path('out/analytics'),
                        help='simulator runs (generated there when absent, as bench_analytics does)')
    parser.add_argument('--skip-simulator', action='store_true')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    generic(arguments.data, arguments.seed)
    if not arguments.skip_simulator:
        cost(simulator(arguments.analytics), arguments.analytics)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
