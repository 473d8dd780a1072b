"""The fleet: node table expansion per robot, aggregation, one plan for the shared team."""
import math
import tempfile
from pathlib import Path

import pytest
import yaml

from twin_bringup.node_table import load_node_table
from twin_core.config import ConfigError
from twin_core.levels import Level, Risk
from twin_core.paths import config_dir
from twin_fleet.fleet import Fleet
from twin_maintenance.scheduler import HOUR, Calendar, PlannedTask, Scheduler

MONDAY_8H = 4 * 86400.0 + 8 * HOUR  # 1970-01-05 08:00 UTC


def task(component, start, hours=2.0, deadline=MONDAY_8H + 48 * HOUR, risk=Risk.HIGH, rul=3 * 86400.0):
    return PlannedTask(component, 'replace gearbox', risk, start, start + hours * HOUR, deadline, rul,
                       resources=('mechanic',))


def fleet(robots=('robot_1', 'robot_2')):
    return Fleet(robots, Scheduler(Calendar(), ('mechanic', 'electrician')), stale_after=5.0)


def test_each_robot_gets_a_namespace_and_its_own_devices_and_ports():
    table = load_node_table(config_dir())
    single = table.select(with_sim=True)
    entries = table.select(with_sim=True, robots=3)
    assert len(entries) == 3 * len(single) + 1 and entries[-1].name == 'fleet'
    assert 'robots:=[robot_1, robot_2, robot_3]' in entries[-1].overrides
    by_name = {e.qualified_name: e for e in entries}
    sims = [by_name[f'/robot_{i}/workcell_sim'].override_values() for i in (1, 2, 3)]
    assert [s['channels.lidar.port'] for s in sims] == [7512, 7522, 7532]
    assert len({s['channels.imu.link'] for s in sims}) == 3 and len({s['seed'] for s in sims}) == 3
    # Each driver listens where its own robot's simulator serves.
    for i, sim in enumerate(sims, start=1):
        assert by_name[f'/robot_{i}/lidar_driver'].override_values()['udp.port'] == sim['channels.lidar.port']
        assert by_name[f'/robot_{i}/imu_driver'].override_values()['serial.port'] == sim['channels.imu.link']
        assert by_name[f'/robot_{i}/actuation'].override_values()['link.port'] == sim['channels.command.port']
        assert (by_name[f'/robot_{i}/plc_driver'].override_values()['opcua.endpoint']
                == sim['channels.plc.endpoint'])


def test_one_machine_of_a_spread_fleet_runs_only_its_robots():
    table = load_node_table(config_dir())
    entries = table.select(with_sim=False, robot_ids=[2])
    assert {e.namespace for e in entries} == {'robot_2'} and 'fleet' not in {e.name for e in entries}
    assert len(entries) == len(table.select(with_sim=False))


def test_namespaced_nodes_get_their_parameters_under_their_full_name():
    entry = next(e for e in load_node_table(config_dir()).select(with_sim=True, robots=2)
                 if e.qualified_name == '/robot_2/lidar_driver')
    with tempfile.TemporaryDirectory() as scratch:
        args = entry.ros_arguments(config_dir(), Path(scratch))
        (path,) = [Path(a) for a in args if a.endswith('.yaml')]
        document = yaml.safe_load(path.read_text())
    assert args[:6] == ['--ros-args', '-r', '__node:=lidar_driver', '-r', '__ns:=/robot_2', '--params-file']
    parameters = document['/robot_2/lidar_driver']['ros__parameters']
    assert parameters['udp'] == {'host': '127.0.0.1', 'port': 7522}  # the file, then the port override
    assert parameters['frame_id'] == 'robot_2/laser' and parameters['timestamps']['mode'] == 'device'


def test_a_wrong_override_key_or_robot_count_is_a_config_error(tmp_path):
    config = tmp_path / 'config'
    config.mkdir()
    for path in config_dir().iterdir():
        if path.is_file():
            (config / path.name).write_bytes(path.read_bytes())
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['fleet']['overrides']['lidar_driver'] = {'udp.prot': '{lidar}'}
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph))
    with pytest.raises(ConfigError, match=r"/robot_1/lidar_driver.udp.prot: unknown key \(did you mean 'port'"):
        load_node_table(config)
    with pytest.raises(ConfigError, match='numbered from 1'):
        load_node_table(config_dir()).select(with_sim=True, robots=0)


def test_the_shared_team_is_never_booked_twice():
    team = fleet()
    # Each robot booked the one mechanic on Monday 08:00 in its own plan.
    team.on_schedule('robot_1', (task('joint_2', MONDAY_8H, deadline=MONDAY_8H + 30 * HOUR),))
    team.on_schedule('robot_2', (task('joint_3', MONDAY_8H, deadline=MONDAY_8H + 4 * HOUR),))
    assert team.conflicts() == 1
    bookings, unplaced = team.plan(MONDAY_8H - HOUR)
    assert not unplaced and [b.task.component for b in bookings] == ['robot_2/joint_3', 'robot_1/joint_2']
    first, second = bookings
    assert first.start == MONDAY_8H - HOUR and second.start >= first.end  # earliest deadline first, no overlap
    assert not any(b.late for b in bookings)


def test_a_task_that_cannot_fit_before_its_deadline_is_marked_late():
    team = fleet()
    team.on_schedule('robot_1', (task('joint_1', MONDAY_8H, hours=3.0, deadline=MONDAY_8H + 3 * HOUR),))
    team.on_schedule('robot_2', (task('joint_1', MONDAY_8H, hours=3.0, deadline=MONDAY_8H + 3 * HOUR),))
    bookings, _ = team.plan(MONDAY_8H)
    assert [b.late for b in bookings] == [False, True]


def test_summaries_flag_silent_robots_and_active_errors():
    team = fleet()
    team.on_health('robot_1', Level.OK, 'all fresh', now=100.0)
    team.on_health('robot_2', Level.OK, 'all fresh', now=90.0)
    team.on_alarm('robot_1', 'joint_2.velocity/residual', Level.ERROR, True)
    team.on_schedule('robot_1', (task('joint_2', MONDAY_8H, risk=Risk.CRITICAL, rul=7200.0),
                                 task('imu', MONDAY_8H, risk=Risk.MEDIUM, rul=0.0)))
    one, two = team.summaries(now=100.0)
    assert (one.level, one.active_alarms, one.worst_risk, one.min_rul) == (Level.ERROR, 1, Risk.CRITICAL, 7200.0)
    assert two.level == Level.STALE and 'silent' in two.message and math.isinf(two.min_rul)
    team.on_alarm('robot_1', 'joint_2.velocity/residual', Level.ERROR, False)
    assert team.summaries(now=100.0)[0].level == Level.OK


def test_robots_must_be_distinct():
    with pytest.raises(ValueError, match='distinct'):
        fleet(('robot_1', 'robot_1'))


def test_the_live_view_starts_only_when_asked_and_each_robot_gets_its_own_port():
    table = load_node_table(config_dir())
    assert 'twin_view' not in [e.name for e in table.select(with_sim=True)]
    assert [e.name for e in table.select(with_sim=False, with_view=True)].count('twin_view') == 1
    views = [e for e in table.select(with_sim=True, robots=2, with_view=True) if e.name == 'twin_view']
    assert [e.namespace for e in views] == ['robot_1', 'robot_2']
    assert [e.override_values()['port'] for e in views] == [8775, 8785]
    assert [e.override_values()['camera.http_port'] for e in views] == [8776, 8786]
