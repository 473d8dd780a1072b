"""The twin_state node over DDS: frames in, joint states, end-effector pose and services out."""
from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from harness import CONFIG_DIR
from twin_interfaces.msg import SensorSample, SyncedFrame
from twin_interfaces.srv import GetHistory, GetStateAt
from twin_state.kinematics import ArmKinematics

pytestmark = pytest.mark.integration
JOINTS = ['joint_1', 'joint_2', 'joint_3', 'joint_4']
START, PERIOD, FRAMES = 1000.0, 0.02, 40


def positions(t: float) -> list[float]:
    return [0.5 * (t - START), 0.2, -0.4 + (t - START), 0.1]


def stamp(t: float) -> Time:
    nanoseconds = int(round(t * 1e9))
    return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def frame(t: float) -> SyncedFrame:
    def sample(topic: str, kind: str, names: list[str], values: list[float]) -> SensorSample:
        return SensorSample(topic=topic, type=kind, stamp=stamp(t), age=0.0,
                            quality=SensorSample.QUALITY_EXACT, names=names, values=values)
    samples = [
        sample('encoders/joint_states', 'sensor_msgs/msg/JointState',
               [f'{j}.{f}' for f in ('position', 'effort') for j in JOINTS],
               positions(t) + [1.0, 2.0, 3.0, 4.0]),
        sample('imu/data', 'sensor_msgs/msg/Imu',
               [f'{q}.{a}' for q in ('angular_velocity', 'linear_acceleration') for a in 'xyz'],
               [0.0, 0.0, 0.0, 0.0, 0.0, 9.81]),
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


def test_state_node_publishes_fk_and_serves_interpolated_states(start_process, probe):
    for topic, kind in (('/twin/joint_states', JointState), ('/twin/markers', MarkerArray),
                        ('/twin/end_effector_pose', PoseStamped),
                        ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    publisher = probe.node.create_publisher(SyncedFrame, '/twin/synced_frame', 10)
    node = start_process('state_node', '--ros-args', '--params-file',
                         str(CONFIG_DIR / 'state.yaml'), name='state_node')
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0 or probe.node.count_publishers(
            '/twin/end_effector_pose') == 0:
        assert time.monotonic() < deadline, f'state_node never subscribed:\n{node.output()}'
        time.sleep(0.05)
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
        f'end_effector.orientation.{a}' for a in 'wxyz']
    values = np.array(history.values.data).reshape(10, 5)
    np.testing.assert_allclose(history.stamps, times[5:15])
    np.testing.assert_allclose(values[:, 0], [positions(t)[2] for t in times[5:15]])

    markers = probe.wait_for('/twin/markers', lambda m: len(m) >= 1, timeout=5)[-1].markers
    assert {m.ns for m in markers} >= {'arm', 'obstacles'}

    def counted_all(messages: list) -> bool:
        return any(s.name == 'twin_state: history' and ('frames', str(FRAMES)) in
                   [(kv.key, kv.value) for kv in s.values] for m in messages for s in m.status)
    probe.wait_for('/diagnostics', counted_all, timeout=5)
