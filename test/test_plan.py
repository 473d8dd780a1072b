"""The plan as a sensor: the controller's commanded trajectory, its wire format and its interpolation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from twin_control.tracking import TrackingMonitor
from twin_core.trajectory import JointPlan
from twin_core.urdf import urdf_file
from twin_predictor.dynamics import PhysicsInformedArm
from twin_predictor.plan import ControllerModel, identify, inverse_dynamics, plan_rollout
from twin_predictor.registry import create
from twin_sensors.plan import TrajectoryGate
from twin_sensors.wire import PlanMode, PlanSample, WireError, decode_plan_payload, encode_plan_payload
from twin_sim.controller import minimum_jerk
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell


def workcell() -> Workcell:
    return Workcell(urdf_file(), Scenario.from_file(scenario_path('nominal')), SimSettings(control_period_steps=10))


def test_a_minimum_jerk_move_is_the_quintic_between_its_ends() -> None:
    plan = JointPlan(0, ('a',), np.array([0.0, 2.0]), np.array([[0.0], [1.0]]), np.zeros((2, 1)),
                     np.zeros((2, 1)))
    for u in (0.1, 0.37, 0.5, 0.9):
        s, ds, dds = minimum_jerk(u)
        sample = plan.sample(2.0 * u)
        assert sample.position[0, 0] == pytest.approx(s)
        assert sample.velocity[0, 0] == pytest.approx(ds / 2.0)
        assert sample.acceleration[0, 0] == pytest.approx(dds / 4.0)


def test_plan_holds_its_ends_and_falls_back_to_lower_orders() -> None:
    times, positions = np.array([0.0, 1.0]), np.array([[0.0, 1.0], [2.0, 3.0]])
    linear = JointPlan(0, ('a', 'b'), times, positions)
    assert linear.sample([-1.0, 0.5, 5.0]).position.tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
    assert linear.sample(0.5).velocity.tolist() == [[2.0, 2.0]]
    cubic = JointPlan(0, ('a', 'b'), times, positions, np.zeros((2, 2)))
    assert cubic.sample(0.5).position[0].tolist() == pytest.approx([1.0, 2.0])
    assert cubic.sample(1.0).velocity.tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError):
        JointPlan(0, ('a', 'b'), np.array([1.0, 0.0]), positions)
    with pytest.raises(ValueError):
        JointPlan(0, ('a', 'b'), times, np.array([[0.0, np.nan], [1.0, 1.0]]))


def test_the_controller_plan_predicts_its_own_reference() -> None:
    cell = workcell()
    cell.step(3300)
    plan = cell.plan_sample(6)
    assert plan is not None and plan.mode == 'auto' and len(plan.times) == 7
    joint_plan = JointPlan(0, cell.joint_names, plan.times, plan.positions, plan.velocities, plan.accelerations)
    for k in range(1, 300):
        cell.step(10)
        reference = cell.controller.reference
        sample = joint_plan.sample(k * 0.01)
        assert sample.position[0] == pytest.approx(reference.position, abs=1e-9)
        assert sample.velocity[0] == pytest.approx(reference.velocity, abs=1e-6)


def test_a_stopped_controller_plans_to_hold() -> None:
    cell = workcell()
    cell.step(1000)
    cell.protective_stop()
    cell.step(500)
    plan = cell.plan_sample(6)
    assert plan is not None and plan.mode == 'hold' and len(plan.times) == 1
    cell.command_joint_positions([0.1, 0.2, 0.3, 0.4])
    cell.resume()
    cell.step(500)
    plan = cell.plan_sample(6)
    assert plan is not None and plan.mode == 'manual' and plan.positions[-1].tolist() == [0.1, 0.2, 0.3, 0.4]


def test_the_trajectory_gate_sends_new_ends_at_once_and_a_standing_plan_once_per_period() -> None:
    cell, gate = workcell(), TrajectoryGate(period=0.1)
    cell.step(1000)
    plans, admitted = 0, []
    for k in range(2000):  # 20 s of the cycle at the plan channel's 100 Hz
        cell.step(10)
        plan = cell.plan_sample(6)
        assert plan is not None
        sample = PlanSample(k * 0.01, PlanMode[plan.mode.upper()], plan.times, plan.positions, plan.velocities,
                            plan.accelerations)
        plans += 1
        if gate.admit(sample):
            admitted.append(sample)
            continue
        # a plan held back: the last trajectory sent gives its reference
        last = admitted[-1]
        assert sample.device_time - last.device_time < 0.1
        sent = JointPlan(0, cell.joint_names, last.times, last.positions, last.velocities, last.accelerations)
        assert sent.sample(sample.device_time - last.device_time).position[0] == pytest.approx(
            sample.positions[0], abs=1e-9)
    segment_changes = sum(not np.array_equal(a.positions[1:], b.positions[1:]) for a, b in zip(admitted, admitted[1:]))
    assert segment_changes >= 5
    assert gate.admitted == len(admitted) <= 10 * 20 + segment_changes + 1 and len(admitted) < plans / 5
    hold = PlanSample(admitted[-1].device_time + 0.001, PlanMode.HOLD, admitted[-1].times, admitted[-1].positions,
                      admitted[-1].velocities, admitted[-1].accelerations)
    assert gate.admit(hold), 'a mode change goes out at once'


def test_plan_wire_format_round_trip_and_rejections() -> None:
    sample = PlanSample(12.5, PlanMode.REJOIN, np.array([0.0, 0.5]), np.ones((2, 3)), np.zeros((2, 3)),
                        np.full((2, 3), -1.0))
    decoded = decode_plan_payload(encode_plan_payload(sample))
    assert decoded.mode is PlanMode.REJOIN and decoded.device_time == 12.5
    assert decoded.positions.tolist() == sample.positions.tolist()
    assert decoded.accelerations.tolist() == sample.accelerations.tolist()
    payload = bytearray(encode_plan_payload(sample))
    with pytest.raises(WireError, match='payload'):
        decode_plan_payload(bytes(payload[:-1]))
    payload[8] = 9
    with pytest.raises(WireError, match='bad_mode'):
        decode_plan_payload(bytes(payload))
    backwards = PlanSample(0.0, PlanMode.AUTO, np.array([0.5, 0.0]), np.ones((2, 3)), np.zeros((2, 3)),
                           np.zeros((2, 3)))
    with pytest.raises(WireError, match='time_order'):
        decode_plan_payload(encode_plan_payload(backwards))


def tiny_arm() -> PhysicsInformedArm:
    torch.manual_seed(0)
    ones = torch.ones(2)
    model = create('ensemble', 2, {'tau_scale': ones * 10, 'qdd_scale': ones, 'qd_scale': ones}, members=2,
                   hidden=(8,))
    assert isinstance(model, PhysicsInformedArm)
    return model


def test_identify_recovers_the_controller_gains() -> None:
    model, rng = tiny_arm(), np.random.default_rng(0)
    q, qd, q_d, qd_d, qdd_d = (rng.normal(size=(400, 2)) for _ in range(5))
    true = ControllerModel(('a', 'b'), (300.0, 50.0), (20.0, 5.0), (1.0, 0.9), (0.5, -0.2))
    tau = (np.array(true.kp) * (q_d - q) + np.array(true.kd) * (qd_d - qd)
           + np.array(true.feedforward) * inverse_dynamics(model, q, qd, qdd_d) + np.array(true.offset))
    fitted = identify(model, ('a', 'b'), q, qd, tau, q_d, qd_d, qdd_d)
    for name in ('kp', 'kd', 'feedforward', 'offset'):
        assert getattr(fitted, name) == pytest.approx(getattr(true, name), abs=1e-3)
    assert max(fitted.residual_rms) < 1e-3 and fitted.samples == 400


def test_plan_rollout_tracks_a_stiff_servo_and_round_trips(tmp_path) -> None:
    model = tiny_arm()
    controller = ControllerModel(('a', 'b'), (5000.0, 5000.0), (150.0, 150.0), (1.0, 1.0), (0.0, 0.0))
    plan = JointPlan(0, ('a', 'b'), np.array([0.0, 1.0]), np.array([[0.0, 0.0], [0.5, -0.5]]), np.zeros((2, 2)),
                     np.zeros((2, 2)))
    times = 0.02 * np.arange(1, 76)
    desired = plan.sample(times)
    rolled = plan_rollout(model, controller, np.zeros(2), np.zeros(2), desired.position, desired.velocity,
                          desired.acceleration, 0.02)
    assert rolled.shape == (2, 76, 2) and np.isfinite(rolled).all()
    assert np.abs(rolled[:, -1] - [0.5, -0.5]).max() < 0.05  # settled on the goal, stable at a 20 ms step
    controller.save(tmp_path)
    assert ControllerModel.load(tmp_path / 'controller.json') == controller
    (tmp_path / 'bad.json').write_text('[1, 2]')
    with pytest.raises(ValueError, match='not a controller model'):
        ControllerModel.load(tmp_path / 'bad.json')


def _moving(monitor: TrackingMonitor, stamps_ms: range) -> list:
    """Desired samples of joint a moving at 1 rad/s (joint b still); the judgements they release."""
    judged = []
    for ms in stamps_ms:
        judged += monitor.desired(ms * 1_000_000, np.array([0.001 * ms, 0.0]))
    return judged


def test_tracking_monitor_pairs_samples_and_stops_on_a_lasting_deviation() -> None:
    monitor = TrackingMonitor(('a', 'b'), bound=0.03, duration=0.02, max_gap=0.05)
    assert monitor.measured(5_000_000, np.zeros(2)) == [] and monitor.unpaired == 0  # waits for the plan
    (early,) = _moving(monitor, range(10, 100, 10))  # desired from 10 ms on: the sample at 5 ms has none
    assert not early.paired and not early.exceeded and monitor.unpaired == 1
    (ok,) = monitor.measured(25_000_000, np.array([0.025, 0.0]))
    assert ok.deviation == pytest.approx([0.0, 0.0]) and not ok.exceeded
    (first,) = monitor.measured(40_000_000, np.array([0.0, 0.0]))  # stuck: 0.04 behind
    assert not first.exceeded and 'a off its path by -0.040' in first.description
    (later,) = monitor.measured(60_000_000, np.array([0.0, 0.0]))
    assert later.exceeded
    (back,) = monitor.measured(80_000_000, np.array([0.08, 0.0]))  # back on the path
    assert not back.exceeded
    assert monitor.values()['peak_deviation.a'] == pytest.approx(0.06)


def test_a_plan_arriving_later_than_the_encoders_is_no_deviation() -> None:
    """Measured samples wait until the desired stream has passed them; nothing is extrapolated."""
    monitor = TrackingMonitor(('a', 'b'), bound=0.03, duration=0.02, max_gap=0.05)
    _moving(monitor, range(0, 20, 10))
    judged = []
    for ms in range(20, 60, 2):  # encoders on the path, 40 ms ahead of the plan stream
        judged += monitor.measured(ms * 1_000_000, np.array([0.001 * ms, 0.0]))
    assert judged == []
    judged += _moving(monitor, range(20, 70, 10))
    assert len(judged) == 20 and all(d.paired and not d.exceeded for d in judged)
    assert max(abs(d.deviation[0]) for d in judged) < 1e-12


def test_a_tracking_fault_ends_when_the_plan_stream_stops() -> None:
    monitor = TrackingMonitor(('a', 'b'), bound=0.03, duration=0.02, max_gap=0.05)
    _moving(monitor, range(0, 110, 10))
    judged = []
    for ms in range(0, 101, 10):  # stuck at 0
        judged += monitor.measured(ms * 1_000_000, np.zeros(2))
    assert judged[-1].exceeded
    for ms in range(110, 200, 10):  # the plan stream is gone: nothing to judge against
        judged += monitor.measured(ms * 1_000_000, np.zeros(2))
    assert not judged[-1].exceeded and not judged[-1].paired
    assert 'no desired state' in judged[-1].description


def test_deviations_are_judged_only_once_both_streams_have_settled() -> None:
    """Right after a start or a gap the drivers' clocks may disagree: that is no tracking fault."""
    monitor = TrackingMonitor(('a', 'b'), bound=0.03, duration=0.02, max_gap=0.05, settle=0.1)
    _moving(monitor, range(0, 310, 10))
    judged = []
    for ms in range(0, 301, 10):  # stamps 50 ms late at first: 0.05 rad off the moving joint
        judged += monitor.measured(ms * 1_000_000, np.array([0.001 * ms - (0.05 if ms < 100 else 0.0), 0.0]))
    settling = [d for d in judged if not d.paired]
    assert len(settling) == 10 and all('settling' in d.description for d in settling)
    assert not any(d.exceeded for d in judged) and monitor.peak[0] < 1e-12
    judged = []
    for ms in range(400, 531, 10):  # after a gap in the plan stream: settling again, then judged
        judged += monitor.desired(ms * 1_000_000, np.array([0.001 * ms, 0.0]))
        judged += monitor.measured(ms * 1_000_000, np.array([0.001 * ms - 0.05, 0.0]))
    assert any('settling' in d.description for d in judged) and judged[-1].exceeded
