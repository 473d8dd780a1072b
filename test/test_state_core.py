"""State layer cores: history semantics, derivatives, kinematics, obstacles, state, fidelity."""
from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from transforms3d.euler import euler2quat
from transforms3d.quaternions import axangle2quat, quat2mat

from harness import CONFIG_DIR
from twin_core.kinematics import ArmKinematics, Pose, rotation_quaternion
from twin_core.signals import (
    CELL_STATUS_TYPE,
    IMU_TYPE,
    JOINT_STATE_TYPE,
    LASER_SCAN_TYPE,
    TEMPERATURE_TYPE,
    Kind,
    Layout,
    Signal,
)
from twin_core.urdf import read_arm_description
from twin_sim.model import build_model
from twin_state.config import StateConfig
from twin_state.estimator import StateEstimator
from twin_state.fidelity import Trajectory, evaluate, read_trajectory, write_trajectory
from twin_state.history import ExtrapolationError, History, InvalidSampleError, OldDataError, polyfit_at, slope_weights
from twin_state.obstacles import ScanGeometry, extract_obstacles
from twin_state.state import FrameInput as InputSample

URDF = CONFIG_DIR / 'arm.urdf'
LAYOUT = Layout((Signal('x'), Signal('q', kind=Kind.QUATERNION), Signal('mode', kind=Kind.HOLD)))


def quat_z(angle: float) -> np.ndarray:
    """x, y, z, w."""
    return np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])


def row(x: float, angle: float = 0.0, mode: float = 0.0) -> np.ndarray:
    return np.concatenate(([x], quat_z(angle), [mode]))


# --- history ---------------------------------------------------------------------------------

def test_lookup_interpolates_per_field_and_zero_means_latest() -> None:
    history = History(LAYOUT, capacity=10)
    history.append(1.0, row(0.0, 0.0, 1.0))
    history.append(2.0, row(10.0, math.pi / 2, 2.0))
    state = history.state_at(1.25)
    assert state[0] == pytest.approx(2.5)
    np.testing.assert_allclose(state[1:5], quat_z(math.pi / 8), atol=1e-12)  # slerp, not lerp
    assert state[5] == 1.0  # held
    np.testing.assert_array_equal(history.state_at(0.0), row(10.0, math.pi / 2, 2.0))
    np.testing.assert_array_equal(history.state_at(2.0), row(10.0, math.pi / 2, 2.0))


def test_lookups_outside_the_span_raise_instead_of_clamping() -> None:
    history = History(LAYOUT, capacity=10)
    with pytest.raises(ExtrapolationError, match='empty'):
        history.state_at(0.0)
    history.extend([1.0, 2.0], np.stack([row(0.0), row(1.0)]))
    with pytest.raises(ExtrapolationError, match='before the oldest'):
        history.state_at(0.999)
    with pytest.raises(ExtrapolationError, match='after the newest'):
        history.state_at(2.001)


