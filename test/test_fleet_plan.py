"""The fleet's published plan: RUL from the robots' own tasks, republished only when bookings move; its statuses."""
from test_fleet import MONDAY_8H, fleet, task

from twin_core.levels import Level, Risk
from twin_maintenance.scheduler import HOUR


def test_bookings_carry_the_robots_own_estimates_and_a_plan_changes_only_when_they_move():
    team = fleet()
    team.on_schedule('robot_1', (task('joint_2', MONDAY_8H, rul=7200.0),))
    plan = team.schedule(MONDAY_8H)
    assert plan.changed and [b.task.component for b in plan.bookings] == ['robot_1/joint_2']
    assert [own.rul for own in plan.own] == [7200.0] and plan.late == 0
    assert not team.schedule(MONDAY_8H).changed
    team.on_schedule('robot_2', (task('joint_1', MONDAY_8H, deadline=MONDAY_8H + 2 * HOUR),))
    moved = team.schedule(MONDAY_8H)
    assert moved.changed and [b.task.component for b in moved.bookings] == ['robot_2/joint_1', 'robot_1/joint_2']
    team.on_schedule('robot_1', ())
    gone = team.schedule(MONDAY_8H)
    assert gone.changed and [own.rul for own in gone.own] == [3 * 86400.0]


def test_report_names_each_robot_the_plan_and_the_fleet():
    team = fleet()
    team.on_health('robot_1', Level.OK, 'all fresh', now=100.0)
    team.on_schedule('robot_1', (task('joint_1', MONDAY_8H, hours=3.0, deadline=MONDAY_8H + 3 * HOUR,
                                      risk=Risk.CRITICAL, rul=7200.0),))
    team.on_schedule('robot_2', (task('joint_1', MONDAY_8H, hours=3.0, deadline=MONDAY_8H + 3 * HOUR),))
    one, two, maintenance, robots = team.report(100.0, team.schedule(MONDAY_8H), revision=4, unplaced=0)
    assert (one.name, one.level, one.hardware_id) == ('robot_1', Level.OK, 'robot_1')
    assert one.values == {'active_alarms': 0, 'worst_risk': Risk.CRITICAL, 'min_rul_h': 2.0}
    assert (two.level, two.values['min_rul_h']) == (Level.STALE, 72.0)
    assert (maintenance.level, maintenance.message) == (Level.WARN, '2 tasks booked for the shared team, 1 late')
    assert maintenance.values == {'revision': 4, 'unplaced': 0, 'conflicts_in_robot_plans': 1}
    assert (robots.name, robots.level, robots.message) == ('robots', Level.STALE, 'OK 1, STALE 1')
