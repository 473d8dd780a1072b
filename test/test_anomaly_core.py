"""Anomaly core on synthetic series: calibrated false alarms, detection delay, hysteresis, and the
vectorised scoring against its definitions (also on the shipped model)."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.ensemble import IsolationForest

from harness import CONFIG_DIR
from twin_anomaly import anomaly
from twin_anomaly.anomaly import ZSCORE_CLIP, AnomalyModel, DetectorSettings, OnlineDetector
from twin_anomaly.anomaly_cli import detect
from twin_anomaly.features import FeatureStream, prediction_weights, run_lengths
from twin_anomaly.forest import CompiledForest
from twin_anomaly.kinematic import GYRO_CHANNELS, IMU_FRAME
from twin_anomaly.metrics import event_scores
from twin_core.channels import Series
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level
from twin_core.signals import joint_signals

RATE = 100.0
NAMES = ('a', 'b', 'c')


def normal(seconds: float, seed: int) -> Series:
    """Three noisy channels driven by one periodic motion: c follows a, b is independent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * t / 8.5
    a = np.sin(phase) + rng.normal(0, 0.01, t.size)
    b = 0.5 * np.cos(3 * phase) + rng.normal(0, 0.01, t.size)
    c = 2.0 * np.sin(phase) + rng.normal(0, 0.01, t.size)
    return Series(t, NAMES, np.column_stack((a, b, c)), np.zeros(t.size, np.int8))


ROBUST = DetectorSettings(methods=('robust',))


@pytest.fixture(scope='module')
def robust_model() -> AnomalyModel:
    return AnomalyModel.fit(normal(600, 0), ROBUST)


def test_run_lengths_continue_across_blocks():
    mask = np.array([[1], [1], [0], [1]], bool)
    assert run_lengths(mask, np.array([2])).ravel().tolist() == [3, 4, 0, 1]


def test_streamed_blocks_equal_one_batch(robust_model):
    data = normal(20, 1)
    whole = detect(robust_model, data)
    assert np.array_equal(detect(robust_model, data, batch=7), whole)
    first = FeatureStream(3, 10, 5).update(data.values)
    stream = FeatureStream(3, 10, 5)
    parts = [stream.update(data.values[i:i + 5]) for i in range(0, len(data.time), 5)]
    assert np.allclose(np.vstack([p.residual for p in parts]), first.residual, equal_nan=True)


def test_thresholds_hold_the_target_false_alarm_rate_on_fresh_normal_data():
    settings = dataclasses.replace(ROBUST, target_far=2e-3, margin=1.0)
    model = AnomalyModel.fit(normal(600, 2), settings)
    fresh = normal(600, 3)
    raw, _ = model.raw_scores(FeatureStream(3, settings.window, settings.gap), fresh.values)
    columns = [j for j, n in enumerate(model.score_names) if n.endswith(('/residual', '/level'))]
    rates = (raw[:, columns] > model.thresholds[columns]).mean(axis=0)
    assert np.all(rates < 4 * settings.target_far), rates
    assert rates.mean() > 0.1 * settings.target_far  # calibrated, not just very loose


def test_no_alarm_on_an_hour_of_fresh_normal_data(robust_model):
    fresh = normal(3600, 4)
    assert not detect(robust_model, fresh).any()


def test_step_detected_within_the_debounce_delay(robust_model):
    data = normal(60, 5)
    onset = 3000
    data.values[onset:, 1] += 0.2  # 20 noise sigmas
    detector = OnlineDetector(robust_model)
    _, events = detector.process(data.time, data.values)
    raised = [e for e in events if e.active]
    assert raised and raised[0].sensor == 'b' and raised[0].method == 'residual'
    delay = raised[0].stamp - data.time[onset]
    assert 0 <= delay <= (robust_model.settings.debounce + 1) / RATE
    assert raised[0].severity in (Level.WARN, Level.ERROR) and 'above' in raised[0].description