def test_invalid_samples_are_rejected() -> None:
    history = History(LAYOUT, capacity=10)
    with pytest.raises(InvalidSampleError, match="'x'"):
        history.append(1.0, row(math.nan))
    with pytest.raises(InvalidSampleError, match='not normalized'):
        history.append(1.0, np.array([0.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    with pytest.raises(InvalidSampleError, match='values per sample'):
        history.append(1.0, [1.0, 2.0])
    with pytest.raises(InvalidSampleError, match='stamp'):
        history.append(math.inf, row(0.0))
    assert len(history) == 0


def test_window_drops_the_oldest_and_rejects_older_inserts() -> None:
    history = History(LAYOUT, capacity=5, jump_back=100.0)
    for second in range(10):
        history.append(float(second), row(float(second)))
    assert (history.oldest, history.newest, len(history)) == (5.0, 9.0, 5)
    with pytest.raises(OldDataError, match='older than the window'):
        history.append(4.5, row(0.0))
    with pytest.raises(ExtrapolationError):
        history.state_at(4.0)


def test_late_samples_are_inserted_in_order_across_the_ring_seam() -> None:
    rng = np.random.default_rng(3)
    stamps = np.arange(200) * 0.01 + rng.uniform(-0.015, 0.015, 200)  # locally out of order
    history = History(LAYOUT, capacity=37)
    kept: dict[float, float] = {}
    for stamp in stamps:
        try:
            history.append(float(stamp), row(float(stamp)))
        except OldDataError:
            continue
        kept[float(stamp)] = float(stamp)
        expected = sorted(kept)[-37:]
        got, values = history.window(['x'], -1.0, 10.0)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(values[:, 0], expected)


def test_time_jump_back_clears_and_is_counted() -> None:
    history = History(LAYOUT, capacity=100)
    history.extend(np.arange(10.0), np.stack([row(float(i)) for i in range(10)]))
    history.append(8.5, row(0.0))  # late by 0.5 s: kept
    assert (len(history), history.jumps) == (11, 0)
    history.append(2.0, row(0.0))  # 7 s back: a looped bag
    assert (len(history), history.jumps, history.oldest) == (1, 1, 2.0)


def test_batches_equal_single_inserts_across_wraps() -> None:
    stamps = np.arange(250) * 0.01
    values = np.stack([row(float(i), 0.01 * i, i % 3) for i in range(250)])
    single, batched = History(LAYOUT, capacity=64), History(LAYOUT, capacity=64)
    for stamp, value in zip(stamps, values):
        single.append(float(stamp), value)
    for chunk in np.array_split(np.arange(250), [10, 70, 75, 200]):  # incl. one > capacity
        batched.extend(stamps[chunk], values[chunk])
    for history in (single, batched):
        got, rows = history.window(['x', 'q', 'mode'], 0.0, 10.0)
        np.testing.assert_array_equal(got, stamps[-64:])
        np.testing.assert_array_equal(rows, values[-64:])
    query = 2.2345
    np.testing.assert_array_equal(single.state_at(query), batched.state_at(query))
    assert batched.state_at(query)[0] == pytest.approx(223.45)


def test_window_selects_paths_range_and_decimates() -> None:
    history = History(LAYOUT, capacity=100)
    history.extend(np.arange(50.0), np.stack([row(float(i), 0.0, float(i)) for i in range(50)]))
    stamps, values = history.window(['mode', 'q'], 10.0, 19.5)
    np.testing.assert_array_equal(stamps, np.arange(10.0, 20.0))
    assert values.shape == (10, 5)
    np.testing.assert_array_equal(values[:, 0], np.arange(10.0, 20.0))
    stamps, _ = history.window(['x'], 0.0, 49.0, max_samples=5)
    np.testing.assert_array_equal(stamps, [0.0, 12.0, 24.0, 37.0, 49.0])
    with pytest.raises(KeyError):
        history.window(['nope'], 0.0, 1.0)


def test_filtered_derivatives_beat_finite_differences_on_a_noisy_sine() -> None:
    rate, omega, noise = 100.0, 2 * math.pi * 0.5, 1e-3
    stamps = np.arange(0.0, 6.0, 1.0 / rate)
    signal = np.sin(omega * stamps) + np.random.default_rng(7).normal(0.0, noise, len(stamps))
    history = History(Layout((Signal('x'),)), capacity=1000)
    velocity_error, acceleration_error, raw_velocity_error, raw_acceleration_error = [], [], [], []
    for i, (stamp, value) in enumerate(zip(stamps, signal)):
        history.append(float(stamp), [value])
        if i < 100:
            continue
        velocity, acceleration = history.derivatives(['x'])
        velocity_error.append(velocity[0] - omega * math.cos(omega * stamp))
        acceleration_error.append(acceleration[0] + omega ** 2 * math.sin(omega * stamp))
        raw_velocity = (signal[i] - signal[i - 1]) * rate
        raw_velocity_error.append(raw_velocity - omega * math.cos(omega * stamp))
        raw_acceleration = (signal[i] - 2 * signal[i - 1] + signal[i - 2]) * rate ** 2
        raw_acceleration_error.append(raw_acceleration + omega ** 2 * math.sin(omega * stamp))

    def rms(values: list[float]) -> float:
        return float(np.sqrt(np.mean(np.square(values))))

    assert rms(velocity_error) < 0.25 * rms(raw_velocity_error)
    assert rms(velocity_error) < 0.05  # rad/s, amplitude 3.14
    assert rms(acceleration_error) < 0.05 * rms(raw_acceleration_error)
    assert rms(acceleration_error) < 1.0  # rad/s², amplitude 9.9


@pytest.mark.parametrize('samples', [1, 2, 3, 9])
def test_slope_weights_give_the_slope_of_the_least_squares_fit(samples: int) -> None:
    rng = np.random.default_rng(samples)
    times = 1.8e9 + np.cumsum(rng.uniform(0.002, 0.02, samples))  # irregular, at epoch scale
    values = rng.normal(size=(samples, 5))
    slope = slope_weights(times) @ values
    expected = polyfit_at(times, values, times[-1], min(2, samples - 1))[0][1] if samples > 1 else np.zeros(5)
    np.testing.assert_allclose(slope, expected, rtol=1e-7, atol=1e-6)
    if samples > 1:  # a straight line is differentiated exactly
        np.testing.assert_allclose(slope_weights(times) @ (3.0 - 2.5 * (times - times[0])), -2.5, rtol=1e-9)


def test_prediction_is_separate_from_lookup_and_reports_uncertainty() -> None:
    history = History(Layout((Signal('x'),)), capacity=100)
    stamps = np.arange(0.0, 1.0, 0.01)
    noisy = 2.0 * stamps + np.random.default_rng(1).normal(0.0, 0.01, len(stamps))
    history.extend(stamps, noisy[:, None])
    with pytest.raises(ExtrapolationError):
        history.state_at(1.05)
    near, far = history.predict(['x'], 1.0), history.predict(['x'], 1.2)
    assert far.values[0] == pytest.approx(2.4, abs=0.1)
    assert 0.0 < near.sigma[0] < far.sigma[0]
    assert far.horizon == pytest.approx(1.2 - stamps[-1])
    with pytest.raises(ExtrapolationError, match='use state_at'):
        history.predict(['x'], 0.5)


# --- kinematics ------------------------------------------------------------------------------

def mujoco_poses(model: mujoco.MjModel, joints: dict[str, float]) -> mujoco.MjData:
    data = mujoco.MjData(model)
    for name, value in joints.items():
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    return data


def assert_same_poses(kinematics: ArmKinematics, model: mujoco.MjModel,
                      joints: dict[str, float]) -> None:
    data = mujoco_poses(model, joints)
    poses = kinematics.poses(joints)
    assert set(poses) >= {'tool0'}
    for frame, pose in poses.items():
        body = model.body(frame).id
        for found in (pose, kinematics.end_effector(joints, frame)):  # the whole tree, one path
            np.testing.assert_allclose(found.position, data.xpos[body], atol=1e-9)
            assert abs(float(found.orientation @ data.xquat[body])) == pytest.approx(1.0, abs=1e-9)


def assert_same_angular_velocity(kinematics: ArmKinematics, model: mujoco.MjModel, frame: str,
                                 rng: np.random.Generator, rows: int = 10) -> None:
    names = kinematics.joint_names
    positions, velocities = rng.uniform(-3, 3, (rows, len(names))), rng.uniform(-2, 2, (rows, len(names)))
    omega = kinematics.angular_velocity(positions, velocities, frame)
    data = mujoco.MjData(model)
    expected = np.zeros(6)
    for row in range(rows):
        for j, name in enumerate(names):
            data.qpos[model.joint(name).qposadr[0]] = positions[row, j]
            data.qvel[model.joint(name).dofadr[0]] = velocities[row, j]
        mujoco.mj_forward(model, data)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, model.body(frame).id, expected, 1)
        np.testing.assert_allclose(omega[row], expected[:3], atol=1e-9)


def test_forward_kinematics_matches_mujoco_for_random_configurations() -> None:
    model, _ = build_model(URDF, read_arm_description(URDF))
    kinematics = ArmKinematics.from_urdf(URDF)
    arm = read_arm_description(URDF)
    rng = np.random.default_rng(11)
    for _ in range(20):
        assert_same_poses(kinematics, model,
                          dict(zip(arm.joint_names, rng.uniform(arm.lower, arm.upper))))
    assert_same_angular_velocity(kinematics, model, 'imu_link', rng)


def test_forward_kinematics_handles_rpy_origins_and_skewed_axes(tmp_path) -> None:
    urdf = tmp_path / 'skewed.urdf'
    urdf.write_text('''<robot name="skewed">
      <link name="base_link"/><link name="a"/><link name="b"/><link name="tool0"/>
      <joint name="j1" type="revolute"><parent link="base_link"/><child link="a"/>
        <origin xyz="0.1 -0.2 0.3" rpy="0.3 -0.7 1.1"/><axis xyz="1 2 3"/>
        <limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
      <joint name="j2" type="continuous"><parent link="a"/><child link="b"/>
        <origin xyz="0 0.4 0" rpy="-1.2 0.2 0.5"/><axis xyz="0 -1 1"/></joint>
      <joint name="fixed" type="fixed"><parent link="b"/><child link="tool0"/>
        <origin xyz="0.05 0 0.1" rpy="0.4 0.4 0.4"/></joint>
    </robot>''')
    spec = mujoco.MjSpec.from_file(str(urdf))
    spec.compiler.fusestatic = False
    for link in ('a', 'b', 'tool0'):  # MuJoCo needs mass to keep bodies with joints
        spec.body(link).mass = 1.0
        spec.body(link).inertia = [0.01, 0.01, 0.01]
    model = spec.compile()
    kinematics = ArmKinematics.from_urdf(urdf)
    assert kinematics.joint_names == ('j1', 'j2')
    rng = np.random.default_rng(5)
    for _ in range(10):
        assert_same_poses(kinematics, model, dict(zip(('j1', 'j2'), rng.uniform(-3, 3, 2))))
    assert_same_angular_velocity(kinematics, model, 'tool0', rng)


@pytest.mark.parametrize('axis', [(1, 0.3, -0.2), (0.3, 1, 0.2), (-0.2, 0.3, 1), (1, 1, 1)])
@pytest.mark.parametrize('angle', [0.0, 0.4, 2.0, math.pi - 1e-9, math.pi, -math.pi / 2])
def test_rotation_quaternion_is_that_of_the_rotation_with_w_not_negative(axis, angle) -> None:
    expected = axangle2quat(axis, angle)
    expected = expected if expected[0] >= 0.0 else -expected
    matrix = np.eye(4)
    matrix[:3, :3] = quat2mat(expected)
    found = rotation_quaternion(matrix)
    assert found[0] >= 0.0
    assert abs(float(found @ expected)) == pytest.approx(1.0, abs=1e-12)  # ±q alike at w = 0
    np.testing.assert_allclose(quat2mat(found), matrix[:3, :3], atol=1e-12)


def test_base_pose_places_the_arm_in_world() -> None:
    base = Pose(np.array([1.0, 2.0, 0.5]), euler2quat(0.0, 0.0, math.pi / 2))
    kinematics = ArmKinematics.from_urdf(URDF, base)
    tool = kinematics.end_effector({})
    np.testing.assert_allclose(tool.position, [0.0, 0.0, 1.57], atol=1e-12)
    world = kinematics.in_world(kinematics.end_effector({'joint_2': math.pi / 2}))
    np.testing.assert_allclose(world.position, [1.0, 2.0 + 1.01, 0.5 + 0.56], atol=1e-12)


# --- obstacles -------------------------------------------------------------------------------

def test_scan_clusters_become_obstacles_in_base_link() -> None:
    geometry = ScanGeometry(-math.pi, math.pi - 2 * math.pi / 360, 0.05, 10.0)
    angles = geometry.angles(360)
    ranges = np.full(360, np.inf)
    ranges[5] = -np.inf  # too close: not a hit
    for centre, distance in ((90, 1.0), (0, 2.0)):  # 0 = beam at -pi, wraps around
        beams = np.arange(centre - 5, centre + 6) % 360
        ranges[beams] = distance / np.cos(angles[beams] - angles[centre])  # a flat wall
    ranges[102:109] = 1.0  # an arc 7° (0.12 m) beside the near wall: a separate obstacle
    ranges[200] = 3.0  # a lone hit: noise
    laser = ArmKinematics.from_urdf(URDF).transforms({})['laser']
    obstacles = extract_obstacles(ranges, geometry, laser, gap=0.1, min_points=3)
    assert sorted(len(o.points) for o in obstacles) == [7, 11, 11]
    far = max(obstacles, key=lambda o: o.distance)
    near = next(o for o in obstacles if o is not far and len(o.points) == 11)
    expected_near = [math.cos(angles[90]), math.sin(angles[90]), 0.30]  # laser: 0.30 up
    np.testing.assert_allclose(near.centroid, expected_near, atol=1e-9)
    np.testing.assert_allclose(far.centroid, [-2.0, 0.0, 0.30], atol=1e-9)
    assert near.distance == pytest.approx(1.0)
    assert far.radius == pytest.approx(2.0 * math.tan(math.radians(5)), rel=1e-6)


# --- state -----------------------------------------------------------------------------------

def frame_samples(positions: list[float], efforts: list[float], velocity: bool = True,
                  temperature: float = 40.0) -> list[InputSample]:
    joints = [f'joint_{i}' for i in range(1, 5)]
    names = [f'{j}.position' for j in joints] + [f'{j}.effort' for j in joints]
    values = positions + efforts
    if velocity:
        names += [f'{j}.velocity' for j in joints]
        values += [0.5, 0.0, 0.0, 0.0]
    samples = [
        InputSample('/encoders/joint_states', JOINT_STATE_TYPE, 0.001, 0, tuple(names),
                    np.array(values)),
        InputSample('/imu/data', IMU_TYPE, 0.002, 1,
                    ('linear_acceleration.x', 'linear_acceleration.y', 'linear_acceleration.z',
                     'angular_velocity.x', 'angular_velocity.y', 'angular_velocity.z'),
                    np.array([0.0, 0.0, 9.81, 0.1, 0.2, 0.3])),
        InputSample('/cell/status', CELL_STATUS_TYPE, 0.05, 2,
                    ('task_id', 'task_progress', 'speed_override', 'stopped'),
                    np.array([7.0, 0.25, 0.8, 0.0])),
        InputSample('/scan', LASER_SCAN_TYPE, 0.03, 2, (), np.full(360, np.inf)),
    ]
    samples += [InputSample(f'/motors/{j}/temperature', TEMPERATURE_TYPE, 0.2, 2, ('temperature',),
                            np.array([temperature + i])) for i, j in enumerate(joints)]
    return samples


def test_a_scan_held_over_frames_is_clustered_once_and_a_new_one_again(monkeypatch) -> None:
    import twin_state.state as state_module
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return extract_obstacles(*args, **kwargs)
    monkeypatch.setattr(state_module, 'extract_obstacles', counted)
    estimator = StateEstimator(StateConfig(), URDF)
    wall = np.full(360, np.inf)
    wall[85:96] = 1.0
    frames = [frame_samples([0.1, 0.4, -0.3, 0.2], [0.0] * 4) for _ in range(4)]
    for frame in frames[2:]:
        frame[3] = InputSample('/scan', LASER_SCAN_TYPE, 0.03, 2, (), wall)
    states = [estimator.ingest(10.0 + 0.01 * i, frame) for i, frame in enumerate(frames)]
    assert len(calls) == 2  # the first scan, then the wall: each held frame reuses its obstacles
    assert [len(s.environment.obstacles) for s in states] == [0, 0, 1, 1]


def test_builder_maps_inputs_to_the_state_schema() -> None:
    estimator = StateEstimator(StateConfig(), URDF)
    positions = [0.1, 0.4, -0.3, 0.2]
    state = estimator.ingest(10.0, frame_samples(positions, [15.0, -100.0, 0.0, 4.0]))
    robot, process = state.robot, state.process
    np.testing.assert_array_equal(robot.position, positions)
    np.testing.assert_allclose(robot.load, [0.1, 0.5, 0.0, 0.1])
    np.testing.assert_array_equal(robot.motor_temperature, [40.0, 41.0, 42.0, 43.0])
    np.testing.assert_array_equal(robot.imu_angular_velocity, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(robot.imu_linear_acceleration, [0.0, 0.0, 9.81])
    expected = ArmKinematics.from_urdf(URDF).end_effector(dict(zip(robot.joint_names, positions)))
    np.testing.assert_allclose(robot.end_effector_pose.position, expected.position)
    np.testing.assert_allclose(robot.end_effector_pose.orientation, expected.orientation)
    assert (process.task_id, process.status, process.progress, process.speed_override) == \
        (7, 'running', 0.25, 0.8)
    assert [i.topic for i in process.inputs][:3] == ['/encoders/joint_states', '/imu/data',
                                                     '/cell/status']
    stamps, values = estimator.history.window(['joint_3.temperature', 'task_id'], 0.0, 20.0)
    np.testing.assert_array_equal(stamps, [10.0])
    np.testing.assert_array_equal(values, [[42.0, 7.0]])
    _, (orientation,) = estimator.history.window(['end_effector.orientation'], 0.0, 20.0)
    np.testing.assert_allclose(orientation, expected.orientation[[1, 2, 3, 0]])  # x, y, z, w


def test_values_without_a_signal_are_ignored_and_value_order_is_free() -> None:
    estimator = StateEstimator(StateConfig(), URDF)
    samples = frame_samples([0.0] * 4, [0.0] * 4)
    imu = InputSample('/imu/data', IMU_TYPE, 0.002, 1, ('angular_velocity.z', 'orientation.w',
                                                         'linear_acceleration.x'), np.array([0.7, 1.0, 0.5]))
    state = estimator.ingest(1.0, [*samples[:1], imu, *samples[2:]] + samples[1:2])
    np.testing.assert_array_equal(state.robot.imu_angular_velocity, [0.1, 0.2, 0.3])
    state = estimator.ingest(1.01, [imu])
    np.testing.assert_array_equal(state.robot.imu_linear_acceleration, [0.5, 0.0, 9.81])
    np.testing.assert_array_equal(state.robot.imu_angular_velocity, [0.1, 0.2, 0.7])


def test_missing_inputs_make_the_state_incomplete() -> None:
    estimator = StateEstimator(StateConfig(), URDF)
    samples = [s for s in frame_samples([0.0] * 4, [0.0] * 4) if s.type != TEMPERATURE_TYPE]
    assert estimator.ingest(1.0, samples) is None
    assert estimator.errors == {'InvalidSampleError': 1}
    assert estimator.ingest(1.01, frame_samples([0.0] * 4, [0.0] * 4)) is not None


def test_velocity_and_acceleration_are_derived_when_not_measured() -> None:
    estimator = StateEstimator(StateConfig(), URDF)
    for i in range(30):
        t = i * 0.01
        state = estimator.ingest(100.0 + t, frame_samples([0.3 * t * t, 0.0, 0.0, 0.0], [0.0] * 4,
                                                         velocity=False))
    assert state.robot.velocity[0] == pytest.approx(0.6 * 0.29, rel=1e-6)
    assert state.robot.acceleration[0] == pytest.approx(0.6, rel=1e-3)


def test_estimator_interpolates_past_states_and_labels_predictions() -> None:
    estimator = StateEstimator(StateConfig(), URDF)
    for i in range(20):
        estimator.ingest(50.0 + 0.01 * i, frame_samples([0.01 * i, 0.0, 0.0, 0.0], [0.0] * 4))
    past = estimator.lookup(50.055)
    assert not past.predicted
    assert past.state.robot.position[0] == pytest.approx(0.055)
    with pytest.raises(ExtrapolationError):
        estimator.lookup(50.3)
    ahead = estimator.lookup(50.3, allow_prediction=True)
    assert ahead.predicted and ahead.state.robot.position[0] == pytest.approx(0.3, abs=1e-6)
    assert ahead.sigma.shape == (4,)
    expected = estimator.kinematics.end_effector({'joint_1': 0.3})
    np.testing.assert_allclose(ahead.state.robot.end_effector_pose.orientation,
                               expected.orientation, atol=1e-5)


# --- fidelity --------------------------------------------------------------------------------

def test_fidelity_recovers_a_known_latency_and_noise(tmp_path) -> None:
    stamps = np.arange(0.0, 20.0, 0.01)
    joints = ('joint_1', 'joint_2', 'joint_3', 'joint_4')

    def motion(t: np.ndarray) -> np.ndarray:
        return np.stack([0.8 * np.sin(0.7 * t + k) for k in range(4)], axis=1)

    truth = Trajectory(stamps, motion(stamps), joints)
    latency, noise = 0.042, 0.002
    twin_stamps = np.arange(0.0, 19.0, 0.01) + 0.008  # the first 4 precede truth + latency
    measured = motion(twin_stamps - latency) + np.random.default_rng(2).normal(
        0.0, noise, (len(twin_stamps), 4))
    twin = Trajectory(twin_stamps, measured[:, ::-1], joints[::-1])  # other column order
    report = evaluate(twin, truth, ArmKinematics.from_urdf(URDF), max_lag=0.2)
    assert report.latency == pytest.approx(latency, abs=1e-3)
    assert report.samples == len(twin_stamps) - 4
    np.testing.assert_allclose(report.joint_rmse, noise, rtol=0.1)
    assert np.all(report.joint_rmse_unaligned > 5 * noise)
    assert 0.5e-3 < report.ee_error_mean < 5e-3
    write_trajectory(tmp_path / 'twin.csv', twin)
    again = read_trajectory(tmp_path / 'twin.csv')
    assert again.joint_names == twin.joint_names
    np.testing.assert_allclose(again.positions, twin.positions, rtol=1e-8)


def test_fidelity_of_a_perfect_twin_is_zero() -> None:
    stamps = np.arange(0.0, 5.0, 0.01)
    truth = Trajectory(stamps, np.stack([np.sin(stamps)] * 4, axis=1),
                       ('joint_1', 'joint_2', 'joint_3', 'joint_4'))
    report = evaluate(truth, truth, ArmKinematics.from_urdf(URDF), max_lag=0.1)
    assert report.latency == pytest.approx(0.0, abs=1e-4)
    assert report.ee_error_max < 1e-9
