"""Online alarms: micro-batches, suppression while the cell rests (dropouts excepted), counts, latency."""
import itertools

import numpy as np
import pytest

from twin_anomaly.alarms import AlarmStream, LateInputs, at_rest
from twin_anomaly.anomaly import AnomalyModel, DetectorSettings
from twin_core.channels import Series
from twin_core.levels import Level, Quality

RATE = 100.0
NAMES = ('a', 'b')


def normal(seconds: float, seed: int) -> Series:
    """Two noisy channels of one periodic motion."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * t / 8.5
    values = np.column_stack((np.sin(phase), 0.5 * np.cos(3 * phase))) + rng.normal(0, 0.01, (t.size, 2))
    return Series(t, NAMES, values)


@pytest.fixture(scope='module')
def model() -> AnomalyModel:
    return AnomalyModel.fit(normal(300, 0), DetectorSettings(methods=('robust',)))


def run(stream: AlarmStream, data: Series, resting: np.ndarray) -> list:
    """Every frame of ``data`` through the stream; the events it passed on."""
    events = []
    for t, row, rest in zip(data.time, data.values, resting):
        events += stream.add(float(t), dict(zip(NAMES, row)), bool(rest))
    return events


def test_the_cell_rests_when_stopped_or_all_but_still():
    assert at_rest({'stopped': 1.0}) and at_rest({'speed_override': 0.01})
    assert not at_rest({}) and not at_rest({'stopped': 0.0, 'speed_override': 0.5})


def test_frames_are_scored_in_batches(model):
    stream = AlarmStream(model, batch_frames=4)
    data = normal(0.07, 1)
    run(stream, data, np.zeros(7))
    assert stream.frames == 4


def test_a_step_at_rest_is_suppressed_and_a_dropout_is_not(model):
    data = normal(30, 2)
    data.values[1000:, 1] += 0.2  # 20 noise sigmas
    data.values[2000:2100, 0] = np.nan
    stream = AlarmStream(model, batch_frames=4)
    events = run(stream, data, np.ones(len(data.time)))
    assert stream.suppressed >= 1
    assert [(e.sensor, e.method) for e in events if e.active] == [('a', 'missing')]
    assert stream.alarms == 1 and set(stream.latest) == {'a'}


def test_alarms_raised_in_production_clear_at_rest(model):
    data = normal(30, 3)
    data.values[1000:1500, 1] += 0.2
    resting = data.time >= 10.2  # before the step's residual alarm clears
    events = run(AlarmStream(model, batch_frames=4), data, resting)
    raised = [e for e in events if e.active and e.sensor == 'b']
    cleared = [e for e in events if not e.active and e.sensor == 'b']
    assert raised and all(e.stamp < 10.2 for e in raised)
    assert cleared and all(e.stamp >= 10.2 for e in cleared)


def test_active_alarms_name_their_sensors(model):
    data = normal(10.2, 4)
    data.values[1000:, 1] += 0.2  # 0.2 s before the end: the residual alarm has not cleared yet
    stream = AlarmStream(model, batch_frames=4)
    run(stream, data, np.zeros(len(data.time)))
    assert stream.alarmed() == {'b'}


def test_latency_runs_from_a_frames_arrival_to_its_decision(model):
    ticks = itertools.count()
    stream = AlarmStream(model, batch_frames=2, clock=lambda: float(next(ticks)))
    assert stream.latency() == (0.0, 0.0)
    run(stream, normal(0.02, 5), np.zeros(2))  # arrivals at 0 and 1, decided at 2
    assert stream.latency() == (1.5, 2.0)


def test_the_report_shows_each_alarmed_sensor_while_its_alarm_is_active(model):
    data = normal(13.5, 6)
    data.values[1000:1050, 1] += 0.2  # a step that ends: its alarm clears 25 frames after its residual
    stream = AlarmStream(model, batch_frames=4)
    run(stream, Series(data.time[:1060], NAMES, data.values[:1060]), np.zeros(1060))
    detector, b = stream.report()
    assert (detector.name, detector.level, detector.values['alarms']) == ('detector', Level.OK, stream.alarms)
    assert detector.values['frames'] == 1060 and b.name == 'b' and b.level in (Level.WARN, Level.ERROR)
    run(stream, Series(data.time[1060:], NAMES, data.values[1060:]), np.zeros(len(data.time) - 1060))
    assert [(r.name, r.level, r.message) for r in stream.report()[1:]] == [('b', Level.OK, 'normal')]


def test_an_input_is_late_when_the_synchronizer_holds_what_it_used_to_interpolate():
    late = LateInputs()
    assert late.check([('imu/data', Quality.HELD), ('motors/joint_1/temperature', Quality.HELD)]) == []
    assert late.check([('imu/data', Quality.INTERPOLATED), ('motors/joint_1/temperature', Quality.HELD)]) == []
    assert late.check([('imu/data', Quality.HELD), ('motors/joint_1/temperature', Quality.HELD)]) == ['imu/data']
    assert late.check([('imu/data', Quality.STALE)]) == []  # stale values are missing (NaN), not late


def test_a_glitch_in_frames_with_late_inputs_is_suppressed_and_the_same_glitch_on_time_is_not(model):
    data = normal(30, 3)
    data.values[1500:1530, 0] += 0.3  # what held, out-of-step values look like: 30 noise sigmas
    late = np.zeros(len(data.time), dtype=bool)
    late[1500:1530] = True

    def raised(flags: np.ndarray) -> tuple[list, AlarmStream]:
        stream = AlarmStream(model, batch_frames=4)
        events = []
        for t, row, flag in zip(data.time, data.values, flags):
            events += stream.add(float(t), dict(zip(NAMES, row)), False, bool(flag))
        return [e for e in events if e.active], stream

    on_time, _ = raised(np.zeros(len(data.time), dtype=bool))
    assert on_time and all(e.sensor == 'a' for e in on_time)
    suppressed, stream = raised(late)
    assert suppressed == []
    assert stream.suppressed_late >= 1 and stream.late_frames == 30
    assert stream.report()[0].values['suppressed_late_input'] == stream.suppressed_late