def test_single_spike_raises_nothing_and_a_burst_raises_one_event_that_clears(robust_model):
    data = normal(60, 6)
    data.values[1000, 0] += 0.12  # one frame, 12 noise sigmas
    data.values[3000:3030, 0] += np.where(np.arange(30) % 2, 1.0, -1.0)  # 0.3 s of chatter
    raw, _ = robust_model.raw_scores(FeatureStream(3, 10, 5), data.values)
    assert raw[1000, 0] > robust_model.thresholds[0]  # the spike is above threshold...
    _, events = OnlineDetector(robust_model).process(data.time, data.values)
    assert not [e for e in events if e.stamp < 20.0]  # ...but alone raises nothing
    raised = [e for e in events if e.active and e.method == 'residual']
    cleared = [e for e in events if not e.active and e.method == 'residual']
    assert len(raised) == 1 and len(cleared) == 1 and cleared[0].stamp > raised[0].stamp


def test_an_alarm_clears_within_half_a_second_of_its_cause(robust_model):
    """Not seconds into the normal time after it, which would all count as false alarm."""
    data = normal(30, 10)
    data.values[1000:1300, 2] = np.nan  # a 3 s dropout
    _, events = OnlineDetector(robust_model).process(data.time, data.values)
    missing = [e for e in events if (e.sensor, e.method) == ('c', 'missing')]
    assert [e.active for e in missing] == [True, False]
    assert 0.0 < missing[1].stamp - data.time[1300] <= 0.5


def test_the_default_detector_leaves_the_isolation_forest_out():
    """Its bounded score saturates about at its calibrated threshold: no room for faults above it."""
    model = AnomalyModel.fit(normal(120, 11), DetectorSettings(autoencoder_epochs=1, conv_fit_windows=2000))
    assert model.iforest is None and model.autoencoder is not None and model.convolutional is not None
    assert not any(name.endswith('/iforest') for name in model.score_names)


def test_stuck_and_missing_sensors(robust_model):
    data = normal(30, 7)
    data.values[1000:1200, 0] = data.values[1000, 0]  # stuck
    data.values[2000:2100, 2] = np.nan  # dropout
    _, events = OnlineDetector(robust_model).process(data.time, data.values)
    raised = {(e.sensor, e.method): e for e in events if e.active}
    # runs of at least min_run frames (0.25 s at 100 Hz) plus the debounce
    bound = (robust_model.settings.min_run + robust_model.settings.debounce + 1) / RATE
    assert raised[('a', 'flat')].stamp - data.time[1000] < bound
    missing = raised[('c', 'missing')]
    assert missing.stamp - data.time[2000] < bound and missing.severity == Level.ERROR


def test_multivariate_models_catch_a_broken_correlation(tmp_path):
    settings = DetectorSettings(methods=('iforest', 'autoencoder'), autoencoder_epochs=3, max_fit_rows=20000)
    model = AnomalyModel.fit(normal(200, 8), settings)
    data = normal(60, 9)
    assert not detect(model, data).any()
    data.values[3000:3300, 2] *= -1.0  # c against a: each value still in its normal range
    alarms = detect(model, data)
    autoencoder = model.score_names.index('multivariate/autoencoder')
    onset = np.flatnonzero(alarms[:, autoencoder])
    assert onset.size and onset[0] >= 3000 and data.time[onset[0]] - data.time[3000] < 1.0
    model.save(tmp_path / 'model')
    assert np.array_equal(detect(AnomalyModel.load(tmp_path / 'model'), data), alarms)


ARM = ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf')
ARM_CHANNELS = GYRO_CHANNELS + joint_signals(ARM.joint_names, 'position') + joint_signals(ARM.joint_names, 'velocity')
IMU_DEVICE_BIAS = np.array([0.0012, -0.0008, 0.0015])  # rad/s


