"""twin_report: a bag with known trajectories, predictions, a fault and alarms becomes a page
with every section, embedded figures and the numbers the bag was built to produce.
"""
from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from twin_bag.config import RecorderConfig
from twin_bag.recorder import Recording
from twin_core.kinematics import ArmKinematics
from twin_core.stamps import from_seconds
from twin_core.urdf import urdf_file
from twin_interfaces.msg import (
    AnomalyEvent,
    CameraDiscrepancy,
    MaintenanceSchedule,
    MaintenanceTask,
    TwinState,
    WorkcellTruth,
)
from twin_report.bag import read_run
from twin_report.cli import main
from twin_report.page import milliseconds
from twin_report.report import build_report
from twin_report.series import (
    ANOMALIES,
    CAMERA,
    CAMERA_FEED,
    CAMERA_IMAGES,
    DIAGNOSTICS,
    PREDICTION,
    SCHEDULE,
    TOPICS,
    TRUTH,
    TRUTH_JOINTS,
    TWIN_JOINTS,
    TWIN_STATE,
    build_run,
)
from twin_ros.stamps import to_duration, to_msg

PREFIXES = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
JOINTS = ['joint_1', 'joint_2', 'joint_3', 'joint_4']
T0 = 1_767_225_600.0
SPAN = 8.0  # s of run
LATENCY = 0.03  # s the twin lags the truth
OFFSET = 0.01  # rad the twin is off on joint_2
DRIFT = 0.01  # rad of prediction error per s of horizon, every joint
FAULT = (2.0, 3.0)  # s: collision:link_3 in the truth's active_faults
HORIZONS = np.round(np.arange(0.0, 0.51, 0.1), 3)
PLAN_DEVIATION = 0.004  # rad: amplitude of joint_3's deviation from the plan, a 0.5 Hz sine


def desired_q(t: float) -> list[float]:
    q = twin_q(t)
    q[2] -= PLAN_DEVIATION * math.sin(math.pi * t)
    return q


def truth_q(t: float) -> list[float]:
    """Sines on every joint but joint_2 (held still: its offset then cannot bias the latency)."""
    return [(0.0 if j == 1 else 0.5) * math.sin(2 * math.pi * 0.2 * t + j) + 0.2 * j
            for j in range(len(JOINTS))]


def twin_q(t: float) -> list[float]:
    q = truth_q(t - LATENCY)
    q[1] += OFFSET
    return q


def time_msg(t: float) -> Time:
    return to_msg(from_seconds(T0 + t))


def header(t: float) -> Header:
    return Header(stamp=time_msg(t), frame_id='base_link')


def write_bag(path: Path, predictions: bool = True, plan: bool = True) -> None:
    """A run of SPAN s: 100 Hz truth and twin (optionally twin states with a plan), 10 Hz truth
    with one fault interval and health, two alarms (one inside the fault), optionally 10 Hz
    predictions, diagnostics with RUL and one maintenance plan.
    """
    topics = [TWIN_JOINTS, TRUTH_JOINTS, TRUTH, ANOMALIES, DIAGNOSTICS, SCHEDULE]
    topics += [PREDICTION] if predictions else []
    topics += [TWIN_STATE] if plan else []
    recording = Recording(RecorderConfig(output=str(path), topics=tuple(topics),
                                         types=tuple(TOPICS[t] for t in topics),
                                         qos=('reliable',) * len(topics)), PREFIXES, from_seconds(T0))
    messages: list[tuple[float, str, object]] = []
    for k in range(int(SPAN * 100)):
        t = k / 100
        messages.append((t, TRUTH_JOINTS, JointState(header=header(t), name=JOINTS,
                                                     position=truth_q(t))))
        messages.append((t, TWIN_JOINTS, JointState(header=header(t), name=JOINTS,
                                                    position=twin_q(t))))
        if plan:
            messages.append((t, TWIN_STATE, TwinState(header=header(t), joint_names=JOINTS, position=twin_q(t),
                                                      desired_position=desired_q(t))))
    for k in range(int(SPAN * 10)):
        t = k / 10
        faults = ['collision:link_3'] if FAULT[0] <= t < FAULT[1] else []
        messages.append((t, TRUTH, WorkcellTruth(
            header=header(t), joint_names=JOINTS, position=truth_q(t),
            health=[1.0 - 0.01 * t - 0.1 * j for j in range(4)], active_faults=faults)))
        if predictions and t + HORIZONS[-1] < SPAN:
            messages.append((t, PREDICTION, JointTrajectory(
                header=header(t), joint_names=JOINTS, points=[JointTrajectoryPoint(
                    positions=[q + DRIFT * h for q in twin_q(t + h)],
                    time_from_start=to_duration(from_seconds(h))) for h in HORIZONS])))
    for t, sensor, active in ((2.3, 'joint_3.effort', True), (2.8, 'joint_3.effort', False),
                              (6.0, 'imu.angular_velocity.y', True), (6.5, 'imu.angular_velocity.y', False)):
        messages.append((t, ANOMALIES, AnomalyEvent(header=header(t), sensor=sensor, method='residual',
                                                    score=9.0, threshold=4.0, severity=1, active=active)))
    for k in range(int(SPAN)):
        values = {'risk': 'HIGH', 'health': 0.4, 'rul_s': 5400.0 - k, 'rul_low_s': 3600.0,
                  'rul_high_s': 9000.0}
        messages.append((k, DIAGNOSTICS, DiagnosticArray(header=header(k), status=[DiagnosticStatus(
            name='maintenance_planner: joint_2', level=DiagnosticStatus.WARN, message='risk HIGH',
            values=[KeyValue(key=key, value=str(v)) for key, v in values.items()])])))
    messages.append((4.0, SCHEDULE, MaintenanceSchedule(header=header(4.0), revision=3, tasks=[
        MaintenanceTask(component='joint_2', action='replace gearbox', risk='HIGH',
                        start=time_msg(3600.0), end=time_msg(10800.0), deadline=time_msg(4800.0),
                        rul=5400.0, rul_low=3600.0, rul_high=9000.0, resources=['mechanic'])])))
    for t, topic, message in sorted(messages, key=lambda m: m[0]):
        recording.write(topic, serialize_message(message), from_seconds(T0 + t))
    recording.close()


