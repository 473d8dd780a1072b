"""The terminal summary of a run: each block from the run's data, absent topics named."""
import numpy as np

from twin_core.kinematics import ArmKinematics
from twin_core.urdf import urdf_file
from twin_maintenance.scheduler import PlannedTask, Risk
from twin_report.series import (
    ANOMALIES,
    DIAGNOSTICS,
    TRUTH,
    TRUTH_JOINTS,
    TWIN_JOINTS,
    Alarm,
    FaultInterval,
    PlanTracking,
    PredictedTrajectory,
    RulSample,
    Run,
    Schedule,
)
from twin_report.text import summary_text
from twin_state.fidelity import Trajectory

JOINTS = ('joint_1', 'joint_2', 'joint_3', 'joint_4')
KINEMATICS = ArmKinematics.from_urdf(urdf_file())


def moving(stamps: np.ndarray, delay: float = 0.0) -> Trajectory:
    return Trajectory(stamps, np.stack([np.sin(stamps - delay + k) for k in range(4)], axis=1), JOINTS)


def full_run() -> Run:
    stamps = 100.0 + np.arange(0.0, 20.0, 0.01)
    predictions = tuple(PredictedTrajectory(origin, np.array([0.1, 0.2]),
                                            moving(origin + np.array([0.1, 0.2]), 0.005).positions, JOINTS)
                        for origin in (105.0, 110.0))
    return Run(
        source='run', start=100.0, end=120.0,
        counts={TWIN_JOINTS: 2000, TRUTH_JOINTS: 2000, TRUTH: 200, ANOMALIES: 2, DIAGNOSTICS: 20},
        twin=moving(stamps, delay=0.005), truth=moving(stamps),
        predictions=predictions,
        alarms=(Alarm('joint_3.velocity', 'zscore', 2, 106.0, 107.5, 9.0, 5.0),
                Alarm('imu.angular_velocity.z', 'zscore', 1, 115.0, None, 6.0, 5.0)),
        faults=(FaultInterval('encoder_stuck:joint_3', 105.5, 108.0),),
        rul=(RulSample('joint_2', 118.0, 0.91, 7200.0, 3600.0, 10800.0),),
        schedules=(Schedule(118.0, 1, (PlannedTask(component='joint_2', risk=Risk.MEDIUM),
                                       PlannedTask('plc', 'inspect sensor', Risk.HIGH)), ()),),
        plan=PlanTracking(stamps, moving(stamps).positions, moving(stamps).positions - [0.0, 0.0, 0.003, 0.0],
                          JOINTS))


def test_every_block_reads_from_the_run_with_a_verdict_per_alarm():
    text = summary_text(full_run(), KINEMATICS, max_lag=0.5, grace=2.0, files=['out/demo/report.html'])
    assert 'latency                    5.0 ms' in text
    assert 'joint_3.velocity' in text and 'during a fault: detection' in text
    assert 'imu.angular_velocity.z' in text and 'no fault: false alarm' in text
    assert 'encoder_stuck:joint_3' in text
    assert 'joint_2                    0.910' in text and 'RUL 2.00 [1.00, 3.00], risk MEDIUM' in text
    assert 'inspect sensor, risk HIGH' in text
    assert 'error at 0.2 s             0.0 mrad RMS' in text  # the predictions were exact
    assert 'position held (baseline)' in text
    assert 'states compared            2000' in text
    assert 'joint_3                    3.000 mrad RMS         peak 3.000 mrad' in text
    assert text.endswith('  out/demo/report.html')


def test_absent_topics_are_named_never_counted_as_zero():
    run = Run(source='inputs only', start=0.0, end=10.0, counts={'/imu/data': 100})
    text = summary_text(run, KINEMATICS, max_lag=0.5, grace=2.0)
    assert f'not recorded               {TWIN_JOINTS}' in text
    assert f'not recorded               {ANOMALIES}' in text
    assert f'not recorded               {DIAGNOSTICS}' in text
    assert 'Tracking: desired vs measured' not in text  # no plan, no block
    assert 'alarms' not in text.replace('Anomaly alarms', '')