def arm_motion(seconds: float, seed: int) -> Series:
    """Every joint swinging (two sines each) and a gyro reading the rate the kinematics imply,
    with white noise (encoder velocity and gyro) and the device's constant bias.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    amplitude, frequency = np.array([[0.8, 0.5, 0.6, 1.0], [0.3, 0.2, 0.4, 0.5]]), np.array([[0.15], [0.41]])
    phase = 2 * np.pi * frequency[:, None] * t[None, :, None] + rng.uniform(0, 2 * np.pi, (2, 1, 4))
    positions = (amplitude[:, None] * np.sin(phase)).sum(axis=0)
    velocities = (amplitude[:, None] * 2 * np.pi * frequency[:, None] * np.cos(phase)).sum(axis=0)
    gyro = ARM.angular_velocity(positions, velocities, IMU_FRAME) + IMU_DEVICE_BIAS
    values = np.column_stack((gyro + rng.normal(0, 0.002, gyro.shape), positions,
                              velocities + rng.normal(0, 0.002, velocities.shape)))
    return Series(t, ARM_CHANNELS, values, np.zeros(t.size, np.int8))


def test_kinematic_residual_finds_a_gyro_bias_step_while_the_arm_moves(tmp_path):
    # the joints share their frequencies, so each seed's gyro has its own range: the thresholds are
    # calibrated on every row (holdout 0), the levels of seed 11 stay within 1.5 x those of seed 10
    model = AnomalyModel.fit(arm_motion(600, 10), dataclasses.replace(ROBUST, holdout=0.0), ARM)
    np.testing.assert_allclose(model.kinematic_center, IMU_DEVICE_BIAS, atol=3e-4)
    assert not detect(model, arm_motion(600, 11)).any()
    data = arm_motion(60, 12)
    onset = 3000
    data.values[onset:, 2] += 0.03  # gyro z bias jump, 15 noise sigmas, against rates up to ~2 rad/s
    alarms = detect(model, data)
    assert np.array_equal(detect(model, data, batch=7), alarms)
    kinematic = alarms[:, model.score_names.index(f'{GYRO_CHANNELS[2]}/kinematic')]
    assert not kinematic[:onset].any() and kinematic[onset:onset + int(RATE)].any()
    assert kinematic[onset + int(RATE):].all()  # held while the bias lasts, not just at its step
    model.save(tmp_path / 'model')
    assert np.array_equal(detect(AnomalyModel.load(tmp_path / 'model'), data), alarms)


def test_event_scores():
    time = np.arange(1000) / 10.0
    labels = np.zeros(1000, bool)
    labels[100:150] = labels[500:520] = True
    alarms = np.zeros(1000, bool)
    alarms[103:160] = True  # detects the first event 0.3 s late, outlasts it by 1 s
    alarms[800:805] = True  # false alarm
    scores = event_scores(time, labels, alarms)
    assert (scores.events, scores.detected, scores.alarms, scores.false_alarms) == (2, 1, 3, 2)
    assert scores.false_alarm_seconds == pytest.approx(1.5)
    assert scores.delays == pytest.approx((0.3,)) and scores.f1 == pytest.approx(0.4)
    assert scores.missed_rate == 0.5 and scores.pointwise_far == pytest.approx(15 / 930)
    assert scores.pointwise_missed == pytest.approx(23 / 70)
    assert scores.pointwise_f1 == pytest.approx(2 * 47 / (62 + 70))
    tolerant = event_scores(time, labels, alarms, tolerance=1.0)  # the tail clears within 1 s
    assert (tolerant.alarms, tolerant.false_alarms, tolerant.false_alarm_seconds) == (2, 1, pytest.approx(0.5))


def test_an_alarm_that_outlasts_its_event_into_normal_time_is_a_false_alarm():
    time = np.arange(1000) / 10.0
    labels = np.zeros(1000, bool)
    labels[100:150] = True
    alarms = np.zeros(1000, bool)
    alarms[120:600] = True  # rises in the event, then stays on through half the normal time
    scores = event_scores(time, labels, alarms)
    assert (scores.detected, scores.false_alarms) == (1, 1)
    assert scores.false_alarm_seconds == pytest.approx(45.0)
    assert scores.pointwise_far == pytest.approx(450 / 950)


def test_models_with_topic_based_channel_names_still_load(tmp_path):
    model = AnomalyModel.fit(arm_motion(60, 10), ROBUST, ARM)
    model.save(tmp_path / 'model')
    document = json.loads((tmp_path / 'model' / 'model.json').read_text())
    document['names'] = [name.replace('imu.', 'imu.data.').replace('joint_', 'encoders.joint_states.joint_')
                         for name in document['names']]
    assert document['names'][0] == 'imu.data.angular_velocity.x'
    (tmp_path / 'model' / 'model.json').write_text(json.dumps(document))
    assert AnomalyModel.load(tmp_path / 'model').names == model.names


def test_a_channel_that_has_not_started_is_not_missing():
    stream = FeatureStream(1, window=4)
    column = np.array([np.nan] * 10 + [1.0, 2.0, 3.0] + [np.nan] * 3)[:, None]
    first = stream.update(column[:8])
    rest = stream.update(column[8:])
    assert first.missing.ravel().tolist() == [0] * 8
    assert rest.missing.ravel().tolist() == [0, 0, 0, 0, 0, 1, 2, 3]


# Equivalence of the vectorised scoring with the scores and alarms straight from their definitions.

SHIPPED_MODEL = CONFIG_DIR / 'models' / 'anomaly'


def reference_forest_scores(forest: CompiledForest, rows: np.ndarray) -> np.ndarray:
    """IsolationForest score: every row walks each saved tree from its root to a leaf."""
    total = np.zeros(len(rows))
    for t in range(len(forest.feature)):
        node = np.zeros(len(rows), dtype=np.int64)
        while (internal := forest.feature[t, node] >= 0).any():
            value = rows[np.arange(len(rows)), np.maximum(forest.feature[t, node], 0)]
            child = np.where(value <= forest.threshold[t, node], forest.left[t, node], forest.right[t, node])
            total += internal
            node = np.where(internal, child, node)
        total += forest.leaf_term[t, node]
    return -(2.0 ** (-total / len(forest.feature) / forest.normaliser))


def reference_runs(mask: np.ndarray) -> np.ndarray:
    """Consecutive True rows ending at each row, counted row by row."""
    runs = np.zeros(mask.shape)
    for i in range(len(mask)):
        runs[i] = np.where(mask[i], (runs[i - 1] if i else 0) + 1, 0)
    return runs


def reference_raw_scores(model: AnomalyModel, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every score of :meth:`AnomalyModel.raw_scores` frame by frame / tree by tree."""
    settings = model.settings
    history = np.vstack((np.full((settings.window + settings.gap, len(model.names)), np.nan), values))
    weights = prediction_weights(settings.window, settings.gap)
    residual = values - np.array([weights @ history[i:i + settings.window] for i in range(len(values))])
    previous = history[settings.window + settings.gap - 1:-1]
    started = np.logical_or.accumulate(~np.isnan(values), axis=0)
    kinematic = np.abs(model.kinematic(values) - model.kinematic_center) / model.kinematic_scale
    columns = [np.nan_to_num(np.abs(residual - model.residual_center) / model.residual_scale),
               np.nan_to_num(np.abs(values - model.center) / model.scale), reference_runs(values == previous),
               reference_runs(np.isnan(values) & started), np.nan_to_num(kinematic)]
    standardized = np.clip(np.nan_to_num((values - model.center) / model.scale), -ZSCORE_CLIP, ZSCORE_CLIP)
    if model.iforest is not None:
        columns.append(-reference_forest_scores(model.iforest, standardized)[:, None])
    with torch.no_grad():
        data = torch.tensor(standardized, dtype=torch.float32)
        errors = ((model.autoencoder.network(data) - data) ** 2).numpy().astype(float)
    return np.column_stack(columns + [errors.mean(axis=1)]), errors.argmax(axis=1)


