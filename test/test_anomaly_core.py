"""Anomaly core on synthetic series: calibrated false alarms, detection delay, hysteresis."""
import dataclasses

import numpy as np
import pytest

from harness import CONFIG_DIR
from twin_analytics.anomaly import AnomalyModel, DetectorSettings, OnlineDetector
from twin_analytics.anomaly_cli import detect
from twin_analytics.channels import Series, channel_name
from twin_analytics.features import FeatureStream, run_lengths
from twin_analytics.kinematic import ENCODERS, GYRO_CHANNELS, IMU_FRAME
from twin_analytics.metrics import event_scores
from twin_state.kinematics import ArmKinematics

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
    assert raised[0].severity in ('WARN', 'ERROR') and 'above' in raised[0].description


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


def test_stuck_and_missing_sensors(robust_model):
    data = normal(30, 7)
    data.values[1000:1200, 0] = data.values[1000, 0]  # stuck
    data.values[2000:2100, 2] = np.nan  # dropout
    _, events = OnlineDetector(robust_model).process(data.time, data.values)
    raised = {(e.sensor, e.method): e for e in events if e.active}
    assert raised[('a', 'flat')].stamp - data.time[1000] < 0.2
    missing = raised[('c', 'missing')]
    assert missing.stamp - data.time[2000] < 0.2 and missing.severity == 'ERROR'


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
ARM_CHANNELS = GYRO_CHANNELS + tuple(f'{ENCODERS}.{j}.{value}' for value in ('position', 'velocity')
                                     for j in ARM.joint_names)
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
    model = AnomalyModel.fit(arm_motion(600, 10), ROBUST, ARM)
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
    alarms[103:160] = True  # detects the first event 0.3 s late
    alarms[800:805] = True  # false alarm
    scores = event_scores(time, labels, alarms)
    assert (scores.events, scores.detected, scores.alarms, scores.false_alarms) == (2, 1, 2, 1)
    assert scores.delays == pytest.approx((0.3,)) and scores.f1 == pytest.approx(0.5)
    assert scores.missed_rate == 0.5 and scores.pointwise_far == pytest.approx(15 / 930)


def test_channel_names_follow_topics():
    assert channel_name('/encoders/joint_states', 'joint_2.effort') == 'encoders.joint_states.joint_2.effort'
    assert channel_name('/motors/joint_2/temperature', 'temperature') == 'motors.joint_2.temperature'


def test_a_channel_that_has_not_started_is_not_missing():
    stream = FeatureStream(1, window=4)
    column = np.array([np.nan] * 10 + [1.0, 2.0, 3.0] + [np.nan] * 3)[:, None]
    first = stream.update(column[:8])
    rest = stream.update(column[8:])
    assert first.missing.ravel().tolist() == [0] * 8
    assert rest.missing.ravel().tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
