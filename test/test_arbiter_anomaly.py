"""Which anomaly events raise or clear a protective stop."""
import dataclasses
from pathlib import Path

import numpy as np

from twin_control.config import ActuationConfig
from twin_control.safety import Arbiter, JointLimits, Source, StateSample
from twin_core.urdf import read_arm_description
from twin_sensors.wire import CommandName

URDF = Path(__file__).resolve().parents[1] / 'config' / 'arm.urdf'
CONFIG = ActuationConfig()
WARN, ERROR = 1, 2


def arbiter(config: ActuationConfig = CONFIG) -> Arbiter:
    limits = JointLimits.from_arm(read_arm_description(URDF), config.limits.acceleration,
                                  config.limits.position_margin)
    arbiter = Arbiter(config, limits)
    arbiter.observe_state(StateSample(np.zeros(4), np.zeros(4), np.full(4, 0.2), 1.0,
                                      {'encoders/joint_states': 0.01}), 0.0)
    return arbiter


def test_a_severe_alarm_stops_the_cell_and_its_clearing_releases_the_cause():
    cell = arbiter()
    decision = cell.anomaly('imu.data.angular_velocity.z', 'level', ERROR, True, 'level score 9', 0.0)
    assert (decision.source, decision.command.name) == (Source.PROTECTIVE, CommandName.STOP)
    assert decision.reason == 'anomaly imu.data.angular_velocity.z: level score 9'
    assert cell.anomaly('imu.data.angular_velocity.z', 'level', 0, False, 'back to normal', 0.5) is None
    assert cell.stop_causes() == ['anomaly imu.data.angular_velocity.z: level score 9']  # latched
    assert cell.operator_resume(0.6).accepted


def test_mild_alarms_and_dropouts_leave_the_cell_running():
    cell = arbiter()
    assert cell.anomaly('scan.min', 'residual', WARN, True, 'residual', 0.0) is None
    assert cell.anomaly('scan.min', 'missing', ERROR, True, 'missing', 0.0) is None  # the watchdog's
    assert cell.stop_causes() == []


def test_no_stop_on_anomalies_when_switched_off():
    protection = dataclasses.replace(CONFIG.protection, stop_on_anomaly=False)
    cell = arbiter(dataclasses.replace(CONFIG, protection=protection))
    assert cell.anomaly('scan.min', 'level', ERROR, True, 'level', 0.0) is None
    assert cell.stop_causes() == []


def test_the_severity_threshold_is_configurable():
    protection = dataclasses.replace(CONFIG.protection, anomaly_severity=WARN)
    cell = arbiter(dataclasses.replace(CONFIG, protection=protection))
    assert cell.anomaly('scan.min', 'residual', WARN, True, 'residual', 0.0).command.name == CommandName.STOP
