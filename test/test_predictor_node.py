"""The predictor node over DDS: joint states in, predicted trajectory, its std and diagnostics out."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from harness import CONFIG_DIR, statuses
from twin_core.stamps import from_seconds
from twin_interfaces.msg import PredictionInfo
from twin_predictor.plan import ControllerModel
from twin_predictor.predictor_node import PLAN_QOS
from twin_predictor.registry import create, save
from twin_ros.stamps import to_duration, to_msg

pytestmark = pytest.mark.integration
JOINTS = ['joint_1', 'joint_2', 'joint_3', 'joint_4']
HORIZON, STEP = 0.5, 0.05


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    ones = torch.ones(4)
    model = create('ensemble', 4, {'tau_scale': ones * 10, 'qdd_scale': ones, 'qd_scale': ones},
                   members=3, hidden=(8,))
    save(model, tmp_path / 'model', 'ensemble', tuple(JOINTS), {'data': 'none', 'sha256': ''}, {})
    return tmp_path / 'model'


def test_predictor_publishes_trajectory_with_joint_names_horizon_and_std(start_process, probe, tiny_model):
    for topic, kind in (('/twin/predicted_trajectory', JointTrajectory),
                        ('/twin/predicted_trajectory_std', JointTrajectory), ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    publisher = probe.node.create_publisher(JointState, '/twin/joint_states', qos_profile_sensor_data)
    node = start_process('predictor_node', '--ros-args', '--params-file', str(CONFIG_DIR / 'predictor.yaml'),
                         '-p', f'model:={tiny_model}', '-p', f'horizon:={HORIZON}', '-p', f'step:={STEP}',
                         '-p', 'rate_hz:=20.0', '-p', 'refine.period:=0.5', '-p', 'refine.min_samples:=10',
                         '-p', 'refine.steps:=2', '-p', 'refine.enabled:=true', '-p', 'adapt.window:=0.5',
                         name='predictor')
    deadline = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'predictor never subscribed:\n{node.output()}'
        time.sleep(0.05)
    for k in range(60):
        t = 100.0 + 0.01 * k
        msg = JointState(name=list(reversed(JOINTS)), position=[0.1, 0.2, 0.3, 0.01 * k],
                         velocity=[0.0, 0.0, 0.0, 1.0], effort=[1.0, 2.0, 3.0, 4.0])
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t % 1) * 1e9))
        publisher.publish(msg)
        time.sleep(0.01)

    def latest(messages: list) -> list:
        return [m for m in messages if (m.header.stamp.sec, m.header.stamp.nanosec) == (
            msg.header.stamp.sec, msg.header.stamp.nanosec)]
    trajectory = latest(probe.wait_for('/twin/predicted_trajectory', latest, timeout=10))[-1]
    assert trajectory.joint_names == JOINTS
    assert len(trajectory.points) == round(HORIZON / STEP) + 1
    last = trajectory.points[-1].time_from_start
    assert last.sec + last.nanosec * 1e-9 == pytest.approx(HORIZON)
    assert list(trajectory.points[0].positions) == pytest.approx([0.01 * 59, 0.3, 0.2, 0.1], abs=1e-5)
    std = latest(probe.wait_for('/twin/predicted_trajectory_std', latest, timeout=5))[-1]
    assert len(std.points) == len(trajectory.points) and max(std.points[-1].positions) > 0.0

    def refined(messages: list) -> bool:
        return any(s.name == 'predictor: model' and dict((v.key, v.value) for v in s.values).get('refinements', '0')
                   != '0' for m in messages for s in m.status)
    statuses = [s for m in probe.wait_for('/diagnostics', refined, timeout=15) for s in m.status]
    values = {v.key: v.value for v in [s for s in statuses if s.name == 'predictor: model'][-1].values}
    assert float(values['inference_us_per_step']) > 0.0
    adaptation = [s for s in statuses if s.name == 'predictor: adaptation'][-1]
    guard = {v.key: v.value for v in adaptation.values}  # every refinement judged on the held-out end
    judged = int(guard['dynamics.accepted']) + int(guard['dynamics.rejected'])
    assert judged >= 1 and adaptation.message == 'refitting dynamics', guard
    assert int(guard['model_version']) == 1 + int(guard['dynamics.accepted'])


def test_predictor_keeps_every_sample_of_a_burst(start_process, probe, tiny_model):
    """The twin's state arriving faster than the node takes it (as in a busy process) is queued, not
    dropped: the replay buffer and the refit window need consecutive samples.
    """
    probe.subscribe('/diagnostics', DiagnosticArray)
    publisher = probe.node.create_publisher(JointState, '/twin/joint_states', qos_profile_sensor_data)
    node = start_process('predictor_node', '--ros-args', '--params-file', str(CONFIG_DIR / 'predictor.yaml'),
                         '-p', f'model:={tiny_model}', '-p', 'refine.enabled:=true', name='predictor')

    def counts(messages: list) -> dict[str, int]:
        """The latest replay buffer and refit window sizes in the node's diagnostics (-1: none yet)."""
        latest = {name.removeprefix('predictor: '): {v.key: v.value for v in s.values}
                  for name, s in statuses(messages, 'predictor: ').items()}
        return {f'{part}.{key}': int(latest.get(part, {}).get(key, -1))
                for part, key in (('model', 'replay_samples'), ('adaptation', 'window_samples'))}

    deadline = time.monotonic() + 20.0  # one sample, repeated until the node has it: both ends matched
    while counts(probe.messages('/diagnostics'))['adaptation.window_samples'] < 1:
        assert time.monotonic() < deadline, f'the predictor never took a joint state:\n{node.output()}'
        publisher.publish(joint_state(99.99))
        time.sleep(0.1)
    count = 60
    for k in range(count):
        publisher.publish(joint_state(100.0 + 0.01 * k))

    def settled(messages: list) -> bool:
        ours = [m for m in messages if any(s.name == 'predictor: model' for s in m.status)]
        return len(ours) >= 3 and counts(ours) == counts(ours[:-2])

    time.sleep(1.0)
    received = probe.wait_for('/diagnostics', settled, timeout=15)
    assert counts(received) == {'model.replay_samples': count, 'adaptation.window_samples': count + 1}