def reference_alarms(model: AnomalyModel, raw: np.ndarray) -> np.ndarray:
    """Per frame: an alarm rises after ``debounce`` frames above threshold, clears after ``clear`` below."""
    settings = model.settings
    ratio = raw / model.thresholds
    above, below = np.zeros(raw.shape[1]), np.zeros(raw.shape[1])
    alarms = np.zeros(raw.shape, dtype=bool)
    for i in range(len(raw)):
        above = np.where(ratio[i] > 1.0, above + 1, 0)
        below = np.where(ratio[i] < settings.clear_ratio, below + 1, 0)
        alarms[i] = (above >= settings.debounce) | (alarms[i - 1] if i else False) & (below < settings.clear)
    return alarms


def excursions(model: AnomalyModel, frames: int, seed: int) -> np.ndarray:
    """Smooth signals around the model's normal levels, then a burst of noise on every channel,
    a step, a dropout, a stuck channel and a channel repeating every other frame.
    """
    rng = np.random.default_rng(seed)
    k = len(model.names)
    t = np.arange(frames)[:, None] / RATE
    wave = np.sin(2 * np.pi * t / rng.uniform(2.0, 20.0, k) + rng.uniform(0, 2 * np.pi, k))
    values = model.center + model.scale * (wave + rng.normal(0, 0.05, (frames, k)))
    values[1000:1100] += model.scale * rng.normal(0, 8, (100, k))
    values[2500:, 1] += 10 * model.scale[1]
    values[3000:3150, 2] = np.nan
    values[3500:3800, 3] = values[3500, 3]
    values[4000:4400:2, 4] = values[3999, 4]
    return values


