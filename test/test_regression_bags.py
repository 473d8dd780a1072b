"""Regression on the reference bags (test/data/bags, scripts/reference_bags.py): each bag is
replayed through the twin as ``twin_report`` replays it (twin_report.replay: the node table's sync,
state, anomaly, maintenance and predictor processes on the bag's time, its driver topics from
``twin_play --clock``, their outputs recorded by ``twin_record``), and the outcomes are checked
against the bag's ground truth and its manifest entry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus

from harness import CONFIG_DIR, REPO
from twin_bag.reading import read_topics
from twin_core.kinematics import ArmKinematics
from twin_report import replay as twin_replay
from twin_state.fidelity import Trajectory, evaluate

pytestmark = pytest.mark.integration

BAGS = REPO / 'test' / 'data' / 'bags'
MANIFEST = yaml.safe_load((BAGS / 'manifest.yaml').read_text())['bags']
TRUTH = '/workcell_sim/joint_states'
FRAMES = '/twin/synced_frame'
RECORDED = {**twin_replay.OUTPUTS, FRAMES: 'twin_interfaces/msg/SyncedFrame'}
OUTPUT_PERIOD_S = 0.01  # config/sync.yaml output_rate_hz
MAX_JOINT_RMSE = 0.01  # rad, after latency alignment
MAX_LATENCY_S = 0.05
DETECTION_GRACE_S = 1.0  # an alarm counts for a fault that ended at most this long before it
ERROR = DiagnosticStatus.ERROR[0]
ALERTS = ('HIGH', 'CRITICAL')
SENSING_FAULTS = ('encoder_stuck',)
KINEMATICS = ArmKinematics.from_urdf(CONFIG_DIR / 'arm.urdf')
NOT_DETECTABLE = {'overheating': (
    'the bag starts with cold motors: near ambient, lost cooling changes nothing (joint_2 winding '
    '+0.41 K over the bag, nominal +0.40 K); overheating shows only over minutes')}


@dataclass
class Replay:
    """What the twin published while one bag was replayed (messages read back from the recorded
    bag), with the bag's truth and start.
    """

    entry: dict[str, Any]
    start_ns: int
    truth: Trajectory
    twin: Trajectory
    frames: list[Any]
    anomalies: list[Any]
    schedules: list[Any]
    diagnostics: list[Any]

    def seconds(self, stamp: Any) -> float:
        """A header stamp in s from the bag's start."""
        return (stamp.sec * 10**9 + stamp.nanosec - self.start_ns) / 1e9

    @property
    def alarms(self) -> list[Any]:
        return [e for e in self.anomalies if e.active]

    def compared(self) -> tuple[Trajectory, Trajectory]:
        """Twin and truth, without the fault interval of a fault that makes the encoders lie
        (the twin follows its sensors; such a fault is detected, not corrected).
        """
        fault = self.entry.get('fault')
        if not fault or fault['type'] not in SENSING_FAULTS:
            return self.twin, self.truth
        keep = ((self.twin.stamps < fault['onset_s'])
                | (self.twin.stamps > fault['end_s'] + DETECTION_GRACE_S))
        return Trajectory(self.twin.stamps[keep], self.twin.positions[keep], self.twin.joint_names), self.truth


def stamped(messages: list[Any], start_ns: int) -> Trajectory:
    """Joint positions of JointState messages against their header stamps (s from start_ns)."""
    messages = sorted(messages, key=lambda m: (m.header.stamp.sec, m.header.stamp.nanosec))
    return Trajectory(np.array([(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec - start_ns) / 1e9
                                for m in messages]),
                      np.array([list(m.position) for m in messages]), tuple(messages[0].name))


def replay(entry: dict[str, Any], env: dict[str, str], directory: Path) -> Replay:
    """Replay the bag through the twin (every process must survive it), read back what it published."""
    bag = BAGS / entry['bag']
    setup = twin_replay.plan(bag, directory / 'outputs', CONFIG_DIR, directory, RECORDED)
    twin_replay.run(setup, env, directory / 'logs')
    inputs = read_topics(bag, {TRUTH: 'sensor_msgs/msg/JointState'})
    outputs = read_topics(setup.output, RECORDED).messages
    start_ns = round(inputs.start * 1e9)
    result = Replay(entry, start_ns, stamped(inputs.messages[TRUTH], start_ns),
                    stamped(outputs['/twin/joint_states'], start_ns), outputs.get(FRAMES, []),
                    outputs.get('/twin/anomalies', []), outputs.get('/twin/maintenance_schedule', []),
                    outputs.get('/diagnostics', []))
    print(report(result))
    return result