def number(html: str, pattern: str) -> float:
    """The number captured by ``pattern`` in the page (fails the test when absent)."""
    match = re.search(pattern, html)
    assert match, pattern
    return float(match.group(1))


@pytest.fixture
def report(tmp_path: Path) -> Callable[[bool], tuple[int, str, Path]]:
    def build(predictions: bool) -> tuple[int, str, Path]:
        write_bag(tmp_path / 'bag', predictions, plan=predictions)
        code = main([str(tmp_path / 'bag'), '--out', str(tmp_path / 'report.html'),
                     '--images-dir', str(tmp_path / 'images'), '--image-prefix', 'run_'])
        html = (tmp_path / 'report.html').read_text() if code == 0 else ''
        return code, html, tmp_path / 'images'
    return build


def test_report_shows_every_section_with_the_bags_numbers(report) -> None:
    code, html, images = report(True)
    assert code == 0
    for anchor in ('summary', 'tracking', 'plan', 'prediction', 'anomalies', 'health', 'schedule'):
        assert f'<section id="{anchor}">' in html
    assert 'No data' not in html
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 6
    assert all(base64.b64decode(data).startswith(b'\x89PNG') for data in embedded)
    assert sorted(p.name for p in images.iterdir()) == [
        f'run_{name}.png' for name in ('anomalies', 'health', 'plan', 'prediction', 'schedule', 'tracking')]
    # The plan: joint_3 off by a sine of 4 mrad (RMS 4/√2 mrad over whole periods), the others on it.
    plan = html[html.index('<section id="plan">'):html.index('<section id="prediction">')]
    assert 'Tracking: desired vs measured' in plan and '800 twin states with a plan' in plan
    assert '<td>joint_3</td><td>2.83 mrad</td><td>4.00 mrad</td>' in plan
    assert '<td>joint_1</td><td>0.00 mrad</td><td>0.00 mrad</td>' in plan
    assert '<th>plan deviation peak (worst joint)</th><td>4.00 mrad (joint_3)</td>' in html
    # Fidelity: twin(t) = truth(t − 30 ms), joint_2 off by 10 mrad.
    assert number(html, r'latency</th><td>([\d.]+) ms') == pytest.approx(LATENCY * 1e3, abs=0.2)
    assert number(html, r'<td>joint_2</td><td>([\d.]+) mrad') == pytest.approx(OFFSET * 1e3, abs=0.05)
    assert number(html, r'<td>joint_1</td><td>([\d.]+) mrad') < 0.05
    # Predictions drift 10 mrad per s of horizon from the twin's future.
    assert number(html, r'<td>0.5 s</td><td>([\d.]+) mrad') == pytest.approx(DRIFT * 0.5 * 1e3, abs=0.02)
    assert number(html, r'<td>0.1 s</td><td>([\d.]+) mrad') == pytest.approx(DRIFT * 0.1 * 1e3, abs=0.02)
    # The baseline that holds the position at the origin: the sines move far more in 0.5 s.
    assert 'RMSE vs twin, baseline: position held' in html
    assert number(html, r'<td>0.5 s</td>(?:<td>[\d.]+ mrad</td>){2}<td>([\d.]+) mrad') > 50.0
    # One alarm inside the collision interval, one outside. The truth names the fault from 2.0
    # to 2.9 s at 10 Hz: its onset lies after 1.9 s, its end before 3.0 s.
    assert 'inside / outside fault intervals</th><td>1 / 1</td>' in html
    assert '<td>collision:link_3</td><td class="num">1.9</td><td class="num">3.0</td>' \
           '<td class="num">1</td><td>400 ms</td>' in html
    # Health and RUL from the truth and the planner's diagnostics; the plan's task.
    assert '<td>joint_2</td><td>0.821</td><td>0.400</td><td>1.50 [1.00, 2.50]</td>' in html
    assert 'revision 3: 1 tasks, 0 late' in html
    assert '<td>replace gearbox</td><td>HIGH</td>' in html


