"""Maintenance core: health indicators, RUL with uncertainty, risk and the scheduler."""
import numpy as np
import pytest

from twin_core.levels import Risk
from twin_maintenance.condition import ConditionWindows, JointChannels, motor_condition
from twin_maintenance.rul import RulEstimate, RulModel, nasa_score, risk_level, trend_rul, two_point_rul
from twin_maintenance.scheduler import DAY, HOUR, Calendar, Scheduler, Task

MONDAY = 4 * DAY  # 1970-01-05 00:00 UTC


def test_trend_rul_finds_the_known_failure_time_with_a_calibrated_interval():
    rng = np.random.default_rng(0)
    time = np.arange(0.0, 60.0)
    estimates = [trend_rul(time, 1.0 - time / 100.0 + rng.normal(0, 0.02, time.size), seed=i)
                 for i in range(60)]  # fails at t = 100: RUL 41 at the last point
    assert np.median([e.median for e in estimates]) == pytest.approx(41.0, rel=0.05)
    coverage = np.mean([e.low <= 41.0 <= e.high for e in estimates])
    assert 0.6 <= coverage <= 0.97  # a central 80 % interval
    assert trend_rul(time, np.full(time.size, 0.9) + rng.normal(0, 0.02, time.size)) is None


def test_two_point_baseline_and_nasa_score_asymmetry():
    assert two_point_rul(np.array([0.0, 10.0]), np.array([1.0, 0.9])) == pytest.approx(90.0)
    assert two_point_rul(np.array([0.0, 10.0]), np.array([0.9, 0.9])) == np.inf
    assert nasa_score(np.array([110.0]), np.array([100.0])) > nasa_score(np.array([90.0]), np.array([100.0]))


def wearing_units(rng, gains=(1.0, 1.5, 0.7), lives=(100, 150, 80), starts=(0.0, 0.1, 0.3)):
    """Units whose wear grows linearly to 1 at failure; the vibration indicator's gain differs per unit."""
    units, rows, wear = [], [], []
    for unit, (gain, life, start) in enumerate(zip(gains, lives, starts)):
        t = np.arange(0.0, life)
        level = start + (1.0 - start) * t / life
        rows.append(np.column_stack((gain * 3.0 * level + rng.normal(0, 0.02, t.size), rng.normal(0, 1, t.size))))
        units += [f'unit_{unit}'] * t.size
        wear.append(level)
    return np.array(units), np.vstack(rows), np.concatenate(wear)


def test_rul_model_anchors_the_index_on_the_wear_state_per_unit():
    rng = np.random.default_rng(1)
    units, values, wear = wearing_units(rng)
    model = RulModel.fit(('vibration', 'noise'), units, values, wear, window=40.0)
    assert abs(model.weights[1]) > 10 * abs(model.weights[2])  # the informative feature dominates
    assert model.index_std < 0.05
    for unit, gain in (('unit_0', 1.0), ('unit_1', 1.5), ('unit_2', 0.7)):  # new ~ 1, failing ~ 0 on every unit
        index = model.condition(np.array([[0.0, 0.0], [gain * 3.0, 0.0]]), unit)
        assert index == pytest.approx([1.0, 0.0], abs=3 * model.index_std)
    pooled = model.condition(np.array([[0.0, 0.0], [3.0 * 1.5, 0.0]]))  # an unseen unit: the pooled index
    assert pooled[0] > 0.8 and pooled[1] < 0.2
    assert np.isnan(model.condition(np.array([[np.nan, 0.0]]), 'unit_0')).all()