@pytest.fixture(scope='module')
def fitted_model() -> AnomalyModel:
    settings = DetectorSettings(methods=('robust', 'iforest', 'autoencoder'), iforest_trees=20, iforest_samples=128,
                                autoencoder_epochs=2, max_fit_rows=4000)
    return AnomalyModel.fit(arm_motion(60, 13), settings, ARM)


def test_run_lengths_equal_a_frame_by_frame_count():
    mask = np.random.default_rng(14).random((500, 6)) < np.linspace(0.1, 0.99, 6)
    carry = np.arange(6.0)
    expected = reference_runs(mask) + np.where(np.logical_and.accumulate(mask, axis=0), carry, 0)
    assert np.array_equal(run_lengths(mask, carry), expected)


def test_compiled_forest_equals_scikit_learn_and_the_tree_walk():
    rng = np.random.default_rng(15)
    train = rng.normal(size=(2000, 5)).astype(np.float32)
    forest = IsolationForest(n_estimators=30, max_samples=200, random_state=0).fit(train)
    compiled = CompiledForest.from_sklearn(forest, train)
    rows = np.vstack((rng.normal(0, 2, (3000, 5)).astype(np.float32), train[:100])).astype(float)
    np.testing.assert_allclose(compiled.score_samples(rows), forest.score_samples(rows), rtol=0, atol=1e-12)
    settings = DetectorSettings()  # a forest of the size a model fits, on as many channels as the twin's
    wide = rng.normal(size=(5000, 23))
    sized = CompiledForest.from_sklearn(IsolationForest(
        n_estimators=settings.iforest_trees, max_samples=settings.iforest_samples, random_state=0).fit(wide), wide)
    rows = rng.normal(0, 3, (3000, 23))
    ties, trees = rng.integers(0, len(rows), 500), rng.integers(0, len(sized.feature), 500)
    rows[ties, sized.feature[trees, 0]] = sized.threshold[trees, 0]  # exactly at a root split
    expected = reference_forest_scores(sized, rows)
    np.testing.assert_allclose(sized.score_samples(rows), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sized.score_samples(rows, chunk=7), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sized.score_samples(rows[:1]), expected[:1], rtol=0, atol=1e-12)


