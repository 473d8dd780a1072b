"""Time series of one run, built from deserialized messages (any objects with the ROS field
names: rclpy messages or rosbags dataclasses). Times are header stamps in s since the epoch.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin_core.stamps import from_msg, to_seconds
from twin_maintenance.scheduler import PlannedTask
from twin_state.fidelity import Trajectory
from twin_state.visual_check import DISCREPANCIES

TWIN_JOINTS = '/twin/joint_states'
TWIN_STATE = '/twin/state'
TRUTH_JOINTS = '/workcell_sim/joint_states'
TRUTH = '/workcell_sim/truth'
PREDICTION = '/twin/predicted_trajectory'
ANOMALIES = '/twin/anomalies'
SCHEDULE = '/twin/maintenance_schedule'
DIAGNOSTICS = '/diagnostics'
CAMERA = '/twin/camera/discrepancy'
# Every topic a report reads, with its message type (all recorded reliable).
TOPICS: dict[str, str] = {
    TWIN_JOINTS: 'sensor_msgs/msg/JointState',
    TWIN_STATE: 'twin_interfaces/msg/TwinState',
    TRUTH_JOINTS: 'sensor_msgs/msg/JointState',
    TRUTH: 'twin_interfaces/msg/WorkcellTruth',
    PREDICTION: 'trajectory_msgs/msg/JointTrajectory',
    ANOMALIES: 'twin_interfaces/msg/AnomalyEvent',
    SCHEDULE: 'twin_interfaces/msg/MaintenanceSchedule',
    DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray',
    CAMERA: 'twin_interfaces/msg/CameraDiscrepancy',
}
OPTIONAL_TOPICS = (CAMERA,)  # only where the cell has a camera (off by default): not missed when absent
CAMERA_IMAGES, CAMERA_INFO = '/camera/image_raw/compressed', '/camera/camera_info'
# The camera's own stream: a live run records it where the cell has a camera (best effort, as
# published), for replay and viewers; the report counts it and reads none of it.
CAMERA_FEED: dict[str, str] = {
    CAMERA_IMAGES: 'sensor_msgs/msg/CompressedImage',
    CAMERA_INFO: 'sensor_msgs/msg/CameraInfo',
}
PLANNER = 'maintenance_planner: '  # prefix of the maintenance planner's diagnostic statuses
# A deserialized message: an rclpy message or a rosbags dataclass, read by field name only.
Message = Any


@dataclass(frozen=True)
class PredictedTrajectory:
    """One predicted trajectory: positions (points × joints) at ``origin + horizons``."""

    origin: float
    horizons: np.ndarray
    positions: np.ndarray
    joint_names: tuple[str, ...]


@dataclass(frozen=True)
class Alarm:
    """An anomaly alarm from its rising to its clearing event (``end`` None: never cleared)."""

    sensor: str
    method: str
    severity: int
    start: float
    end: float | None
    score: float
    threshold: float

    @property
    def source(self) -> str:
        """The sensor the score belongs to: the channel without its last field
        (``imu.angular_velocity.y`` → ``imu.angular_velocity``, ``joint_3.velocity`` → ``joint_3``).
        """
        return self.sensor.rsplit('.', 1)[0]


@dataclass(frozen=True)
class PlanTracking:
    """The twin's measured and desired joint positions (rad, samples × joints) at the stamps of
    the twin states that carried a plan, and their difference (measured − desired).
    """

    stamps: np.ndarray
    measured: np.ndarray
    desired: np.ndarray
    joint_names: tuple[str, ...]

    @property
    def error(self) -> np.ndarray:
        return self.measured - self.desired


@dataclass(frozen=True)
class FaultInterval:
    """A ground-truth fault (``type:target``) active from ``start`` to ``end``."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class ConditionSeries:
    """Ground-truth health per joint (1 new, 0 failure threshold), rows at ``stamps``."""

    stamps: np.ndarray
    condition: np.ndarray
    joint_names: tuple[str, ...]


@dataclass(frozen=True)
class RulSample:
    """The maintenance planner's assessment of one component (diagnostics), RUL in s."""

    component: str
    stamp: float
    condition: float
    rul: float
    rul_low: float
    rul_high: float


