"""Health of the synchronizer: per-input rate, age and quality; output rate and skew."""
from dataclasses import replace
from types import SimpleNamespace

import pytest

from twin_core.levels import Level, Quality
from twin_sync.approximate import ApproximateStats
from twin_sync.monitor import SyncMonitor
from twin_sync.sync_config import APPROXIMATE, SyncConfig
from twin_sync.timeline import InputCounters

S = 1_000_000_000
CONFIG = SyncConfig()
N = len(CONFIG.topics)
STATS = ApproximateStats(received=(0,) * N, dropped=(4,) + (0,) * (N - 1), out_of_order=(0,) * N,
                         duplicate_stamps=(0,) * N, bound_violations=(0, 2) + (0,) * (N - 2), sets=7)


def timeline(qualities: list[Quality], newest: list[int | None]) -> SimpleNamespace:
    """What the monitor reads of a Timeline: counters, newest stamps and the frame being judged."""
    frame = SimpleNamespace(samples=[SimpleNamespace(quality=q) for q in qualities])
    return SimpleNamespace(counters=[InputCounters(out_of_order=i) for i in range(len(qualities))],
                           newest_stamp=lambda index: newest[index], frame=lambda stamp_ns: frame)


def test_inputs_report_their_rate_since_the_last_report_age_and_quality():
    monitor = SyncMonitor(CONFIG)
    for _ in range(3):
        monitor.received(0)
    source = timeline([Quality.INTERPOLATED, Quality.STALE] + [Quality.HELD] * (N - 2), [9 * S, None] + [S] * (N - 2))
    imu, joints, *_ = monitor.report(source, STATS, 10 * S)
    assert (imu.name, imu.level, imu.message, imu.hardware_id) == ('imu/data', Level.OK, 'fresh', 'imu/data')
    assert imu.values['rate_hz'] == 3 and imu.values['age_s'] == pytest.approx(1.0)
    assert (joints.level, joints.message, joints.values['age_s'], joints.values['out_of_order']) == (
        Level.WARN, 'stale', 'never', 1)
    assert 'unmatched_dropped' not in imu.values
    monitor.received(0)
    assert monitor.report(source, STATS, 11 * S)[0].values['rate_hz'] == 1


def test_output_warns_without_new_frames_and_reports_the_skew():
    monitor = SyncMonitor(CONFIG)
    source = timeline([Quality.EXACT] * N, [S] * N)
    for skew in (0.001, 0.002, 0.003):
        monitor.published(SimpleNamespace(max_skew=skew))
    output = monitor.report(source, STATS, 2 * S)[-1]
    assert (output.name, output.level, output.message) == ('output', Level.OK, CONFIG.mode)
    assert output.values['rate_hz'] == output.values['frames'] == 3 and output.values['sets'] == 7
    assert output.values['max_skew_p50_s'] == pytest.approx(0.002)
    assert monitor.report(source, STATS, 3 * S)[-1].level == Level.WARN


def test_approximate_mode_adds_the_matching_counters():
    monitor = SyncMonitor(replace(CONFIG, mode=APPROXIMATE))
    source = timeline([Quality.EXACT] * N, [S] * N)
    first, second = monitor.report(source, STATS, 2 * S)[:2]
    assert (first.values['unmatched_dropped'], second.values['bound_violations']) == (4, 2)


def test_approximate_mode_judges_inputs_by_the_policys_newest_stamps():
    """No timeline is kept in approximate mode: fresh within the input's timeout of now - delay."""
    config = replace(CONFIG, mode=APPROXIMATE)
    monitor = SyncMonitor(config)
    judged = 10 * S - round(config.delay * S)
    newest = (judged - round(config.timeouts[0] * S), judged - round(config.timeouts[1] * S) - 1,
              None) + (judged + S,) * (N - 3)
    stats = replace(STATS, newest=newest, out_of_order=(3,) + (0,) * (N - 1))
    imu, joints, scan, *rest = monitor.report(timeline([Quality.MISSING] * N, [None] * N), stats, 10 * S)
    assert (imu.level, imu.message, imu.values['out_of_order']) == (Level.OK, 'fresh', 3)
    assert imu.values['age_s'] == pytest.approx(config.delay + config.timeouts[0])
    assert (joints.level, joints.message, scan.message, scan.values['age_s']) == (
        Level.WARN, 'stale', 'missing', 'never')
    assert all(r.message == 'fresh' for r in rest[:-1])
