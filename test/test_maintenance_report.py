"""The maintenance planner's statuses: each component's risk as a diagnostic level, condition, alarms, RUL."""
import math

from test_maintenance_planner import CONFIG, LIMIT, MONDAY_MORNING, RUL, feed

from twin_core.levels import Level, Risk
from twin_maintenance.planner import MaintenancePlanner


def test_each_component_reports_its_risk_high_as_a_warning_and_critical_as_an_error():
    planner = MaintenancePlanner(CONFIG, RUL, {'joint_1': LIMIT})
    feed(planner, MONDAY_MORNING, 1.1, effort=9.5, temperature=90.0)
    planner.count_alarm('joint_1.effort')
    reports = {r.name: r for r in planner.report()}
    assert list(reports) == ['imu', 'joint_1', 'joint_1_motor']
    gearbox, motor, imu = reports['joint_1'], reports['joint_1_motor'], reports['imu']
    assert (gearbox.level, gearbox.message) == (Level.ERROR, f'risk {Risk.CRITICAL}')
    assert gearbox.values['anomalies'] == 1 and gearbox.values['rul_low_s'] == math.inf  # no decline yet
    assert (motor.level, motor.values['risk']) == (Level.WARN, Risk.HIGH) and 'rul_s' not in motor.values
    assert (imu.level, imu.values['health'], imu.values['anomalies']) == (Level.OK, 1.0, 0)