@dataclass(frozen=True)
class Schedule:
    """One revision of the maintenance plan."""

    stamp: float
    revision: int
    tasks: tuple[PlannedTask, ...]
    unplaced: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """Everything a report shows; empty series where the bag lacks the topic."""

    source: str
    start: float  # s since the epoch, first message
    end: float
    counts: Mapping[str, int]  # messages per recorded topic
    twin: Trajectory | None = None
    truth: Trajectory | None = None
    truth_source: str = TRUTH_JOINTS
    predictions: tuple[PredictedTrajectory, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    faults: tuple[FaultInterval, ...] = ()
    condition: ConditionSeries | None = None
    rul: tuple[RulSample, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    plan: PlanTracking | None = None  # None: no twin state carried a plan
    camera: np.ndarray | None = None  # the camera check's judged frames × DISCREPANCIES; None: not run


def trajectory(samples: Iterable[tuple[float, Sequence[str], Sequence[float]]]) -> Trajectory | None:
    """(stamp, names, positions) samples in stamp order, columns like the first sample's names;
    None with fewer than two distinct stamps.
    """
    rows: dict[float, list[float]] = {}
    names: tuple[str, ...] = ()
    for stamp, sample_names, positions in sorted(samples, key=lambda s: s[0]):
        by_name = dict(zip(sample_names, positions))
        names = names or tuple(sample_names)
        if all(name in by_name for name in names):
            rows.setdefault(stamp, [by_name[name] for name in names])
    if len(rows) < 2:
        return None
    return Trajectory(np.array(list(rows)), np.array(list(rows.values()), dtype=float), names)


def plan_tracking(states: Iterable[Message]) -> PlanTracking | None:
    """Measured and desired positions of the TwinStates that carry a plan, in stamp order, joints
    like the first such state's; None without one.
    """
    rows: dict[float, tuple[list[float], list[float]]] = {}
    names: tuple[str, ...] = ()
    for state in states:
        if not len(state.desired_position) or len(state.desired_position) != len(state.position):
            continue
        names = names or tuple(state.joint_names)
        if tuple(state.joint_names) == names:
            rows.setdefault(to_seconds(from_msg(state.header.stamp)),
                            (list(state.position), list(state.desired_position)))
    if not rows:
        return None
    stamps = sorted(rows)
    return PlanTracking(np.array(stamps), np.array([rows[t][0] for t in stamps], dtype=float),
                        np.array([rows[t][1] for t in stamps], dtype=float), names)


def camera_discrepancies(messages: Iterable[Message]) -> np.ndarray | None:
    """The camera check's discrepancies (frames × DISCREPANCIES); None without a frame."""
    rows = [[float(getattr(m, name)) for name in DISCREPANCIES] for m in messages]
    return np.array(rows, dtype=float) if rows else None


def alarms(events: Iterable[Message]) -> tuple[Alarm, ...]:
    """Pair AnomalyEvents rising and clearing on the same sensor and method, by start time;
    repeated rising edges and clearings without a rising edge are ignored.
    """
    open_alarms: dict[tuple[str, str], Message] = {}
    closed: list[Alarm] = []

    def alarm(event: Message, until: float | None) -> Alarm:
        return Alarm(event.sensor, event.method, int(event.severity), to_seconds(from_msg(event.header.stamp)),
                     until, float(event.score), float(event.threshold))
    for event in sorted(events, key=lambda e: from_msg(e.header.stamp)):
        key = (event.sensor, event.method)
        if event.active:
            open_alarms.setdefault(key, event)
        elif key in open_alarms:
            closed.append(alarm(open_alarms.pop(key), to_seconds(from_msg(event.header.stamp))))
    closed += [alarm(event, None) for event in open_alarms.values()]
    return tuple(sorted(closed, key=lambda a: a.start))


def fault_intervals(truths: Sequence[Message]) -> tuple[FaultInterval, ...]:
    """Intervals of each label in WorkcellTruth ``active_faults``, as wide as the samples allow:
    from the message before the first one naming it (the fault began after that one) to the
    first one that no longer does (or the last message).
    """
    ordered = sorted(truths, key=lambda m: from_msg(m.header.stamp))
    active: dict[str, float] = {}
    intervals: list[FaultInterval] = []
    previous: float | None = None
    for message in ordered:
        stamp, labels = to_seconds(from_msg(message.header.stamp)), set(message.active_faults)
        for label in [label for label in active if label not in labels]:
            intervals.append(FaultInterval(label, active.pop(label), stamp))
        for label in labels:
            active.setdefault(label, stamp if previous is None else previous)
        previous = stamp
    if ordered:
        last = to_seconds(from_msg(ordered[-1].header.stamp))
        intervals += [FaultInterval(label, start, last) for label, start in active.items()]
    return tuple(sorted(intervals, key=lambda f: f.start))


def condition(truths: Sequence[Message]) -> ConditionSeries | None:
    """Ground-truth health per joint from WorkcellTruth messages (None without any)."""
    rows = [(to_seconds(from_msg(m.header.stamp)), list(m.health)) for m in truths if len(m.health)]
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    return ConditionSeries(np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=float),
                        tuple(truths[0].joint_names))


def rul_samples(arrays: Iterable[Message]) -> tuple[RulSample, ...]:
    """The planner's per-component statuses carrying an RUL (``rul_s``, ``rul_low_s``, …)."""
    samples = []
    for array in arrays:
        stamp = to_seconds(from_msg(array.header.stamp))
        for entry in array.status:
            values = {kv.key: kv.value for kv in entry.values}
            if entry.name.startswith(PLANNER) and 'rul_s' in values:
                samples.append(RulSample(entry.name[len(PLANNER):], stamp, float(values['health']),
                                         float(values['rul_s']), float(values['rul_low_s']),
                                         float(values['rul_high_s'])))
    return tuple(sorted(samples, key=lambda s: s.stamp))


def schedule(message: Message) -> Schedule:
    """A MaintenanceSchedule message as a :class:`Schedule`."""
    return Schedule(to_seconds(from_msg(message.header.stamp)), int(message.revision), tuple(
        PlannedTask.from_message(t) for t in message.tasks),
        tuple(message.unplaced))


def prediction(message: Message) -> PredictedTrajectory | None:
    """A JointTrajectory as a :class:`PredictedTrajectory` (None without points)."""
    if not message.points:
        return None
    return PredictedTrajectory(to_seconds(from_msg(message.header.stamp)),
                      np.array([to_seconds(from_msg(p.time_from_start)) for p in message.points]),
                      np.array([list(p.positions) for p in message.points], dtype=float),
                      tuple(message.joint_names))


def build_run(source: str, start: float, end: float, counts: Mapping[str, int],
              messages: Mapping[str, Sequence[Message]]) -> Run:
    """The series of a run from its deserialized messages per topic (see :data:`TOPICS`)."""
    def joint_samples(topic: str) -> list[tuple[float, Sequence[str], Sequence[float]]]:
        return [(to_seconds(from_msg(m.header.stamp)), m.name, m.position) for m in messages.get(topic, ())]
    truths = messages.get(TRUTH, ())
    truth, truth_source = trajectory(joint_samples(TRUTH_JOINTS)), TRUTH_JOINTS
    if truth is None:  # the 10 Hz truth topic when the 100 Hz joint states were not recorded
        truth, truth_source = trajectory((to_seconds(from_msg(m.header.stamp)), m.joint_names, m.position)
                                         for m in truths), TRUTH
    predictions = (prediction(m) for m in messages.get(PREDICTION, ()))
    return Run(source=source, start=start, end=end, counts=dict(counts),
               twin=trajectory(joint_samples(TWIN_JOINTS)), truth=truth, truth_source=truth_source,
               predictions=tuple(p for p in predictions if p is not None),
               alarms=alarms(messages.get(ANOMALIES, ())), faults=fault_intervals(truths),
               condition=condition(truths), rul=rul_samples(messages.get(DIAGNOSTICS, ())),
               schedules=tuple(sorted((schedule(m) for m in messages.get(SCHEDULE, ())),
                                      key=lambda s: (s.stamp, s.revision))),
               plan=plan_tracking(messages.get(TWIN_STATE, ())), camera=camera_discrepancies(messages.get(CAMERA, ())))
