"""Health tracking: silence becomes STALE, the worst level wins."""
from twin_bringup.health import HealthConfig, HealthTracker, SummaryLog
from twin_core.levels import Level


def test_expected_component_never_heard_from_is_stale():
    tracker = HealthTracker(HealthConfig(expected=('workcell_sim',), startup_grace=0.0))
    (component,) = tracker.components(now=10.0)
    assert (component.name, component.level, component.age) == ('workcell_sim', Level.STALE, None)


def test_reports_age_into_stale_and_worst_level_wins():
    tracker = HealthTracker(HealthConfig(expected=('workcell_sim',), stale_after=2.0, startup_grace=0.0))
    tracker.report('workcell_sim: physics', Level.OK, 'running', now=0.0)
    tracker.report('imu_driver: port', Level.WARN, 'parse errors', now=0.0)
    assert tracker.overall(now=1.0).level == Level.WARN
    assert 'imu_driver: port' in tracker.overall(now=1.0).message
    tracker.report('imu_driver: port', Level.OK, 'fine', now=2.5)
    levels = {c.name: c.level for c in tracker.components(now=3.0)}
    assert levels == {'workcell_sim: physics': Level.STALE, 'imu_driver: port': Level.OK}
    assert tracker.overall(now=3.0).level == Level.STALE


def test_components_not_ready_at_start_up_are_starting_but_an_error_is_reported_at_once():
    tracker = HealthTracker(HealthConfig(expected=('imu_driver', 'twin_sync'), startup_grace=20.0), started=100.0)
    tracker.report('twin_sync: imu/data', Level.WARN, 'missing', now=101.0)
    overall = tracker.overall(now=102.0)
    assert (overall.level, overall.message) == (Level.OK, 'starting: twin_sync: imu/data, imu_driver')
    assert {c.name: c.level for c in tracker.components(now=102.0)} == {
        'twin_sync: imu/data': Level.WARN, 'imu_driver': Level.STALE}  # the aggregate keeps the truth
    assert tracker.overall(now=120.0).level == Level.STALE  # grace over: still never heard from
    tracker.report('plc_driver: opc.tcp://plc', Level.ERROR, 'rejected', now=103.0)
    assert tracker.overall(now=103.5).level == Level.ERROR


def test_all_ok():
    tracker = HealthTracker(HealthConfig(expected=()))
    tracker.report('a', Level.OK, 'fine', now=0.0)
    assert tracker.overall(now=0.5).message == 'all components OK'


def test_the_summary_is_logged_when_the_level_changes_and_else_every_period():
    log = SummaryLog(period=10.0)
    assert log.due(Level.OK, 0.0)
    assert not log.due(Level.OK, 5.0)
    assert log.due(Level.WARN, 6.0)  # a change: at once
    assert not log.due(Level.WARN, 15.0)
    assert log.due(Level.WARN, 16.0)


def test_a_component_that_finished_is_forgotten_not_stale_until_it_reports_again():
    tracker = HealthTracker(HealthConfig(expected=('twin_recorder',), stale_after=2.0, startup_grace=0.0))
    tracker.report('twin_recorder: bag', Level.OK, 'recording', now=0.0)
    tracker.report('twin_recorder: bag', Level.OK, 'finished', now=1.0, finished=True)
    assert tracker.components(now=100.0) == []  # neither STALE nor 'never reported' (it is expected)
    assert tracker.overall(now=100.0).level == Level.OK
    tracker.report('twin_recorder: bag', Level.OK, 'recording', now=200.0)  # a new recording
    assert [c.level for c in tracker.components(now=203.0)] == [Level.STALE]
