"""Health of the state node: ingest rate, new errors and time jumps, rejected input, stale inputs."""
from collections import Counter
from types import SimpleNamespace

import pytest

from twin_core.levels import Level, Quality
from twin_state.monitor import StateMonitor


class History:
    """What the monitor reads of a history: 50 of 100 samples over 10 s."""

    capacity, newest, oldest, inserted = 100, 12.0, 2.0, 3

    def __init__(self, jumps: int) -> None:
        self.jumps = jumps

    def __len__(self) -> int:
        return 50


def estimator(errors: int = 0, jumps: int = 0, inputs: list | None = None) -> SimpleNamespace:
    """What the monitor reads of a StateEstimator: its history, error counts and latest inputs."""
    latest = None if inputs is None else SimpleNamespace(process=SimpleNamespace(inputs=inputs))
    return SimpleNamespace(history=History(jumps), latest=latest,
                           errors=Counter({'InvalidSampleError': errors} if errors else {}))


def reports(monitor: StateMonitor, source: SimpleNamespace, now: float, **visualization) -> dict:
    arguments = {'alarms': 0, 'prediction_age': None, 'tasks': None} | visualization
    return {r.name: r for r in monitor.report(source, now=now, **arguments)}


def test_history_reports_fill_rate_and_warns_while_troubles_keep_coming():
    monitor = StateMonitor(stale_after=0.5, now=100.0)
    for _ in range(40):
        monitor.frame()
    history = reports(monitor, estimator(errors=2), 102.0)['history']
    assert history.level == Level.WARN and history.message == '50/100 samples, 10.0 s'
    assert history.values['ingest_rate_hz'] == pytest.approx(20.0)
    assert history.values['errors.InvalidSampleError'] == 2 and history.values['fill'] == 0.5
    assert reports(monitor, estimator(errors=2), 103.0)['history'].level == Level.OK  # no new ones
    assert reports(monitor, estimator(errors=2, jumps=1), 104.0)['history'].level == Level.WARN


def test_rejected_input_is_logged_once_per_error_and_reported_for_one_period():
    monitor = StateMonitor(stale_after=0.5, now=0.0)
    assert monitor.reject('twin/anomalies', 'unknown severity 9')
    assert not monitor.reject('twin/anomalies', 'unknown severity 9')
    assert monitor.reject('twin/anomalies', 'unknown joint joint_9')
    visualization = reports(monitor, estimator(), 1.0, alarms=2, prediction_age=0.25, tasks=3)['visualization']
    assert visualization.level == Level.WARN and visualization.message == 'twin/anomalies: unknown joint joint_9'
    assert visualization.values == {'active_alarms': 2, 'prediction_age_s': 0.25, 'maintenance_tasks': 3}
    quiet = reports(monitor, estimator(), 2.0)['visualization']
    assert (quiet.level, quiet.message, quiet.values['maintenance_tasks']) == (Level.OK, 'markers ok', -1)
    assert monitor.reject('twin/anomalies', 'unknown joint joint_9')  # a new period: logged again


def test_inputs_are_stale_when_held_too_long_or_old():
    monitor = StateMonitor(stale_after=0.5, now=0.0)
    assert reports(monitor, estimator(), 1.0)['inputs'].message == 'no complete frame yet'
    inputs = [SimpleNamespace(topic='imu/data', quality=Quality.INTERPOLATED, age=0.01),
              SimpleNamespace(topic='scan', quality=Quality.HELD, age=0.8),
              SimpleNamespace(topic='cell/status', quality=Quality.STALE, age=0.1)]
    status = reports(monitor, estimator(inputs=inputs), 2.0)['inputs']
    assert (status.level, status.message) == (Level.WARN, 'stale: scan, cell/status')
    assert status.values == {'age.imu/data': 0.01, 'age.scan': 0.8, 'age.cell/status': 0.1}
    fresh = reports(monitor, estimator(inputs=inputs[:1]), 3.0)['inputs']
    assert (fresh.level, fresh.message) == (Level.OK, 'all inputs fresh')


def test_refused_desired_joint_states_are_reported_with_the_inputs():
    monitor = StateMonitor(stale_after=0.5, now=0.0)
    inputs = [SimpleNamespace(topic='imu/data', quality=Quality.INTERPOLATED, age=0.01)]
    assert monitor.reject('plan/desired_joint_states', 'no value for joint(s) joint_4')
    status = reports(monitor, estimator(inputs=inputs), 1.0)
    assert (status['inputs'].level, status['inputs'].message) == (
        Level.WARN, 'all inputs fresh; plan/desired_joint_states: no value for joint(s) joint_4')
    assert status['visualization'].message == 'markers ok'
    assert reports(monitor, estimator(inputs=inputs), 2.0)['inputs'].level == Level.OK  # one period
