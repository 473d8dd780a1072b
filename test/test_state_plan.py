"""Desired vs reported joints in the twin state: the desired stream read at the state's stamp,
the tracking error, the history's optional plan columns, empty fields without a (fresh) plan.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_state_core import frame_samples

from harness import CONFIG_DIR
from twin_core.signals import state_layout
from twin_core.stamps import from_seconds
from twin_core.tracking import DesiredStates, deviation
from twin_state.config import PlanConfig, StateConfig
from twin_state.estimator import StateEstimator
from twin_state.history import History, InvalidSampleError

URDF = CONFIG_DIR / 'arm.urdf'
JOINTS = ['joint_1', 'joint_2', 'joint_3', 'joint_4']


def desired_position(t: float) -> list[float]:
    return [0.5 * t, -0.2 * t, 0.1, 0.0]


def test_desired_states_interpolate_hold_and_refuse_gaps() -> None:
    desired = DesiredStates(max_gap=0.05)
    assert desired.at(from_seconds(1.0)) is None
    desired.add(from_seconds(1.00), np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    desired.add(from_seconds(1.01), np.array([0.01, 1.0]), np.array([1.0, 0.0]))
    desired.add(from_seconds(1.01), np.array([9.0, 9.0]))  # repeated stamp: ignored
    sample = desired.at(from_seconds(1.004))
    np.testing.assert_allclose(sample.position, [0.004, 1.0])
    np.testing.assert_allclose(sample.velocity, [1.0, 0.0])
    np.testing.assert_allclose(deviation(np.array([0.005, 0.99]), sample), [0.001, -0.01])
    assert desired.at(from_seconds(0.99)) is None  # before the first sample
    np.testing.assert_allclose(desired.at(from_seconds(1.05)).position, [0.05, 1.0])  # along its velocity
    assert desired.at(from_seconds(1.07)) is None  # stale
    desired.add(from_seconds(1.2), np.array([0.2, 1.0]))  # after a gap of 0.19 s
    assert desired.at(from_seconds(1.1)) is None
    assert np.isnan(desired.at(from_seconds(1.2)).velocity).all()  # stream without velocities: held
    np.testing.assert_allclose(desired.at(from_seconds(1.23)).position, [0.2, 1.0])
    desired.add(from_seconds(0.5), np.array([5.0, 5.0]))  # before all kept: a replay restarted
    assert len(desired) == 1
    with pytest.raises(ValueError, match='2 desired velocities for 1 positions'):
        desired.add(from_seconds(2.0), np.array([1.0]), np.array([1.0, 2.0]))


def run_estimator(plan_until: float = np.inf) -> StateEstimator:
    """Frames every 20 ms from t = 10 s with the measured joint_1 0.01 rad ahead of the plan;
    desired states every 10 ms (names in another order) up to ``plan_until``.
    """
    estimator = StateEstimator(StateConfig(), URDF)
    for i in range(50):
        t = 10.0 + 0.01 * i
        if t <= plan_until:
            position = desired_position(t)
            estimator.desired(from_seconds(t), JOINTS[::-1], position[::-1], [0.5, -0.2, 0.0, 0.0][::-1])
        if i % 2 and i > 2:
            frame = t - 0.015  # the state's stamp lies between two desired samples
            measured = desired_position(frame)
            measured[0] += 0.01
            estimator.ingest(frame, frame_samples(measured, [0.0] * 4))
    return estimator


def test_state_carries_desired_values_and_tracking_error_at_its_stamp() -> None:
    estimator = run_estimator()
    robot = estimator.latest.robot
    np.testing.assert_allclose(robot.desired_position, desired_position(estimator.latest.stamp), atol=1e-12)
    np.testing.assert_allclose(robot.desired_velocity, [0.5, -0.2, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(robot.tracking_error, [0.01, 0.0, 0.0, 0.0], atol=1e-12)
    stamps, values = estimator.history.window(['joint_1.tracking_error', 'joint_2.desired_position'], 0.0, 20.0)
    assert len(stamps) == 24
    np.testing.assert_allclose(values[:, 0], 0.01, atol=1e-12)
    np.testing.assert_allclose(values[:, 1], [-0.2 * t for t in stamps], atol=1e-12)
    past = estimator.lookup(float(stamps[5] + 0.007)).state.robot  # between two states
    np.testing.assert_allclose(past.desired_position, desired_position(stamps[5] + 0.007), atol=1e-12)
    np.testing.assert_allclose(past.tracking_error, [0.01, 0.0, 0.0, 0.0], atol=1e-12)
    predicted = estimator.lookup(estimator.history.newest + 0.1, allow_prediction=True).state.robot
    assert predicted.desired_position.size == predicted.tracking_error.size == 0


def test_without_a_fresh_plan_the_fields_are_empty_and_the_history_holds_nan() -> None:
    estimator = run_estimator(plan_until=10.2)
    robot = estimator.latest.robot
    assert robot.desired_position.size == robot.desired_velocity.size == robot.tracking_error.size == 0
    stamps, values = estimator.history.window(['joint_1.tracking_error'], 0.0, 20.0)
    fresh = stamps <= 10.2 + PlanConfig().max_age
    assert fresh.any() and not fresh.all()
    assert np.isfinite(values[fresh]).all() and np.isnan(values[~fresh]).all()
    assert len(run_estimator(plan_until=0.0).history) == 24  # states without any plan are kept


def test_history_accepts_nan_only_in_optional_plan_columns() -> None:
    layout = state_layout(JOINTS)
    history = History(layout, capacity=4)
    row = np.zeros(len(layout))
    row[layout.columns_of(['end_effector.orientation'])] = [0.0, 0.0, 0.0, 1.0]
    row[layout.columns_of(['joint_3.desired_position', 'joint_3.tracking_error'])] = np.nan
    history.append(1.0, row)
    row[layout.index['joint_3.position']] = np.nan
    with pytest.raises(InvalidSampleError, match=r"\['joint_3.position'\]"):
        history.append(2.0, row)