@pytest.fixture(scope='module')
def replays(ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Replay]:
    """Each bag's replay, run once (on first use) and shared by the checks below."""
    done: dict[str, Replay] = {}
    entries = {entry['name']: entry for entry in MANIFEST}

    def get(name: str) -> Replay:
        if name not in done:
            done[name] = replay(entries[name], ros_env, tmp_path_factory.mktemp(name))
        return done[name]
    return get


def report(replay: Replay) -> str:
    """One line of measured numbers for the test log."""
    fidelity = evaluate(*replay.compared(), KINEMATICS)
    alarms = [(round(replay.seconds(e.header.stamp), 2), e.sensor, e.method, e.severity) for e in replay.alarms]
    health = {s.name.split(': ')[1]: (s.message, {v.key: v.value for v in s.values}.get('health'))
              for array in replay.diagnostics for s in array.status
              if s.name.startswith('maintenance_planner: joint')}
    return (f'{replay.entry["name"]}: frames {len(replay.frames)}, twin states {len(replay.twin.stamps)}, '
            f'latency {fidelity.latency * 1e3:.1f} ms, joint RMSE {fidelity.joint_rmse.round(5).tolist()} rad, '
            f'EE error p95 {fidelity.ee_error_p95 * 1e3:.2f} mm, {len(alarms)} alarms {sorted(alarms)}, '
            f'planner {health}')


def names(key: str, value: Any = None) -> list[str]:
    """The bags whose manifest ``expect`` has ``key`` (equal to ``value`` if given)."""
    return [e['name'] for e in MANIFEST
            if key in e['expect'] and (value is None or e['expect'][key] == value)]


@pytest.mark.parametrize('name', [e['name'] for e in MANIFEST])
def test_sync_emits_every_grid_frame_on_bag_time(replays, name: str) -> None:
    replay = replays(name)
    stamps = np.array([replay.seconds(f.header.stamp) for f in replay.frames])
    steps = np.round(np.diff(stamps) / OUTPUT_PERIOD_S).astype(int)
    assert (steps == 1).mean() > 0.99, np.unique(steps, return_counts=True)
    assert stamps[-1] - stamps[0] > replay.entry['duration_s'] - 1.0


@pytest.mark.parametrize('name', [e['name'] for e in MANIFEST])
def test_twin_state_tracks_the_ground_truth(replays, name: str) -> None:
    replay = replays(name)
    fidelity = evaluate(*replay.compared(), KINEMATICS)
    assert len(replay.twin.stamps) > 0.8 * replay.entry['duration_s'] / OUTPUT_PERIOD_S  # ~one per frame
    assert fidelity.samples > 200, fidelity.lines()
    assert fidelity.joint_rmse.max() < MAX_JOINT_RMSE, fidelity.lines()
    assert abs(fidelity.latency) < MAX_LATENCY_S, fidelity.lines()


@pytest.mark.parametrize('name', names('error_alarms', False))
def test_no_error_alarm_without_a_fault(replays, name: str) -> None:
    replay = replays(name)
    errors = [f'{e.sensor} ({e.method}) at {replay.seconds(e.header.stamp):.2f} s'
              for e in replay.alarms if e.severity >= ERROR]
    assert not errors


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_DETECTABLE[n])) if n in NOT_DETECTABLE
    else n for n in names('alarm_channels')])
def test_alarm_on_the_faulty_channel_within_the_fault_interval(replays, name: str) -> None:
    replay = replays(name)
    fault, channels = replay.entry['fault'], tuple(replay.entry['expect']['alarm_channels'])
    begin, end = fault['onset_s'], fault['end_s'] + DETECTION_GRACE_S
    inside = [e for e in replay.alarms
              if begin <= replay.seconds(e.header.stamp) <= end and e.sensor.startswith(channels)]
    assert inside, (f'{fault["label"]} over [{begin}, {end}] s: alarms at '
                    f'{[(e.sensor, round(replay.seconds(e.header.stamp), 2)) for e in replay.alarms]}')


@pytest.mark.parametrize('name', names('maintenance_alert'))
def test_maintenance_alert_only_for_a_worn_arm(replays, name: str) -> None:
    """Gearbox and motor alerts (joint_<i>, joint_<i>_motor). Sensor components are rated on data
    availability, which a replay starved of CPU can dent whatever the arm's wear.
    """
    replay = replays(name)
    scheduled = {(t.component, t.risk) for s in replay.schedules for t in s.tasks
                 if t.risk in ALERTS and t.component.startswith('joint_')}
    diagnosed = {s.name for array in replay.diagnostics for s in array.status
                 if s.name.startswith('maintenance_planner: joint_') and s.message.split()[-1] in ALERTS}
    assert bool(scheduled or diagnosed) == replay.entry['expect']['maintenance_alert'], (scheduled, diagnosed)