def test_rul_follows_the_units_own_time_scale_and_is_beyond_the_horizon_without_decline():
    rng = np.random.default_rng(2)
    model = RulModel.fit(('vibration', 'noise'), *wearing_units(rng), window=40000.0)
    t = np.arange(0.0, 70.0) * 1000.0  # wear 1000 times slower than in training: fails at t = 100000
    level = 0.2 + 0.8 * t / 100000.0
    values = np.column_stack((3.0 * level + rng.normal(0, 0.02, t.size), rng.normal(0, 1, t.size)))
    estimate = model.estimate(t, model.condition(values, 'unit_0'))
    assert estimate.median == pytest.approx(31000.0, rel=0.15)
    assert estimate.low < 31000.0 < estimate.high
    steady = np.column_stack((np.full(30, 0.3) + rng.normal(0, 0.02, 30), rng.normal(0, 1, 30)))
    healthy = model.estimate(np.arange(30.0), model.condition(steady, 'unit_0'))
    assert healthy.median == healthy.low == np.inf and healthy.condition == pytest.approx(0.9, abs=0.05)
    assert risk_level(healthy, (10.0, 50.0, 100.0), (0.1, 0.25, 0.4)) == Risk.LOW
    with pytest.raises(ValueError, match='no finite condition index'):
        model.estimate(np.arange(3.0), np.full(3, np.nan))


def test_rul_model_files_round_trip_and_old_formats_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    model = RulModel.fit(('vibration', 'noise'), *wearing_units(rng), window=40.0)
    model.save(tmp_path / 'rul.json')
    loaded = RulModel.load(tmp_path / 'rul.json')
    assert loaded.calibration == model.calibration and np.allclose(loaded.weights, model.weights)
    (tmp_path / 'old.json').write_text('{"features": ["vibration"], "cap": 3235.0, "window": 808.75, '
                                       '"mean": [0.0], "std": [1.0], "weights": [0.4, -0.1], "ridge": 0.001}')
    with pytest.raises(ValueError, match='retrain'):
        RulModel.load(tmp_path / 'old.json')


def test_trend_interval_includes_the_uncertainty_of_where_failure_reads():
    rng = np.random.default_rng(4)
    time = np.arange(0.0, 60.0)
    health = 1.0 - time / 100.0 + rng.normal(0, 0.01, time.size)
    narrow, wide = trend_rul(time, health), trend_rul(time, health, threshold_std=0.05)
    assert wide.high - wide.low > 2 * (narrow.high - narrow.low)
    assert wide.median == pytest.approx(narrow.median, rel=0.1)


def test_risk_levels_follow_the_pessimistic_rul_and_the_health_level():
    horizons, levels = (10.0, 50.0, 100.0), (0.1, 0.25, 0.4)
    assert risk_level(RulEstimate(30.0, 5.0, 60.0, 0.5), horizons, levels) == Risk.CRITICAL
    assert risk_level(RulEstimate(80.0, 40.0, 120.0, 0.5), horizons, levels) == Risk.HIGH
    assert risk_level(RulEstimate(500.0, 300.0, 900.0, 0.9), horizons, levels) == Risk.LOW
    assert risk_level(RulEstimate(np.inf, np.inf, np.inf, 0.05), horizons, levels) == Risk.CRITICAL
    assert risk_level(RulEstimate(np.inf, np.inf, np.inf, 0.3), horizons, levels) == Risk.MEDIUM


def test_health_windows_measure_vibration_and_dropouts():
    rate, seconds = 100.0, 40.0
    t = np.arange(int(rate * seconds)) / rate
    velocity = np.full(t.size, 1.0)
    amplitude = np.where(t < 20.0, 0.1, 1.0)  # vibration grows ten-fold after 20 s
    effort = 5.0 + amplitude * np.sin(2 * np.pi * 9.0 * t)
    temperature = np.full(t.size, 40.0)
    imu = np.where((t > 25.0) & (t < 27.0), np.nan, 0.0)
    names = ('v', 'e', 'T', 'imu')
    windows = ConditionWindows(names, [JointChannels('joint_1', 'v', 'e', 'T', 10.0)], {'imu': 'imu'}, window=10.0)
    rows = windows.update(t[:1234], np.column_stack((velocity, effort, temperature, imu))[:1234])
    rows += windows.update(t[1234:], np.column_stack((velocity, effort, temperature, imu))[1234:])
    joint = [r for r in rows if r.component == 'joint_1']
    sensor = [r for r in rows if r.component == 'imu']
    assert len(joint) == 3 and joint[2].values['vibration'] > 5 * joint[0].values['vibration']
    assert joint[0].values['temperature'] == pytest.approx(40.0)
    assert sensor[2].values['missing_fraction'] == pytest.approx(0.2, abs=0.01)
    assert motor_condition(40.0, 25.0, 100.0) == pytest.approx(0.8)


