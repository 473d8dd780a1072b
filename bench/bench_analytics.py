"""Anomaly detection and RUL on simulated sensor-level data, against plain baselines.

Data (generated into ``--data`` when absent, with ``twin_maintenance.sim_frames``): two 1 h
nominal runs (fit / false alarms), ``fault_suite`` (one fault of every type) and two
``run_to_failure`` runs (RUL train / test). Anomaly baseline: any channel outside the range
it had in the normal fit data, per frame, no debounce. RUL baseline: the line through the
first and last point of the same health-index window. RUL in minutes (the NASA score's
constants are in time units). Run: ``python bench/bench_analytics.py [--data out/analytics]
[--repeat 3] [--scoring-only] [--model config/models/anomaly] [--live frames.csv]``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from twin_anomaly.anomaly import AnomalyModel, OnlineDetector, range_alarms
from twin_anomaly.anomaly_cli import detect, method_alarms
from twin_anomaly.metrics import event_scores
from twin_core.channels import Series, read_csv
from twin_core.kinematics import ArmKinematics
from twin_core.urdf import urdf_file
from twin_maintenance.rul import RulModel
from twin_maintenance.rul_cli import default_window, read_table
from twin_maintenance.rul_cli import evaluate as evaluate_rul
from twin_maintenance.sim_frames import health_table, record
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

RUNS = {'nominal_train': ('nominal', 3600, 1), 'nominal_test': ('nominal', 3600, 2),
        'fault_suite': ('fault_suite', 2250, 3), 'rtf_train': ('run_to_failure', 4800, 4),
        'rtf_test': ('run_to_failure', 4800, 5)}
AFTER_FAULT = 10.0  # s after a fault in which alarms count neither for nor against it
HEALTH_WINDOW = 60.0  # s


def ensure(data: Path, name: str) -> Path:
    out = data / name
    if not (out / 'frames.csv').is_file():
        scenario, duration, seed = RUNS[name]
        workcell = Workcell(urdf_file(), Scenario.from_file(scenario_path(scenario)),
                            SimSettings(control_period_steps=10), seed=seed)
        record(workcell, duration, out)
    return out


def only(model: AnomalyModel, method: str) -> AnomalyModel:
    """A copy of ``model`` that scores with one method."""
    single = replace(model, settings=replace(model.settings, methods=(method,)),
                     iforest=model.iforest if method == 'iforest' else None,
                     autoencoder=model.autoencoder if method == 'autoencoder' else None,
                     convolutional=model.convolutional if method == 'convolutional' else None)
    position = {name: j for j, name in enumerate(model.score_names)}
    single.thresholds = model.thresholds[[position[name] for name in single.score_names]]
    return single


def scoring_time(model: AnomalyModel, series: Series, repeat: int) -> float:
    """Shortest wall time (s) of ``repeat`` batch scorings of ``series`` (the machine may be shared)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        detect(model, series)
        times.append(time.perf_counter() - started)
    return min(times)


