"""Tracking alarms on the twin state's tracking error: rise after the duration beyond the bound,
clear with hysteresis, clear without a plan, refuse states that cannot be judged.
"""
from __future__ import annotations

import numpy as np
import pytest

from twin_anomaly.config import TrackingAlarmConfig
from twin_anomaly.tracking import TrackingAlarms
from twin_core.levels import Level

JOINTS = ('joint_1', 'joint_2')
CONFIG = TrackingAlarmConfig(bound=0.01, duration=0.045, clear_ratio=0.5, clear_duration=0.195)


def feed(alarms: TrackingAlarms, start: float, errors: list[float], step: float = 0.01) -> list:
    """States every ``step`` s from ``start`` with joint_2's tracking error from ``errors``."""
    return [event for i, error in enumerate(errors)
            for event in alarms.update(start + i * step, JOINTS, [0.001, error])]


def test_alarm_rises_after_the_duration_and_clears_with_hysteresis() -> None:
    alarms = TrackingAlarms(CONFIG)
    assert feed(alarms, 0.0, [0.012] * 5 + [0.0] * 5) == []  # 40 ms beyond the bound: too short
    events = feed(alarms, 1.0, [0.012] * 10)
    assert len(events) == 1
    rise = events[0]
    assert (rise.stamp, rise.sensor, rise.method, rise.active, rise.severity) == \
        (1.05, 'joint_2.tracking_error', 'tracking', True, Level.WARN)
    assert rise.score == 0.012 and rise.threshold == 0.01
    assert 'joint_2 off its path by +0.0120 rad' in rise.description
    # between 0.5 × bound and the bound: neither rises again nor clears
    assert feed(alarms, 2.0, [0.007] * 100) == []
    # below 0.5 × bound, but interrupted before the clear duration, then long enough
    assert feed(alarms, 3.0, [0.004] * 15 + [0.006] + [0.004] * 15) == []
    events = feed(alarms, 3.31, [-0.004] * 25)  # below since 3.16
    assert [(e.active, e.severity) for e in events] == [(False, Level.OK)]
    assert events[0].stamp == pytest.approx(3.36)
    status = alarms.report()
    assert status.level is Level.OK and status.values['alarms'] == 1
    assert status.values['peak_error.joint_2'] == 0.012
    np.testing.assert_allclose(status.values['error.joint_2'], -0.004)


def test_negative_deviations_alarm_too_and_each_joint_has_its_own() -> None:
    alarms = TrackingAlarms(CONFIG)
    events = [e for i in range(10) for e in alarms.update(0.01 * i, JOINTS, [-0.02, 0.02 if i >= 3 else 0.0])]
    assert [(e.sensor, e.stamp) for e in events] == [('joint_1.tracking_error', 0.05),
                                                     ('joint_2.tracking_error', 0.08)]
    status = alarms.report()
    assert status.level is Level.WARN and status.message == 'off the path: joint_1, joint_2'


def test_without_a_plan_active_alarms_clear_and_nothing_rises() -> None:
    alarms = TrackingAlarms(CONFIG)
    assert len(feed(alarms, 0.0, [0.05] * 10)) == 1
    cleared = alarms.update(0.2, JOINTS, [])
    assert [(e.sensor, e.active, e.description) for e in cleared] == [
        ('joint_2.tracking_error', False, 'no plan: tracking not judged')]
    assert alarms.update(0.21, JOINTS, []) == []
    assert TrackingAlarms(CONFIG).report().message == 'no plan seen'


def test_states_that_cannot_be_judged_are_refused_and_reported() -> None:
    alarms = TrackingAlarms(CONFIG)
    assert alarms.update(0.0, JOINTS, [0.05]) == []
    assert alarms.update(0.01, JOINTS, [0.05, float('nan')]) == []
    status = alarms.report()
    assert status.level is Level.WARN and status.values['rejected'] == 2
    assert status.message == 'refused: non-finite tracking error'
    assert alarms.report().level is Level.OK  # reported once per period


def test_a_replay_restarting_resets_the_timers() -> None:
    alarms = TrackingAlarms(CONFIG)
    assert feed(alarms, 10.0, [0.05] * 4) == []
    assert feed(alarms, 1.0, [0.05] * 4) == []  # time went back: the 30 ms before do not count
    assert len(feed(alarms, 1.04, [0.05] * 2)) == 1