def joint_state(t: float) -> JointState:
    """The arm at rest at 0 rad, stamped ``t`` s."""
    msg = JointState(name=JOINTS, position=[0.0] * 4, velocity=[0.0] * 4, effort=[0.0] * 4)
    msg.header.stamp = to_msg(from_seconds(t))
    return msg


def plan_message(t: float) -> JointTrajectory:
    """A plan stamped ``t`` s: from 0 rad to 0.5 rad on every joint in 1 s."""
    plan = JointTrajectory(joint_names=JOINTS, points=[
        JointTrajectoryPoint(positions=[0.0] * 4, velocities=[0.0] * 4, accelerations=[0.0] * 4,
                             time_from_start=to_duration(0)),
        JointTrajectoryPoint(positions=[0.5] * 4, velocities=[0.0] * 4, accelerations=[0.0] * 4,
                             time_from_start=to_duration(from_seconds(1.0)))])
    plan.header.stamp = to_msg(from_seconds(t))
    return plan


def test_predictor_follows_the_plan_and_says_so(start_process, probe, tiny_model):
    ControllerModel(tuple(JOINTS), (100.0,) * 4, (20.0,) * 4, (1.0,) * 4, (0.0,) * 4).save(tiny_model)
    for topic, kind in (('/twin/predicted_trajectory', JointTrajectory), ('/twin/prediction_info', PredictionInfo),
                        ('/diagnostics', DiagnosticArray)):
        probe.subscribe(topic, kind)
    states = probe.node.create_publisher(JointState, '/twin/joint_states', qos_profile_sensor_data)
    plans = probe.node.create_publisher(JointTrajectory, '/plan/joint_trajectory', PLAN_QOS)
    node = start_process('predictor_node', '--ros-args', '--params-file', str(CONFIG_DIR / 'predictor.yaml'),
                         '-p', f'model:={tiny_model}', '-p', 'rate_hz:=20.0', '-p', 'plan.horizon:=1.0',
                         '-p', 'plan.step:=0.05', name='predictor')
    deadline = time.monotonic() + 20.0
    while states.get_subscription_count() == 0 or plans.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'predictor never subscribed:\n{node.output()}'
        time.sleep(0.05)
    for k in range(20):  # no plan yet: the torque is held over the short horizon
        states.publish(joint_state(100.0 + 0.01 * k))
        time.sleep(0.01)
    info = probe.wait_for('/twin/prediction_info', lambda m: len(m) > 0, timeout=10)[-1]
    assert info.mode == 'torque_hold' and math.isnan(info.plan_age)
    plans.publish(plan_message(100.5))
    time.sleep(0.2)
    for k in range(20):
        states.publish(joint_state(100.6 + 0.01 * k))
        time.sleep(0.01)
    infos = probe.wait_for('/twin/prediction_info', lambda m: any(i.mode == 'plan' for i in m), timeout=10)
    info = [i for i in infos if i.mode == 'plan'][-1]
    assert info.horizon == pytest.approx(1.0) and 0.1 <= info.plan_age <= 0.3
    stamp = (info.header.stamp.sec, info.header.stamp.nanosec)
    trajectory = [m for m in probe.wait_for('/twin/predicted_trajectory', lambda m: any(
        (t.header.stamp.sec, t.header.stamp.nanosec) == stamp and len(t.points) == 21 for t in m), timeout=5)
        if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp][-1]
    assert all(math.isfinite(p) for point in trajectory.points for p in point.positions)
    assert trajectory.points[-1].positions[0] > 0.05  # drawn towards the plan's goal

    def plan_mode(messages: list) -> bool:
        return any(s.name == 'predictor: model' and dict((v.key, v.value) for v in s.values).get('mode') == 'plan'
                   for m in messages for s in m.status)
    status = [s for m in probe.wait_for('/diagnostics', plan_mode, timeout=5) for s in m.status
              if s.name == 'predictor: model'][-1]
    values = {v.key: v.value for v in status.values}
    assert int(values['predictions.plan']) > 0 and int(values['predictions.torque_hold']) > 0
    assert float(values['horizon_s']) == pytest.approx(1.0)


