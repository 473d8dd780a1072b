"""The plain marker logic: alarm colours, arm segments, the prediction ghost, staleness, labels."""
from __future__ import annotations

import numpy as np
import pytest

from harness import CONFIG_DIR
from twin_core.config import ConfigError, build
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level, Risk
from twin_core.urdf import JointOrigin
from twin_state.config import StateConfig
from twin_state.markers import (
    CLEAR,
    DRAW,
    LEVEL_COLOURS,
    RISK_COLOURS,
    ActiveAlarms,
    PredictionFeed,
    TaskInfo,
    Trajectory,
    desired_arm,
    ghost,
    human_duration,
    joint_of,
    maintenance_labels,
    outline_colour,
    position_jacobian,
    segment_colours,
    segments,
    skeleton,
)

JOINTS = ('joint_1', 'joint_2', 'joint_3', 'joint_4')


@pytest.fixture(scope='module')
def kinematics() -> ArmKinematics:
    return ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf')


def rows(count: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return np.hstack([0.8 * t, 0.3 + 0.2 * t, -0.5 + t, 0.1 * np.ones_like(t)])


def trajectory(values: np.ndarray, stamp: float = 10.0, names=JOINTS) -> Trajectory:
    return Trajectory.from_points(stamp, names, 0.02 * np.arange(1, len(values) + 1), values)


def test_joint_of_matches_whole_channel_parts_only() -> None:
    assert joint_of('joint_3.velocity', JOINTS) == 'joint_3'
    assert joint_of('joint_2.temperature', JOINTS) == 'joint_2'
    assert joint_of('multivariate', JOINTS) is None
    assert joint_of('imu.linear_acceleration.x', JOINTS) is None
    assert joint_of('joint_12.velocity', JOINTS) is None


def test_alarms_keep_the_worst_active_level_per_joint_until_cleared() -> None:
    alarms = ActiveAlarms(JOINTS)
    alarms.update('joint_3.velocity', 'residual', Level.WARN, True)
    alarms.update('joint_3.effort', 'level', Level.ERROR, True)
    alarms.update('joint_3.effort', 'flat', Level.WARN, True)
    assert (alarms.level('joint_3'), alarms.level('joint_2'), alarms.level(None)) == (Level.ERROR, Level.OK, Level.OK)
    alarms.update('joint_3.effort', 'level', Level.ERROR, False)
    assert alarms.level('joint_3') == Level.WARN and len(alarms) == 2
    alarms.update('joint_3.velocity', 'residual', Level.WARN, False)
    alarms.update('joint_3.effort', 'flat', Level.WARN, False)
    alarms.update('scan.min', 'missing', Level.ERROR, False)  # clearing an unknown alarm is harmless
    assert alarms.level('joint_3') == Level.OK and len(alarms) == 0
    with pytest.raises(ValueError, match='severity 3'):
        alarms.update('multivariate', 'iforest', 3, True)


def test_segments_belong_to_the_joint_that_moves_them(kinematics: ArmKinematics) -> None:
    owners = {(s.parent, s.child): s.joint for s in segments(kinematics)}
    assert owners == {('base_link', 'link_1'): None, ('base_link', 'laser'): None,
                      ('link_1', 'link_2'): 'joint_1', ('link_2', 'link_3'): 'joint_2',
                      ('link_3', 'link_4'): 'joint_3', ('link_4', 'tool0'): 'joint_4',
                      ('link_4', 'imu_link'): 'joint_4'}


def test_a_fixed_frame_between_joints_stays_with_the_joint_before_it() -> None:
    def joint(name: str, kind: str, parent: str, child: str) -> JointOrigin:
        return JointOrigin(name, kind, parent, child, (0.0, 0.0, 0.1), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    chain = ArmKinematics([joint('a', 'revolute', 'base_link', 'link_a'),
                           joint('flange', 'fixed', 'link_a', 'flange'),
                           joint('b', 'continuous', 'flange', 'link_b'),
                           joint('tip', 'fixed', 'link_b', 'tool0')])
    assert [s.joint for s in segments(chain)] == [None, 'a', 'a', 'b']


def test_colours_follow_joint_alarms_and_unassigned_alarms_mark_base_and_outline(
        kinematics: ArmKinematics) -> None:
    parts = segments(kinematics)
    alarms = ActiveAlarms(JOINTS)
    alarms.update('joint_2.velocity', 'residual', Level.ERROR, True)
    colours = dict(zip(((s.parent, s.child) for s in parts), segment_colours(parts, alarms)))
    assert colours.pop(('link_2', 'link_3')) == LEVEL_COLOURS[Level.ERROR]
    assert set(colours.values()) == {LEVEL_COLOURS[Level.OK]}
    assert outline_colour(alarms) is None
    alarms.update('multivariate', 'autoencoder', Level.WARN, True)
    colours = dict(zip(((s.parent, s.child) for s in parts), segment_colours(parts, alarms)))
    assert colours[('base_link', 'link_1')] == colours[('base_link', 'laser')] == LEVEL_COLOURS[Level.WARN]
    assert colours[('link_3', 'link_4')] == LEVEL_COLOURS[Level.OK]
    assert outline_colour(alarms) == LEVEL_COLOURS[Level.WARN]


def test_ghost_path_and_arms_are_the_forward_kinematics_of_the_mean(
        kinematics: ArmKinematics) -> None:
    parts = segments(kinematics)
    mean = trajectory(rows(51))
    drawn = ghost(kinematics, parts, mean, None, (0.5, 1.0), 10, 2.0, 0.01)
    expected = [kinematics.end_effector(dict(zip(JOINTS, row))).position for row in mean.values]
    np.testing.assert_allclose(drawn.path, expected, atol=1e-12)
    assert [t for t, _ in drawn.arms] == pytest.approx([mean.times[25], mean.times[50]])
    end = dict(zip(JOINTS, mean.values[-1]))
    np.testing.assert_allclose(drawn.arms[-1][1], skeleton(kinematics.transforms(end), parts))
    tool = [i for i, s in enumerate(parts) if s.child == 'tool0'][0]
    np.testing.assert_allclose(drawn.arms[-1][1][tool, 1], expected[-1], atol=1e-12)
    assert drawn.spheres == ()  # no standard deviation, no spheres


def test_desired_ghost_is_the_arm_at_the_desired_positions_only_with_a_plan(
        kinematics: ArmKinematics) -> None:
    parts = segments(kinematics)
    assert desired_arm(kinematics, parts, JOINTS, np.zeros(0)) is None
    desired = np.array([0.4, -0.3, 0.9, 0.2])
    drawn = desired_arm(kinematics, parts, JOINTS, desired)
    tool = [i for i, s in enumerate(parts) if s.child == 'tool0'][0]
    np.testing.assert_allclose(drawn[tool, 1], kinematics.end_effector(dict(zip(JOINTS, desired))).position,
                               atol=1e-12)
    measured = skeleton(kinematics.transforms(dict(zip(JOINTS, desired + [0.0, 0.1, 0.0, 0.0]))), parts)
    assert np.linalg.norm(measured[tool, 1] - drawn[tool, 1]) > 0.01  # a deviation shows beside the arm


def test_position_jacobian_matches_finite_differences(kinematics: ArmKinematics) -> None:
    q = dict(zip(JOINTS, (0.7, -0.4, 0.9, 0.3)))
    jacobian = position_jacobian(kinematics, kinematics.transforms(q), JOINTS)
    step, numeric = 1e-6, np.zeros((3, 4))
    for j, name in enumerate(JOINTS):
        plus, minus = dict(q, **{name: q[name] + step}), dict(q, **{name: q[name] - step})
        numeric[:, j] = (kinematics.end_effector(plus).position
                         - kinematics.end_effector(minus).position) / (2 * step)
    np.testing.assert_allclose(jacobian, numeric, atol=1e-8)
    laser = position_jacobian(kinematics, kinematics.transforms(q), JOINTS, frame='laser')
    np.testing.assert_array_equal(laser, np.zeros((3, 4)))  # no joint moves the laser


def test_uncertainty_spheres_agree_with_fk_of_mean_plus_std(kinematics: ArmKinematics) -> None:
    parts = segments(kinematics)
    values = rows(21)
    sigma = np.zeros_like(values)
    sigma[:, 1] = 1e-3  # shoulder only: the tip moves by σ × its distance from the shoulder axis
    drawn = ghost(kinematics, parts, trajectory(values), trajectory(sigma), (1.0,), 5, 2.0, 0.0)
    assert len(drawn.spheres) == 5
    for (centre, diameter), index in zip(drawn.spheres, (0, 5, 10, 15, 20)):
        np.testing.assert_allclose(centre, drawn.path[index])
        shifted = dict(zip(JOINTS, values[index] + sigma[index]))
        moved = np.linalg.norm(kinematics.end_effector(shifted).position - centre)
        assert diameter == pytest.approx(2 * 2.0 * moved, rel=1e-3)
    tiny = ghost(kinematics, parts, trajectory(values), trajectory(np.zeros_like(values)), (1.0,),
                 3, 2.0, 0.02)
    assert [d for _, d in tiny.spheres] == [0.02, 0.02, 0.02]


def test_bad_trajectories_are_refused(kinematics: ArmKinematics) -> None:
    with pytest.raises(ValueError, match='no points'):
        Trajectory.from_points(0.0, JOINTS, [], [])
    with pytest.raises(ValueError, match='needs 4 positions'):
        Trajectory.from_points(0.0, JOINTS, [0.1], [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match='2 times for 1 points'):
        Trajectory.from_points(0.0, JOINTS, [0.1, 0.2], [[0.0] * 4])
    with pytest.raises(ValueError, match='non-finite'):
        Trajectory.from_points(0.0, JOINTS, [0.1], [[0.0, np.nan, 0.0, 0.0]])
    with pytest.raises(ValueError, match='must increase'):
        Trajectory.from_points(0.0, JOINTS, [0.1, 0.1], [[0.0] * 4] * 2)
    parts = segments(kinematics)
    with pytest.raises(ValueError, match='do not match the arm'):
        ghost(kinematics, parts, trajectory(rows(3)[:, :3], names=JOINTS[:3]), None, (1.0,), 1,
              1.0, 0.0)
    with pytest.raises(ValueError, match='does not match the mean'):
        ghost(kinematics, parts, trajectory(rows(3)), trajectory(rows(4)), (1.0,), 1, 1.0, 0.0)


def test_prediction_feed_draws_new_predictions_and_clears_once_when_stale() -> None:
    feed = PredictionFeed(timeout=1.0)
    assert feed.poll(0.0) == (None, None, None)
    mean, std = trajectory(rows(3), stamp=5.0), trajectory(rows(3) * 0.0, stamp=5.0)
    feed.offer_mean(mean, now=100.0)
    feed.offer_std(std)
    assert feed.poll(100.2) == (DRAW, mean, std)
    assert feed.poll(100.4) == (None, None, None)  # nothing new since the last draw
    feed.offer_std(trajectory(rows(3), stamp=6.0))  # belongs to a mean not received yet
    assert feed.poll(100.5) == (DRAW, mean, None)
    assert feed.poll(101.2)[0] == CLEAR
    assert feed.poll(101.4)[0] is None
    feed.offer_mean(mean, now=200.0)
    assert feed.poll(200.1)[0] == DRAW
    assert feed.poll(150.0)[0] == CLEAR  # the clock jumped back (a looped bag)
    assert feed.age(200.5) == pytest.approx(0.5)


def test_durations_read_in_minutes_hours_and_days() -> None:
    assert human_duration(2400.0) == '40 min'
    assert human_duration(9000.0) == '2.5 h'
    assert human_duration(3 * 86400.0) == '3.0 d'
    assert human_duration(-5.0) == '0 min'


def test_maintenance_labels_sit_at_their_joints_with_rul_and_worst_risk_colour(
        kinematics: ArmKinematics) -> None:
    q = dict(zip(JOINTS, (0.3, 0.5, -0.2, 0.0)))
    frames = kinematics.transforms(q)
    tasks = [TaskInfo('joint_2', 'replace gearbox', Risk.HIGH, 9000.0, 2400.0, 18000.0),
             TaskInfo('joint_2_motor', 'service motor cooling', Risk.CRITICAL, 0.0, 0.0, 0.0),
             TaskInfo('imu', 'inspect sensor', Risk.MEDIUM, 0.0, 0.0, 0.0)]
    labels = maintenance_labels(kinematics, frames, tasks, (0.0, 0.3, 0.0))
    by_text = {label.text.split()[0] if 'imu' not in label.text else 'base': label
               for label in labels}
    assert set(by_text) == {'joint_1', 'joint_2', 'joint_3', 'joint_4', 'base'}
    joint_2 = by_text['joint_2']
    assert joint_2.text == ('joint_2 HIGH · RUL 2.5 h (10–90 %: 40 min–5.0 h)\n'
                            'joint_2 motor CRITICAL · service motor cooling')
    assert joint_2.colour == RISK_COLOURS[Risk.CRITICAL]
    np.testing.assert_allclose(joint_2.position, frames['link_2'][:3, 3] + [0.0, 0.3, 0.0])
    assert (by_text['joint_1'].text, by_text['joint_1'].colour) == ('joint_1 LOW risk',
                                                                  RISK_COLOURS[Risk.LOW])
    assert by_text['base'].text == 'imu MEDIUM · inspect sensor'


def test_visualization_parameters_are_checked() -> None:
    assert build(StateConfig, {}, 'twin_state').visualization.prediction_timeout == 1.0
    with pytest.raises(ConfigError, match='text_offset needs three values'):
        build(StateConfig, {'visualization': {'text_offset': [0.0, 1.0]}}, 'twin_state')
    with pytest.raises(ConfigError, match='ghost_fractions'):
        build(StateConfig, {'visualization': {'ghost_fractions': [1.5]}}, 'twin_state')