def test_a_bag_without_predictions_says_the_topic_was_not_recorded(report) -> None:
    code, html, images = report(False)
    assert code == 0
    assert f'Not recorded: {PREDICTION} (the twin&#x27;s predictions).' in html
    assert f'<th>messages {PREDICTION}</th><td>not recorded</td>' in html
    assert '<section id="plan">' not in html and 'plan deviation' not in html  # no plan, no section
    assert html.count('data:image/png;base64,') == 4
    assert not (images / 'run_prediction.png').exists()
    assert '<section id="tracking">' in html and 'latency</th>' in html


def test_unreadable_or_empty_input_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / 'missing'), '--out', str(tmp_path / 'r.html')]) == 1
    assert 'twin_report:' in capsys.readouterr().err
    Recording(RecorderConfig(output=str(tmp_path / 'empty')), PREFIXES, from_seconds(T0)).close()
    assert main([str(tmp_path / 'empty'), '--out', str(tmp_path / 'r.html')]) == 1
    assert 'the bag holds no messages' in capsys.readouterr().err
    assert not (tmp_path / 'r.html').exists()
    with pytest.raises(SystemExit):
        main(['--out', str(tmp_path / 'r.html')])  # neither a bag nor --live


def recorded_bag(path: Path, topics: list[str], anomaly_at: float | None = None) -> None:
    """``topics`` recorded (each listed, with or without messages) over SPAN s: the truth with a
    collision from FAULT, the twin as the truth, an alarm at ``anomaly_at`` s if given.
    """
    recording = Recording(RecorderConfig(output=str(path), topics=tuple(topics),
                                         types=tuple(TOPICS[t] for t in topics),
                                         qos=('reliable',) * len(topics)), PREFIXES, from_seconds(T0))
    for k in range(int(SPAN * 10)):
        t = k / 10
        faults = ['collision:link_3'] if FAULT[0] <= t < FAULT[1] else []
        recording.write(TRUTH, serialize_message(WorkcellTruth(
            header=header(t), joint_names=JOINTS, position=truth_q(t), health=[1.0] * 4,
            active_faults=faults)), from_seconds(T0 + t))
        if TWIN_JOINTS in topics:
            recording.write(TWIN_JOINTS, serialize_message(JointState(header=header(t), name=JOINTS,
                                                                      position=truth_q(t))), from_seconds(T0 + t))
    if anomaly_at is not None:
        recording.write(ANOMALIES, serialize_message(AnomalyEvent(
            header=header(anomaly_at), sensor='joint_3.effort', method='residual', score=9.0, threshold=4.0,
            severity=1, active=True)), from_seconds(T0 + anomaly_at))
    recording.close()


def test_sections_of_topics_not_recorded_say_so_and_count_nothing(tmp_path: Path) -> None:
    recorded_bag(tmp_path / 'bag', [TRUTH])  # the ground truth only, like a bag of inputs
    assert main([str(tmp_path / 'bag'), '--no-replay', '--out', str(tmp_path / 'r.html')]) == 0
    html = (tmp_path / 'r.html').read_text()
    for topic in (TWIN_JOINTS, PREDICTION, ANOMALIES, SCHEDULE, DIAGNOSTICS):
        assert f'Not recorded: {topic}' in html or f'not recorded: {topic}' in html, topic
        assert f'<th>messages {topic}</th><td>not recorded</td>' in html
    assert f'<th>anomaly alarms</th><td>not recorded: {ANOMALIES}</td>' in html
    assert '0 / 0' not in html and 'No data' not in html
    assert '<th>ground-truth faults</th><td class="num">1</td>' in html


