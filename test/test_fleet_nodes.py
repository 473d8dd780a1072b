"""The fleet node and a fleet of two twins, as processes over DDS."""
import sys
import time

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64

from harness import isolated_config, statuses
from twin_bringup.node_table import load_node_table
from twin_core.levels import Level
from twin_interfaces.msg import CommandAudit, MaintenanceSchedule, MaintenanceTask, WorkcellTruth
from twin_ros.common import status

pytestmark = pytest.mark.integration
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']


def mechanic_task(component, deadline_days):
    """Two hours of the mechanic from tomorrow at this time (the robot's own booking)."""
    start = int(time.time()) + 86400
    return MaintenanceTask(component=component, action='replace gearbox', risk='HIGH',
                           start=Time(sec=start), end=Time(sec=start + 7200),
                           deadline=Time(sec=start + deadline_days * 86400), rul=86400.0 * deadline_days,
                           rul_low=43200.0, rul_high=172800.0, resources=['mechanic'])


def test_fleet_node_books_the_shared_mechanic_once_and_reports_each_robot(start_process, probe):
    probe.subscribe('/fleet/maintenance_schedule', MaintenanceSchedule, LATCHED)
    probe.subscribe('/diagnostics', DiagnosticArray)
    fleet = start_process('fleet_node', '--ros-args', '-p', 'robots:=[robot_1, robot_2]')
    schedules = {r: probe.node.create_publisher(MaintenanceSchedule, f'/{r}/twin/maintenance_schedule', LATCHED)
                 for r in ('robot_1', 'robot_2')}
    # Both robots booked the one mechanic for Monday 08:00-10:00 in their own plans.
    schedules['robot_1'].publish(MaintenanceSchedule(revision=1, tasks=[mechanic_task('joint_2', 25)]))
    schedules['robot_2'].publish(MaintenanceSchedule(revision=1, tasks=[mechanic_task('joint_3', 20)]))
    health = probe.node.create_publisher(DiagnosticArray, '/robot_1/diagnostics', 10)

    def both_booked(messages):
        return messages and len(messages[-1].tasks) == 2
    plan = probe.wait_for('/fleet/maintenance_schedule', both_booked, timeout=20)[-1].tasks
    assert [t.component for t in plan] == ['robot_2/joint_3', 'robot_1/joint_2']  # earliest deadline first
    assert plan[1].start.sec >= plan[0].end.sec and not any(t.late for t in plan)
    assert plan[1].rul == 25 * 86400.0 and plan[1].resources == ['mechanic']

    def reported(messages):
        health.publish(DiagnosticArray(status=[status('health_monitor: heartbeat', Level.OK, 'all fresh')]))
        seen = statuses(messages[-3:], 'fleet: ')
        return seen.get('fleet: robot_1') is not None and seen['fleet: robot_1'].level == DiagnosticStatus.OK
    latest = statuses(probe.wait_for('/diagnostics', reported, timeout=20)[-3:], 'fleet: ')
    assert latest['fleet: robot_2'].level == DiagnosticStatus.STALE  # it never reported
    values = {kv.key: kv.value for kv in latest['fleet: maintenance'].values}
    assert values['conflicts_in_robot_plans'] == '1'
    assert fleet.stop() == 0


def test_two_twins_run_side_by_side_and_a_command_reaches_only_its_robot(start_process, probe, tmp_path):
    config = isolated_config(tmp_path)
    entries = load_node_table(config).select(with_sim=True, robots=2)
    for robot in ('robot_1', 'robot_2'):
        probe.subscribe(f'/{robot}/twin/joint_states', JointState)
        probe.subscribe(f'/{robot}/workcell_sim/truth', WorkcellTruth)
        probe.subscribe(f'/{robot}/twin/actuation/audit', CommandAudit)
    probe.subscribe('/diagnostics', DiagnosticArray)
    launcher = start_process(*LAUNCH, '--config-dir', str(config), '--robots', '2', name='twin_launch')
    for robot in ('robot_1', 'robot_2'):
        probe.wait_for(f'/{robot}/twin/joint_states', lambda m: len(m) > 100, timeout=90)

    def both_reporting(messages):
        seen = statuses(messages[-2:], 'fleet: ')
        return all(seen.get(f'fleet: {r}') is not None and seen[f'fleet: {r}'].level != DiagnosticStatus.STALE
                   for r in ('robot_1', 'robot_2'))
    probe.wait_for('/diagnostics', both_reporting, timeout=30)

    # An operator's speed override for robot 1 reaches robot 1's cell only. (Under load the
    # watchdogs may stop either cell; the override is sent and obeyed regardless.)
    override = probe.node.create_publisher(Float64, '/robot_1/twin/commands/speed_override', 10)

    def robot_1_slowed(messages):
        override.publish(Float64(data=0.6))
        return abs(messages[-1].speed_override - 0.6) < 1e-9
    probe.wait_for('/robot_1/workcell_sim/truth', robot_1_slowed, timeout=20)
    probe.sleep(1.0)
    assert probe.messages('/robot_2/workcell_sim/truth')[-1].speed_override == 1.0
    assert not [a for a in probe.messages('/robot_2/twin/actuation/audit') if a.source == 'operator']
    assert any(a.source == 'operator' and a.command == 'speed_override' and a.ack_ok
               for a in probe.messages('/robot_1/twin/actuation/audit'))
    assert launcher.stop() == 0
    assert f'twin_launch: stopped {len(entries)} nodes' in launcher.output()
