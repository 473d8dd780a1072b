"""Maintenance planning policy: ratings per component, their tasks, alarm counts and when to replan."""
import dataclasses
import math

import numpy as np
import pytest

from twin_core.levels import Risk
from twin_maintenance.config import MaintenanceConfig
from twin_maintenance.planner import MaintenancePlanner, Plan
from twin_maintenance.rul import RulModel
from twin_maintenance.scheduler import DAY, HOUR

MONDAY_MORNING = 4 * DAY + 8 * HOUR
LIMIT = 10.0
# Health index = 1 - friction_power: a joint pushing 9.5 N·m at 1 rad/s against a 10 N·m limit reads 0.05.
RUL = RulModel(('friction_power',), math.inf, np.zeros(1), np.ones(1), np.array([0.0, 1.0]), {}, 0.01)
CONFIG = MaintenanceConfig(joints=('joint_1',), sensors=('imu:imu.linear_acceleration.x',), window=1.0,
                           batch_frames=10)


def feed(planner: MaintenancePlanner, start: float, seconds: float, effort: float = 1.0,
         temperature: float = 30.0, imu: float = 0.0) -> list[Plan]:
    """Frames at 100 Hz with the joint moving at 1 rad/s; the plans they made."""
    plans = []
    for t in start + np.arange(round(seconds * 100)) / 100:
        plan = planner.add_frame(float(t), {
            'joint_1.velocity': 1.0, 'joint_1.effort': effort, 'joint_1.temperature': temperature,
            'imu.linear_acceleration.x': imu})
        plans += [plan] if plan else []
    return plans


def test_healthy_components_are_rated_low_and_need_no_plan():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    assert feed(planner, MONDAY_MORNING, 3.0) == []
    assert {c: a.risk for c, a in planner.assessments.items()} == {
        'joint_1': Risk.LOW, 'joint_1_motor': Risk.LOW, 'imu': Risk.LOW}
    assert planner.assessments['joint_1'].condition == pytest.approx(0.9)
    assert planner.assessments['joint_1'].rul.low == math.inf
    assert planner.assessments['imu'].rul is None


def test_a_worn_gearbox_a_hot_motor_and_a_dropout_get_tasks_due_by_their_ratings():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    (plan,) = feed(planner, MONDAY_MORNING, 1.1, effort=9.5, temperature=90.0, imu=math.nan)
    tasks = {b.task.component: b.task for b in plan.bookings}
    assert plan.time == MONDAY_MORNING + 1.0 and not plan.unplaced
    assert {c: (t.action, t.risk) for c, t in tasks.items()} == {
        'joint_1': ('replace gearbox', Risk.CRITICAL), 'joint_1_motor': ('service motor cooling', Risk.HIGH),
        'imu': ('inspect sensor', Risk.HIGH)}
    # a low index alone: due within the CRITICAL horizon, less the safety margin
    assert tasks['joint_1'].deadline == pytest.approx(plan.time + CONFIG.risk.critical - CONFIG.safety_margin)
    assert tasks['joint_1_motor'].deadline == tasks['imu'].deadline == plan.time + CONFIG.safety_margin
    assert tasks['imu'].resources == CONFIG.sensor_resources
    assert planner.assessments['imu'].condition == 0.0
    assert planner.assessments['joint_1_motor'].condition == pytest.approx(10.0 / 75.0)


def test_a_plan_is_redone_when_tasks_come_or_go_not_when_deadlines_creep():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    assert len(feed(planner, MONDAY_MORNING, 1.1, temperature=90.0)) == 1
    assert feed(planner, MONDAY_MORNING + 1.1, 5.0, temperature=90.0) == []  # deadlines move 1 s per window
    (cooled,) = feed(planner, MONDAY_MORNING + 6.1, 2.0)
    assert cooled.bookings == [] and planner.bookings == []
    (hot,) = feed(planner, MONDAY_MORNING + 8.1, 2.0, temperature=95.0)
    assert [b.task.risk for b in hot.bookings] == [Risk.HIGH]


def test_a_deadline_that_moves_by_replan_change_of_the_time_left_replans():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    feed(planner, MONDAY_MORNING, 1.1, temperature=90.0)
    assert planner.assess(MONDAY_MORNING + 100.0) is None  # 99 s later: within 20 % of the 600 s left
    assert planner.assess(MONDAY_MORNING + 200.0) is not None


def test_alarms_count_for_the_joints_and_sensors_their_channel_names():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    for sensor in ('joint_1.effort', 'imu.angular_velocity.z', 'imu.linear_acceleration.x', 'multivariate'):
        planner.count_alarm(sensor)
    assert planner.alarms == {'joint_1': 1, 'imu': 2}
    config = dataclasses.replace(CONFIG, sensors=('encoders:encoders.joint_states.joint_1.position',
                                                  'plc:motors.joint_1.temperature'))  # the older names
    planner = MaintenancePlanner(config, RUL, {'joint_1': LIMIT, 'joint_2': LIMIT})
    for sensor in ('joint_2.velocity', 'joint_2.temperature', 'joint_1.acceleration'):
        planner.count_alarm(sensor)
    assert planner.alarms == {'encoders': 1, 'plc': 1, 'joint_1': 1}
    assert 'joint_1.position' in planner.names


def test_joints_the_robot_description_lacks_are_refused():
    with pytest.raises(ValueError, match=r"joints: unknown \['joint_1'\]"):
        MaintenancePlanner(CONFIG, RUL, {'joint_2': LIMIT})
