"""The twin_state node over DDS: frames in, joint states, end-effector pose, services and markers
out (the arm coloured by anomaly alarms, health labels, the ghost of the predicted trajectory).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from harness import CONFIG_DIR, wait_for
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level
from twin_core.stamps import from_seconds
from twin_interfaces.msg import (
    AnomalyEvent,
    MaintenanceSchedule,
    MaintenanceTask,
    SensorSample,
    SyncedFrame,
    TwinState,
)
from twin_interfaces.srv import GetHistory, GetStateAt
from twin_ros.stamps import to_msg
from twin_state import markers as viz

pytestmark = pytest.mark.integration
JOINTS = ['joint_1', 'joint_2', 'joint_3', 'joint_4']
START, PERIOD, FRAMES = 1000.0, 0.02, 40


def positions(t: float) -> list[float]:
    return [0.5 * (t - START), 0.2, -0.4 + (t - START), 0.1]


def stamp(t: float) -> Time:
    return to_msg(from_seconds(t))


def frame(t: float) -> SyncedFrame:
    def sample(topic: str, kind: str, names: list[str], values: list[float]) -> SensorSample:
        return SensorSample(topic=topic, type=kind, stamp=stamp(t), age=0.0,
                            quality=SensorSample.QUALITY_EXACT, names=names, values=values)
    samples = [
        sample('encoders/joint_states', 'sensor_msgs/msg/JointState',
               [f'{j}.{f}' for f in ('position', 'effort') for j in JOINTS],
               positions(t) + [1.0, 2.0, 3.0, 4.0]),
        sample('imu/data', 'sensor_msgs/msg/Imu',
               [f'{q}.{a}' for q in ('linear_acceleration', 'angular_velocity') for a in 'xyz'],
               [0.0, 0.0, 9.81, 0.0, 0.0, 0.0]),
        sample('/cell/status', 'twin_interfaces/msg/CellStatus',
               ['task_id', 'task_progress', 'speed_override', 'stopped'], [3.0, 0.5, 1.0, 0.0]),
        sample('/scan', 'sensor_msgs/msg/LaserScan', [], [float('inf')] * 90 + [1.0] * 10
               + [float('inf')] * 260),
    ] + [sample(f'/motors/{j}/temperature', 'sensor_msgs/msg/Temperature', ['temperature'], [35.0])
         for j in JOINTS]
    return SyncedFrame(header=Header(stamp=stamp(t), frame_id='base_link'), samples=samples,
                       max_skew=0.0, complete=True)


def call(probe, service_type, name: str, request, timeout: float = 10.0):
    client = probe.node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f'{name} not available'
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, f'{name} did not answer within {timeout} s'
        time.sleep(0.02)
    return future.result()


def start_state_node(start_process, probe, *parameters: str):
    """The state node with config/state.yaml (+ ``parameters``) and a frame publisher it hears."""
    publisher = probe.node.create_publisher(SyncedFrame, '/twin/synced_frame', 10)
    node = start_process('state_node', '--ros-args', '--params-file',
                         str(CONFIG_DIR / 'state.yaml'), *parameters, name='state_node')
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0 or probe.node.count_publishers(
            '/twin/end_effector_pose') == 0:
        assert time.monotonic() < deadline, f'state_node never subscribed:\n{node.output()}'
        time.sleep(0.05)
    return node, publisher


def test_state_node_publishes_fk_and_serves_interpolated_states(start_process, probe):
    for topic, kind in (('/twin/joint_states', JointState), ('/twin/markers', MarkerArray),
                        ('/twin/end_effector_pose', PoseStamped),
                        ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    node, publisher = start_state_node(start_process, probe)
    times = [START + i * PERIOD for i in range(FRAMES)]
    for t in times:
        publisher.publish(frame(t))
        time.sleep(PERIOD)

    def reached_end(messages: list) -> bool:
        return any(m.header.stamp == stamp(times[-1]) for m in messages)

    last = probe.wait_for('/twin/joint_states', reached_end, timeout=10)[-1]
    assert list(last.name) == JOINTS
    np.testing.assert_allclose(last.position, positions(times[-1]), atol=1e-12)
    poses = probe.wait_for('/twin/end_effector_pose', reached_end, timeout=5)
    expected = ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf').end_effector(
        dict(zip(JOINTS, positions(times[-1]))))
    pose = poses[-1].pose
    assert poses[-1].header.frame_id == 'base_link'
    np.testing.assert_allclose([pose.position.x, pose.position.y, pose.position.z],
                               expected.position, atol=1e-9)
    np.testing.assert_allclose([pose.orientation.w, pose.orientation.x, pose.orientation.y,
                                pose.orientation.z], expected.orientation, atol=1e-9)

    query = times[10] + 0.3 * PERIOD
    answer = call(probe, GetStateAt, '/twin/get_state_at', GetStateAt.Request(stamp=stamp(query)))
    assert answer.success, answer.message
    assert not answer.state.predicted
    np.testing.assert_allclose(answer.state.position, positions(query), atol=1e-9)
    assert (answer.state.task_id, answer.state.effort.tolist()) == (3, [1.0, 2.0, 3.0, 4.0])
    outside = call(probe, GetStateAt, '/twin/get_state_at',
                   GetStateAt.Request(stamp=stamp(times[0] - 1.0)))
    assert not outside.success and 'ExtrapolationError' in outside.message

    history = call(probe, GetHistory, '/twin/get_history', GetHistory.Request(
        paths=['joint_3.position', 'end_effector.orientation'], start=stamp(times[5]),
        end=stamp(times[14])))
    assert history.success, history.message
    assert list(history.columns) == ['joint_3.position'] + [
        f'end_effector.orientation.{a}' for a in 'xyzw']
    values = np.array(history.values.data).reshape(10, 5)
    np.testing.assert_allclose(history.stamps, times[5:15])
    np.testing.assert_allclose(values[:, 0], [positions(t)[2] for t in times[5:15]])

    markers = probe.wait_for('/twin/markers', lambda m: len(m) >= 1, timeout=5)[-1].markers
    assert {m.ns for m in markers} >= {'arm', 'obstacles'}

    def counted_all(messages: list) -> bool:
        return any(s.name == 'twin_state: history' and ('frames', str(FRAMES)) in
                   [(kv.key, kv.value) for kv in s.values] for m in messages for s in m.status)
    probe.wait_for('/diagnostics', counted_all, timeout=5)


def named(message: MarkerArray, ns: str) -> list[Marker]:
    return [m for m in message.markers if m.ns == ns and m.action == Marker.ADD]


def xyz(markers: list) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in markers])


def test_state_node_draws_alarms_health_and_the_prediction_ghost(start_process, probe):
    for topic in ('/twin/markers', '/twin/predicted_markers'):
        probe.subscribe(topic, MarkerArray)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    schedule = probe.node.create_publisher(MaintenanceSchedule, '/twin/maintenance_schedule', latched)
    schedule.publish(MaintenanceSchedule(revision=1, tasks=[MaintenanceTask(
        component='joint_2', action='replace gearbox', risk='HIGH', rul=9000.0, rul_low=2400.0,
        rul_high=18000.0)]))  # published before the node starts: it must arrive latched
    anomalies = probe.node.create_publisher(AnomalyEvent, '/twin/anomalies', 10)
    predicted = probe.node.create_publisher(JointTrajectory, '/twin/predicted_trajectory', 10)
    spread = probe.node.create_publisher(JointTrajectory, '/twin/predicted_trajectory_std', 10)
    node, frames = start_state_node(start_process, probe,
                                    '-p', 'visualization.prediction_timeout:=0.6')
    for t in [START + i * PERIOD for i in range(10)]:
        frames.publish(frame(t))
        time.sleep(PERIOD)
    kinematics = ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf')
    parts = viz.segments(kinematics)
    link_2 = next(i for i, s in enumerate(parts) if s.joint == 'joint_2')

    def arm_colours(message: MarkerArray) -> list[tuple[float, ...]]:
        colours = [(c.r, c.g, c.b, c.a) for c in named(message, 'arm')[0].colors]
        return [tuple(round(v, 5) for v in c) for c in colours[::2]]  # one per segment
    green, red = (tuple(round(v, 5) for v in viz.LEVEL_COLOURS[level])
                  for level in (Level.OK, Level.ERROR))

    def showing(colour_of_link_2: tuple) -> callable:
        def check(messages: list) -> bool:
            if not messages or not named(messages[-1], 'arm'):
                return False
            colours = arm_colours(messages[-1])
            return colours[link_2] == colour_of_link_2 and colours[:link_2] + colours[link_2 + 1:] \
                == [green] * (len(parts) - 1)
        return check

    ends = viz.skeleton(kinematics.transforms(dict(zip(JOINTS, positions(START + 9 * PERIOD)))),
                        parts).reshape(-1, 3)

    def at_the_last_frame(messages: list) -> bool:  # markers drawn before it are older poses
        return showing(green)(messages) and np.allclose(xyz(named(messages[-1], 'arm')[0].points), ends,
                                                        atol=1e-9)
    last = probe.wait_for('/twin/markers', at_the_last_frame, timeout=10)[-1]
    labels = {m.text.split()[0]: m for m in named(last, 'health')}
    assert labels['joint_2'].text == 'joint_2 HIGH · RUL 2.5 h (10–90 %: 40 min–5.0 h)'
    assert labels['joint_2'].type == Marker.TEXT_VIEW_FACING
    assert labels['joint_1'].text == 'joint_1 LOW risk'

    assert wait_for(lambda: all(p.get_subscription_count() for p in (anomalies, predicted, spread)),
                    timeout=10), node.output()
    anomalies.publish(AnomalyEvent(sensor='multivariate', method='iforest', severity=9,
                                   active=True))  # bad input: refused, the node carries on
    alarm = AnomalyEvent(sensor='joint_2.velocity', method='residual',
                         severity=2, active=True)  # DiagnosticStatus.ERROR
    anomalies.publish(alarm)
    probe.wait_for('/twin/markers', showing(red), timeout=5)
    alarm.active = False
    anomalies.publish(alarm)
    probe.wait_for('/twin/markers', showing(green), timeout=5)

    mean = np.array([positions(START + 0.2 + 0.02 * k) for k in range(1, 51)])
    header = Header(stamp=stamp(START + 0.2), frame_id='base_link')

    def trajectory(rows: np.ndarray) -> JointTrajectory:
        return JointTrajectory(header=header, joint_names=JOINTS, points=[JointTrajectoryPoint(
            positions=row.tolist(), time_from_start=Duration(nanosec=20_000_000 * k))
            for k, row in enumerate(rows, start=1)])
    sigma = np.tile([0.002, 0.01, 0.005, 0.001], (len(mean), 1)) * np.arange(1, 51)[:, None]
    ragged = trajectory(mean)
    ragged.points[3].positions = [0.0]
    predicted.publish(ragged)  # bad input: refused
    spread.publish(trajectory(sigma))
    predicted.publish(trajectory(mean))

    def ghost_with_spheres(messages: list) -> bool:
        return bool(messages) and bool(named(messages[-1], 'uncertainty'))
    ghost = probe.wait_for('/twin/predicted_markers', ghost_with_spheres, timeout=5)[-1]
    expected = [kinematics.end_effector(dict(zip(JOINTS, row))).position for row in mean]
    path = named(ghost, 'predicted_path')[0]
    assert path.type == Marker.LINE_STRIP and path.header.frame_id == 'base_link'
    np.testing.assert_allclose(xyz(path.points), expected, atol=1e-9)
    arms = named(ghost, 'ghost_arm')
    assert len(arms) == 2
    np.testing.assert_allclose(xyz(arms[-1].points), viz.skeleton(kinematics.transforms(
        dict(zip(JOINTS, mean[-1]))), parts).reshape(-1, 3), atol=1e-9)
    spheres = named(ghost, 'uncertainty')
    reference = viz.ghost(kinematics, parts, viz.Trajectory.from_points(
        0.0, JOINTS, 0.02 * np.arange(1, 51), mean), viz.Trajectory.from_points(
        0.0, JOINTS, 0.02 * np.arange(1, 51), sigma), (1.0,), 10, 2.0, 0.01).spheres
    assert len(spheres) == len(reference) == 10
    np.testing.assert_allclose([s.scale.x for s in spheres], [d for _, d in reference], rtol=1e-9)
    assert spheres[-1].scale.x > spheres[0].scale.x  # the spread grows over the horizon

    def cleared(messages: list) -> bool:
        return bool(messages) and [m.action for m in messages[-1].markers] == [Marker.DELETEALL]
    probe.wait_for('/twin/predicted_markers', cleared, timeout=3)
    assert node.process.poll() is None, node.output()
    assert 'severity 9' in node.output() and 'every point needs 4 positions' in node.output()


def test_each_joint_measurement_is_mirrored_live_in_the_twin_joint_order(start_process, probe):
    from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data
    probe.subscribe('/twin/live/joint_states', JointState,
                    QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_state_node(start_process, probe)
    encoders = probe.node.create_publisher(JointState, '/encoders/joint_states', qos_profile_sensor_data)
    assert wait_for(lambda: encoders.get_subscription_count() > 0, timeout=10)
    shuffled = ['joint_3', 'joint_1', 'joint_4', 'joint_2']
    sent = [START + i * 0.002 for i in range(50)]
    for index, t in enumerate(sent):
        if index == 25:  # refused and reported, and the stream goes on
            encoders.publish(JointState(header=Header(stamp=stamp(t)), name=shuffled,
                                        position=[float('nan'), 0.0, 0.0, 0.0]))
        encoders.publish(JointState(header=Header(stamp=stamp(t)), name=shuffled,
                                    position=[3.0 + t, 1.0 + t, 4.0 + t, 2.0 + t], velocity=[0.3, 0.1, 0.4, 0.2]))
        time.sleep(0.2 if index == len(sent) - 2 else 0.005)  # best effort: the last one alone
    live = probe.wait_for('/twin/live/joint_states', lambda m: m and m[-1].header.stamp == stamp(sent[-1]),
                          timeout=10)
    assert len(live) >= 10
    assert all(list(m.name) == JOINTS and m.header.frame_id == 'base_link' for m in live)
    received = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in live]
    assert received == sorted(received)
    last = live[-1]
    assert last.header.stamp == stamp(sent[-1])
    np.testing.assert_allclose(last.position, [1.0 + sent[-1], 2.0 + sent[-1], 3.0 + sent[-1], 4.0 + sent[-1]])
    np.testing.assert_allclose(last.velocity, [0.1, 0.2, 0.3, 0.4])
    assert all(np.isfinite(m.position).all() for m in live)

    def reported(messages: list) -> bool:
        return any('encoders/joint_states' in s.message and 'non-finite position' in s.message
                   for m in messages for s in m.status)
    probe.wait_for('/diagnostics', reported, timeout=5)


def test_a_frame_that_cannot_be_read_is_refused_and_reported(start_process, probe):
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_state_node(start_process, probe)
    frames = probe.node.create_publisher(SyncedFrame, '/twin/synced_frame', 10)
    assert wait_for(lambda: frames.get_subscription_count() > 0, timeout=10)
    whole = serialize_message(SyncedFrame(samples=[SensorSample(topic='imu/data', names=['x'], values=[1.0])]))
    frames.publish(whole[:40])  # cut inside the sample

    def reported(messages: list) -> bool:
        return any('twin/synced_frame' in s.message and 'ends inside a field' in s.message
                   for m in messages for s in m.status)
    probe.wait_for('/diagnostics', reported, timeout=5)


def test_state_carries_the_plan_and_tracking_error_and_draws_the_desired_arm(start_process, probe):
    for topic, kind in (('/twin/state', TwinState), ('/twin/markers', MarkerArray),
                        ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    # the plan first, paced (best effort: a busy node may still drop a few samples; gaps up to 0.5 s
    # are interpolated across, exactly, the plan being linear in time)
    _, frames = start_state_node(start_process, probe, '-p', 'plan.max_age:=0.5')
    plan = probe.node.create_publisher(JointState, '/plan/desired_joint_states', qos_profile_sensor_data)
    assert wait_for(lambda: plan.get_subscription_count() > 0, timeout=10)
    shuffled = [3, 1, 0, 2]  # the plan's joint order differs from the twin's

    def desired(t: float) -> list[float]:
        return [p - (0.02 if j == 1 else 0.0) for j, p in enumerate(positions(t))]
    times = [START + i * PERIOD for i in range(FRAMES)]
    for t in (START - 0.05 + 0.01 * k for k in range(2 * FRAMES + 10)):
        values = desired(t)
        plan.publish(JointState(header=Header(stamp=stamp(t)), name=[JOINTS[j] for j in shuffled],
                                position=[values[j] for j in shuffled],
                                velocity=[[0.5, 0.0, 1.0, 0.0][j] for j in shuffled]))
        time.sleep(0.005)
    plan.publish(JointState(header=Header(stamp=stamp(START)), name=JOINTS[:3], position=[0.0] * 3))  # refused
    time.sleep(0.2)
    for t in times:
        frames.publish(frame(t))
        time.sleep(PERIOD)

    def reached_end(messages: list) -> bool:
        return any(m.header.stamp == stamp(times[-1]) for m in messages)
    states = probe.wait_for('/twin/state', reached_end, timeout=10)
    last = next(m for m in states if m.header.stamp == stamp(times[-1]))
    np.testing.assert_allclose(last.desired_position, desired(times[-1]), atol=1e-9)
    np.testing.assert_allclose(last.desired_velocity, [0.5, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(last.tracking_error, [0.0, 0.02, 0.0, 0.0], atol=1e-9)

    answer = call(probe, GetStateAt, '/twin/get_state_at', GetStateAt.Request(stamp=stamp(times[20] + 0.005)))
    assert answer.success, answer.message
    np.testing.assert_allclose(answer.state.desired_position, desired(times[20] + 0.005), atol=1e-9)
    history = call(probe, GetHistory, '/twin/get_history', GetHistory.Request(
        paths=['joint_2.desired_position', 'joint_2.tracking_error'], start=stamp(times[20]), end=stamp(times[29])))
    assert history.success, history.message
    assert list(history.columns) == ['joint_2.desired_position', 'joint_2.tracking_error']
    values = np.array(history.values.data).reshape(10, 2)
    np.testing.assert_allclose(values[:, 0], [desired(t)[1] for t in times[20:30]], atol=1e-9)
    np.testing.assert_allclose(values[:, 1], 0.02, atol=1e-9)

    kinematics = ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf')
    ghost = viz.skeleton(kinematics.transforms(dict(zip(JOINTS, desired(times[-1])))),
                         viz.segments(kinematics)).reshape(-1, 3)

    def ghost_at_the_last_frame(messages: list) -> bool:
        drawn = [m for m in messages[-1:] for m in named(m, 'desired_arm')]
        return bool(drawn) and np.allclose(xyz(drawn[0].points), ghost, atol=1e-9)
    probe.wait_for('/twin/markers', ghost_at_the_last_frame, timeout=10)

    def reported(messages: list) -> bool:
        return any('plan/desired_joint_states' in s.message and 'no value for joint(s) joint_4' in s.message
                   for m in messages for s in m.status)
    probe.wait_for('/diagnostics', reported, timeout=5)