def test_a_topic_recorded_without_messages_counts_zero_not_absent(tmp_path: Path) -> None:
    recorded_bag(tmp_path / 'bag', [TRUTH, TWIN_JOINTS, ANOMALIES])
    assert main([str(tmp_path / 'bag'), '--out', str(tmp_path / 'r.html')]) == 0
    html = (tmp_path / 'r.html').read_text()
    assert 'inside / outside fault intervals</th><td>0 / 0</td>' in html  # recorded: no alarm rose
    recorded_bag(tmp_path / 'alarmed', [TRUTH, TWIN_JOINTS, ANOMALIES], anomaly_at=6.0)
    assert main([str(tmp_path / 'alarmed'), '--out', str(tmp_path / 'r.html')]) == 0
    assert 'inside / outside fault intervals</th><td>0 / 1</td>' in (tmp_path / 'r.html').read_text()


def test_a_twin_in_step_with_the_truth_has_latency_zero_not_minus_zero(tmp_path: Path) -> None:
    recorded_bag(tmp_path / 'bag', [TRUTH, TWIN_JOINTS])
    assert main([str(tmp_path / 'bag'), '--out', str(tmp_path / 'r.html')]) == 0
    assert '<th>latency (twin behind truth)</th><td>0.0 ms</td>' in (tmp_path / 'r.html').read_text()
    assert milliseconds(-4e-5) == '0.0 ms' and milliseconds(0.03) == '30.0 ms' and milliseconds(-0.03) == '-30.0 ms'


def test_the_summary_prints_every_layer_with_a_verdict_per_alarm(tmp_path: Path, capsys) -> None:
    write_bag(tmp_path / 'bag', True)
    assert main([str(tmp_path / 'bag'), '--out', str(tmp_path / 'report.html'), '--summary']) == 0
    out = capsys.readouterr().out
    for block in ('Twin vs ground truth', 'Tracking: desired vs measured', 'Anomaly alarms',
                  'Health, remaining useful life and risk per joint',
                  'Prediction', 'Written'):
        assert f'\n{block}' in out
    assert number(out, r'latency\s+([\d.]+) ms') == pytest.approx(LATENCY * 1e3, abs=0.2)
    assert 'during a fault: detection' in out and 'no fault: false alarm' in out
    assert 'risk HIGH' in out
    assert re.search(r'joint_3\s+2\.828 mrad RMS\s+peak 4\.000 mrad', out)
    assert f'{tmp_path / "report.html"} (the report page)' in out


def test_the_camera_checks_discrepancies_are_summarised_where_recorded(tmp_path: Path) -> None:
    kinematics = ArmKinematics.from_urdf(urdf_file())
    recording = Recording(RecorderConfig(output=str(tmp_path / 'bag'), topics=(CAMERA, TRUTH, CAMERA_IMAGES),
                                         types=(TOPICS[CAMERA], TOPICS[TRUTH], CAMERA_FEED[CAMERA_IMAGES]),
                                         qos=('reliable', 'reliable', 'sensor_data')), PREFIXES, from_seconds(T0))
    for i in range(1, 21):  # the stamped messages as the camera check publishes them, read back from a bag
        recording.write(CAMERA, serialize_message(CameraDiscrepancy(
            header=header(0.2 * i), image_mm=float(i), image_px=0.25 * i, position_mm=2.0 * i, offset_ms=20.0)),
            from_seconds(T0 + 0.2 * i))
    recording.write(TRUTH, serialize_message(WorkcellTruth(header=header(4.0), joint_names=JOINTS,
                                                           position=truth_q(4.0))), from_seconds(T0 + 4.0))
    for i in range(3):  # the camera's own images, recorded beside (counted, not read)
        recording.write(CAMERA_IMAGES, serialize_message(CompressedImage(header=header(0.2 * i), format='jpeg',
                                                                         data=b'\xff\xd8\xff\xd9')),
                        from_seconds(T0 + 0.2 * i))
    recording.close()
    run = read_run(tmp_path / 'bag')
    summary = dict(build_report(run, kinematics).summary)
    assert summary['camera vs twin: frames judged'] == 20
    assert summary['camera vs twin: image discrepancy mean / p95 / max'] == '10.50 / 19.05 / 20.00 mm'
    assert summary['camera vs twin: tool plate seen, mean / p95'] == '21.00 / 38.10 mm'
    assert summary[f'messages {CAMERA}'] == 20 and summary[f'messages {CAMERA_IMAGES}'] == 3
    without = dict(build_report(build_run('bag', 0.0, 4.0, {}, {}), kinematics).summary)
    assert not any(key.startswith('camera vs twin') or 'camera/' in key for key in without)