@pytest.mark.parametrize('source', ['shipped', 'fitted'])
def test_scores_and_alarms_equal_the_reference(source, fitted_model, monkeypatch):
    model = AnomalyModel.load(SHIPPED_MODEL) if source == 'shipped' else fitted_model
    values = excursions(model, 5000, 16)
    time = np.arange(len(values)) / RATE
    raw, worst = model.raw_scores(FeatureStream(len(model.names), model.settings.window, model.settings.gap), values)
    expected_raw, expected_worst = reference_raw_scores(model, values)
    np.testing.assert_allclose(raw, expected_raw, rtol=1e-9, atol=1e-9)
    assert np.array_equal(worst[:, 0], expected_worst)
    expected = reference_alarms(model, expected_raw)
    changes = expected != np.vstack((np.zeros(expected.shape[1], bool), expected[:-1]))
    assert changes[expected].any() and changes[~expected].any()  # alarms rise and clear
    monkeypatch.setattr(anomaly, 'BLOCK', 1030)  # block boundaries inside the burst, dropout and repeats
    alarms, events = OnlineDetector(model).process(time, values)
    assert np.array_equal(alarms, expected)
    names = model.score_names
    transitions = [(time[i], names[j], bool(expected[i, j])) for i, j in zip(*np.nonzero(changes))]
    assert [(e.stamp, f'{e.sensor}/{e.method}', e.active) for e in events] == transitions
    np.testing.assert_allclose([e.score for e in events], expected_raw[changes], rtol=1e-9)
    streamed = OnlineDetector(model)  # in micro-batches, as live
    parts = [streamed.process(time[i:i + 3], values[i:i + 3]) for i in range(0, len(time), 3)]
    assert np.array_equal(np.vstack([a for a, _ in parts]), expected)
    assert [(e.stamp, f'{e.sensor}/{e.method}', e.active) for _, more in parts for e in more] == transitions


def test_the_isolation_forest_alarms_on_outliers_and_seldom_on_normal_data():
    """Its score is bounded by 1: a margin times a high quantile of it could never be reached."""
    rng = np.random.default_rng(3)
    names = ('a', 'b', 'c', 'd')
    normal = Series(np.arange(6000) / RATE, names, rng.normal(size=(6000, 4)))
    model = AnomalyModel.fit(normal, DetectorSettings(methods=('iforest',), target_far=1e-3))
    column = model.score_names.index('multivariate/iforest')
    assert model.thresholds[column] < 1.0
    test = rng.normal(size=(3000, 4))
    test[2000:2100] += 6.0  # every channel far out at once
    alarms = detect(model, Series(np.arange(3000) / RATE, names, test))[:, column]
    assert alarms[2000:2100].mean() > 0.5
    assert alarms[:1900].mean() < 0.01


# Held-out calibration and the convolutional autoencoder.

def test_the_models_never_see_the_held_out_ends_of_the_blocks_of_each_stretch():
    first, second = normal(100, 20), normal(30, 21)
    joined = Series(np.concatenate([first.time, second.time]), NAMES, np.vstack([first.values, second.values]))
    blocks = anomaly.held_out(joined.time, ROBUST)  # time goes back: two stretches, cut into blocks
    assert [b[:2] for b in blocks] == ([(i * 1250, (i + 1) * 1250) for i in range(8)]
                                      + [(10000 + i * 500, 10500 + i * 500) for i in range(6)])
    held = np.zeros(len(joined.time), dtype=bool)
    for _, end, count in blocks:
        held[end - count:end] = True
    assert abs(held.mean() - ROBUST.holdout) < 0.01 and held[:2500].any() and held[-2500:].any()
    joined.values[held] += 5.0  # only the held-out rows are shifted
    model = AnomalyModel.fit(joined, ROBUST)
    np.testing.assert_allclose(model.center, np.median(joined.values[~held], axis=0))
    # calibrated on the shifted rows: their level scores (about 5 / scale) set the thresholds
    level = [model.score_names.index(f'{c}/level') for c in NAMES]
    assert np.all(model.thresholds[level] > 1.5 * 4.0 / model.scale)