def anomaly(data: Path, repeat: int, scoring_only: bool, saved: Path | None, live: Path | None) -> None:
    if saved is None:
        train = read_csv(ensure(data, 'nominal_train') / 'frames.csv', label_column='label')
        started = time.perf_counter()
        model = AnomalyModel.fit(train, kinematics=ArmKinematics.from_urdf(urdf_file()))
        print(f'fit: {len(train.time)} frames x {len(train.names)} channels in {time.perf_counter() - started:.1f} s')
    else:
        model = AnomalyModel.load(saved)
        print(f'model: {saved}')
    nominal = read_csv(ensure(data, 'nominal_test') / 'frames.csv', label_column='label', columns=model.names)
    print(f'batch scoring of {len(nominal.time)} frames (best of {repeat}):')
    for method in model.settings.methods:
        rate = len(nominal.time) / scoring_time(only(model, method), nominal, repeat)
        print(f'batch scoring {method:12s}: {rate:9.0f} frames/s')
    elapsed = scoring_time(model, nominal, repeat)
    print(f'batch scoring {"all":12s}: {len(nominal.time) / elapsed:9.0f} frames/s '
          f'({len(nominal.time) * len(model.names) / elapsed:.0f} values/s)')
    for batch in (1, 4):
        detector, latencies = OnlineDetector(model), []
        for i in range(0, 4000, batch):
            started = time.perf_counter()
            detector.process(nominal.time[i:i + batch], nominal.values[i:i + batch])
            latencies.append(time.perf_counter() - started)
        latency = np.array(latencies) * 1e3
        print(f'decision latency, micro-batch of {batch} frame(s): p50 {np.median(latency):.2f} ms, '
              f'p99 {np.quantile(latency, 0.99):.2f} ms (+ up to {batch - 1} frame periods of waiting)')
    if scoring_only:
        return
    alarms = detect(model, nominal)
    hours = nominal.time[-1] / 3600
    print(f'\nfalse alarms over {hours:.2f} h of nominal operation (fresh seed):')
    groups = method_alarms(model, alarms) | {'baseline': range_alarms(model, nominal.values)}
    for name, alarm in groups.items():
        scores = event_scores(nominal.time, nominal.labels, alarm)
        print(f'  {name:12s} {scores.false_alarms:5d} false alarms, pointwise FAR {scores.pointwise_far:.2e}')

    if live is not None:
        frames = read_csv(live, label_column='label', columns=model.names)
        groups = method_alarms(model, detect(model, frames))
        print(f'\nfalse alarms over {(frames.time[-1] - frames.time[0]) / 60:.1f} min of frames recorded through '
              f'the live data path ({live}):')
        for name, alarm in groups.items():
            print(f'  {name:12s} {event_scores(frames.time, frames.labels, alarm).false_alarms:5d} false alarms')

    suite = ensure(data, 'fault_suite')
    series = read_csv(suite / 'frames.csv', label_column='label', columns=model.names)
    faults = json.loads((suite / 'faults.json').read_text())
    groups = method_alarms(model, detect(model, series)) | {'baseline': range_alarms(model, series.values)}
    print('\nper fault (label = the fault interval; other faults and 10 s after them ignored):')
    print(f'  {"fault":28s} {"method":12s} {"found":>5s} {"delay s":>8s} {"false":>5s} {"F1":>5s}')
    for fault in faults:
        end = fault['end'] if fault['end'] is not None else series.time[-1]
        labels = (series.time >= fault['start']) & (series.time < end)
        ignore = np.zeros_like(labels)
        for other in faults:
            if other is not fault:
                ignore |= (series.time >= other['start']) & (series.time < (other['end'] or np.inf) + AFTER_FAULT)
        for name, alarm in groups.items():
            scores = event_scores(series.time, labels, alarm, AFTER_FAULT, ignore)
            delay = f'{scores.delays[0]:.2f}' if scores.delays else '-'
            print(f'  {fault["type"] + ":" + fault["target"]:28s} {name:12s} {scores.detected:5d} {delay:>8s} '
                  f'{scores.false_alarms:5d} {scores.f1:5.2f}')


def rul(data: Path) -> None:
    tables = {}
    for name in ('rtf_train', 'rtf_test'):
        path = ensure(data, name)
        if not (path / 'health.csv').is_file():
            health_table(path, HEALTH_WINDOW)
        table = read_table(path / 'health.csv', features=('vibration',))
        tables[name] = replace(table, time=table.time / 60.0, rul=table.rul / 60.0)
    train = tables['rtf_train']
    known = np.isfinite(train.wear)
    started = time.perf_counter()
    model = RulModel.fit(train.features, train.units[known], train.values[known], train.wear[known],
                         default_window(train))
    print(f'\nRUL (minutes; units = joints, failure = truth health 0): trained in '
          f'{(time.perf_counter() - started) * 1e3:.1f} ms, index error {model.index_std:.3f}, '
          f'window {model.window:.0f} min')
    # The test run wears the same arm's joints the model was calibrated on (as the live twin does).
    print(f'  test run: {evaluate_rul(model, tables["rtf_test"], calibrated_units=True).summary()}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=Path('out/analytics'))
    parser.add_argument('--repeat', type=int, default=3, help='runs per scoring measurement (the best counts)')
    parser.add_argument('--scoring-only', action='store_true', help='only fit and time the anomaly scoring')
    parser.add_argument('--model', type=Path, help='evaluate this saved model (e.g. config/models/anomaly) '
                                                   'instead of fitting one on nominal_train')
    parser.add_argument('--live', type=Path, help='also count false alarms on these normal frames (CSV of '
                                                  '`twin_anomaly frames`, recorded through the live data path)')
    arguments = parser.parse_args()
    if arguments.repeat < 1:
        parser.error('--repeat must be at least 1')
    torch.set_num_threads(1)
    anomaly(arguments.data, arguments.repeat, arguments.scoring_only, arguments.model, arguments.live)
    if not arguments.scoring_only:
        rul(arguments.data)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