def test_predictor_judges_controller_refits_on_the_held_out_end(start_process, probe, tiny_model):
    ControllerModel(tuple(JOINTS), (100.0,) * 4, (20.0,) * 4, (1.0,) * 4, (0.0,) * 4).save(tiny_model)
    probe.subscribe('/diagnostics', DiagnosticArray)
    states = probe.node.create_publisher(JointState, '/twin/joint_states', qos_profile_sensor_data)
    plans = probe.node.create_publisher(JointTrajectory, '/plan/joint_trajectory', PLAN_QOS)
    node = start_process('predictor_node', '--ros-args', '--params-file', str(CONFIG_DIR / 'predictor.yaml'),
                         '-p', f'model:={tiny_model}', '-p', 'plan.step:=0.05', '-p', 'adapt.window:=3.0',
                         '-p', 'adapt.holdout:=0.45', '-p', 'adapt.period:=0.5', name='predictor')
    deadline = time.monotonic() + 20.0
    while states.get_subscription_count() == 0 or plans.get_subscription_count() == 0:
        assert time.monotonic() < deadline, f'predictor never subscribed:\n{node.output()}'
        time.sleep(0.05)
    for k in range(320):  # 3.2 s of joint states, a fresh plan every 0.2 s
        if k % 20 == 0:
            plans.publish(plan_message(100.0 + 0.01 * k))
        states.publish(joint_state(100.0 + 0.01 * k))
        time.sleep(0.01)

    def adaptation(messages: list) -> list:
        return [s for m in messages for s in m.status if s.name == 'predictor: adaptation']

    def judged(messages: list) -> bool:
        return any(int(v['controller.accepted']) + int(v['controller.rejected']) > 0 for v in (
            {kv.key: kv.value for kv in s.values} for s in adaptation(messages)))
    status = adaptation(probe.wait_for('/diagnostics', judged, timeout=15))[-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.message == 'refitting controller' and int(values['window_samples']) > 200
    assert int(values['model_version']) == 1 + int(values['controller.accepted'])
    assert values['controller.last'].startswith(('accepted', 'rejected')), values