def test_held_out_thresholds_hold_the_target_false_alarm_rate_of_the_autoencoders_on_fresh_data():
    """Calibrated on the rows they were fitted on, reconstruction errors come out too low."""
    settings = DetectorSettings(methods=('autoencoder', 'convolutional'), target_far=5e-3, margin=1.0,
                                autoencoder_epochs=4, max_fit_rows=20000, conv_fit_windows=8000)
    model = AnomalyModel.fit(normal(300, 22), settings)
    fresh = normal(300, 23)
    raw, _ = model.raw_scores(FeatureStream(3, settings.window, settings.gap), fresh.values)
    rates = (raw > model.thresholds).mean(axis=0)
    assert np.all(rates < 3 * settings.target_far) and np.all(rates > settings.target_far / 5), rates


def phase_drift(seconds: float, seed: int, onset: int, ramp: int) -> Series:
    """``normal``, but c's phase slides a quarter turn against a from ``onset`` over ``ramp`` frames:
    each channel stays a smooth sine in its normal range, only their relation breaks.
    """
    data = normal(seconds, seed)
    rng = np.random.default_rng(seed + 100)
    t = data.time
    shift = np.clip((np.arange(t.size) - onset) / ramp, 0.0, 1.0) * np.pi / 2
    data.values[:, 2] = 2.0 * np.sin(2 * np.pi * t / 8.5 + shift) + rng.normal(0, 0.01, t.size)
    return data


@pytest.fixture(scope='module')
def windowed_model() -> AnomalyModel:
    settings = DetectorSettings(methods=('robust', 'convolutional'), autoencoder_epochs=5, conv_fit_windows=15000)
    return AnomalyModel.fit(normal(300, 24), settings)


def test_the_convolutional_autoencoder_streams_like_one_batch(windowed_model, monkeypatch):
    data = phase_drift(40, 25, 2000, 500)
    column = windowed_model.score_names.index('multivariate/convolutional')
    raw, worst = windowed_model.raw_scores(FeatureStream(3, 10, 5), data.values)
    assert np.all(raw[:windowed_model.settings.conv_window - 1, column] == 0.0)  # no full window yet
    monkeypatch.setattr(anomaly, 'BLOCK', 1030)
    whole, events = OnlineDetector(windowed_model).process(data.time, data.values)
    for batch in (1, 4, 7):
        assert np.array_equal(detect(windowed_model, data, batch=batch), whole)
    streamed = anomaly.WindowStream(windowed_model.convolutional, 3)
    errors = np.vstack([streamed.update(windowed_model.standardize(data.values[i:i + 4]))
                        for i in range(0, len(data.time), 4)])
    np.testing.assert_allclose(errors.mean(axis=1), raw[:, column], rtol=1e-5, atol=1e-7)
    assert any(e.method == 'convolutional' and 'worst channel c' in e.description for e in events)


def test_the_convolutional_autoencoder_catches_a_broken_correlation_the_per_sensor_scores_miss(windowed_model):
    assert not detect(windowed_model, normal(120, 26)).any()
    data = phase_drift(60, 27, 2000, 500)
    alarms = detect(windowed_model, data)
    column = windowed_model.score_names.index('multivariate/convolutional')
    assert not np.delete(alarms, column, axis=1).any()  # every per-sensor score stays quiet
    onset = np.flatnonzero(alarms[:, column])
    assert onset.size and onset[0] > 2000 and data.time[onset[0]] - data.time[2000] < 5.0
    assert alarms[3000:, column].mean() > 0.9