def test_a_sensor_starting_late_has_not_dropped_out_and_one_never_heard_from_has():
    t = np.arange(2000) / 100.0  # two 10 s windows
    late = np.where(t < 3.0, np.nan, 0.0)  # first value after 3 s, then every frame
    silent = np.full(t.size, np.nan)
    windows = ConditionWindows(('late', 'silent'), [], {'late': 'late', 'silent': 'silent'}, window=10.0)
    rows = windows.update(t, np.column_stack((late, silent)))
    rows += windows.update(np.array([20.0]), np.array([[0.0, np.nan]]))  # closes the second window
    fractions = [(r.component, r.values['missing_fraction']) for r in rows]
    assert fractions == [('late', 0.0), ('silent', 1.0), ('late', 0.0), ('silent', 1.0)]


def task(component, deadline, resources=('mechanic',), duration=2 * HOUR):
    return Task(component, 'replace gearbox', duration, deadline, resources, Risk.HIGH)


def test_bookings_respect_working_hours_windows_and_weekends():
    scheduler = Scheduler(Calendar(window_start_hour=8.0, window_end_hour=12.0), ('mechanic',))
    friday_evening = MONDAY + 4 * DAY + 18 * HOUR
    bookings, unplaced = scheduler.plan([task('joint_1', friday_evening + 5 * DAY)], friday_evening)
    (booking,) = bookings
    assert not unplaced and booking.start == MONDAY + 7 * DAY + 8 * HOUR  # next Monday 08:00
    long_task = task('joint_2', MONDAY + 20 * DAY, duration=5 * HOUR)  # longer than the window
    assert scheduler.plan([long_task], MONDAY)[1] == [long_task]


def test_resource_conflicts_blocked_time_and_late_tasks():
    scheduler = Scheduler(Calendar(), ('mechanic', 'electrician'),
                          blocked={'mechanic': [(MONDAY + 6 * HOUR, MONDAY + 10 * HOUR)]})
    tasks = [task('joint_1', MONDAY + 14 * HOUR), task('joint_2', MONDAY + 11 * HOUR),
             task('imu', MONDAY + 9 * HOUR, resources=('electrician',), duration=HOUR)]
    bookings, _ = scheduler.plan(tasks, MONDAY)
    by = {b.task.component: b for b in bookings}
    assert by['imu'].start == MONDAY + 6 * HOUR and not by['imu'].late  # other resource: in parallel
    assert by['joint_2'].start == MONDAY + 10 * HOUR and by['joint_2'].late  # earliest deadline first
    assert by['joint_1'].start == by['joint_2'].end and not by['joint_1'].late  # no overlap
    assert scheduler.plan([task('x', MONDAY + DAY, resources=('crane',))], MONDAY)[1]  # unknown resource


def test_replanning_keeps_valid_bookings_and_moves_those_whose_rul_dropped():
    scheduler = Scheduler(Calendar(), ('mechanic',))
    first, _ = scheduler.plan([task('joint_1', MONDAY + 3 * DAY), task('joint_2', MONDAY + 5 * DAY)], MONDAY)
    start = {b.task.component: b.start for b in first}
    same, _ = scheduler.plan([task('joint_1', MONDAY + 3 * DAY), task('joint_2', MONDAY + 4 * DAY)],
                             MONDAY + HOUR, first)
    assert {b.task.component: b.start for b in same} == start
    assert start['joint_2'] > start['joint_1']
    urgent = [task('joint_1', MONDAY + 3 * DAY), task('joint_2', start['joint_2'])]  # joint_2's RUL dropped
    moved, _ = scheduler.plan(urgent, MONDAY + HOUR, first)
    by = {b.task.component: b for b in moved}
    assert by['joint_2'].start == MONDAY + 6 * HOUR and not by['joint_2'].late
    assert by['joint_1'].start == by['joint_2'].end and not by['joint_1'].late
