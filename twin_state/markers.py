"""What the twin's RViz markers show, as plain data: alarm and risk colours, the arm's line
segments, the ghost of the desired pose (the plan's), the ghost of the predicted trajectory with
its uncertainty, and maintenance labels.

The node shell turns these into ``visualization_msgs``; nothing here imports rclpy.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twin_core.kinematics import BASE_FRAME, END_EFFECTOR, ArmKinematics
from twin_core.levels import Level, Risk
from twin_core.urdf import MOVABLE

RGBA = tuple[float, float, float, float]
# The levels an AnomalyEvent.severity takes.
LEVEL_COLOURS: dict[Level, RGBA] = {Level.OK: (0.2, 0.8, 0.2, 1.0), Level.WARN: (1.0, 0.85, 0.0, 1.0),
                                    Level.ERROR: (0.9, 0.1, 0.1, 1.0)}
RISK_COLOURS: dict[Risk, RGBA] = {Risk.LOW: (0.2, 0.8, 0.2, 1.0), Risk.MEDIUM: (1.0, 0.85, 0.0, 1.0),
                                  Risk.HIGH: (1.0, 0.5, 0.0, 1.0), Risk.CRITICAL: (0.9, 0.1, 0.1, 1.0)}
DESIRED_COLOUR: RGBA = (0.85, 0.85, 0.95, 0.35)  # the arm at the desired joint positions, translucent
DRAW, CLEAR = 'draw', 'clear'


def joint_of(channel: str, joints: Sequence[str]) -> str | None:
    """The joint a sensor channel concerns: a dot-separated part equal to a joint name
    ('joint_3.velocity' → 'joint_3'); None for 'multivariate', imu, scan.
    """
    return next((part for part in channel.split('.') if part in joints), None)


class ActiveAlarms:
    """The anomaly alarms currently raised, keyed by (sensor channel, method)."""

    def __init__(self, joints: Sequence[str]) -> None:
        self._joints = tuple(joints)
        self._active: dict[tuple[str, str], tuple[str | None, Level]] = {}  # → (joint, level)

    def update(self, sensor: str, method: str, severity: int, active: bool) -> None:
        """Apply one rising (``active``) or clearing event; severity is OK, WARN or ERROR."""
        if severity not in LEVEL_COLOURS:
            raise ValueError(f'anomaly severity {severity} on {sensor!r} is not OK/WARN/ERROR (0..2)')
        if active:
            self._active[(sensor, method)] = (joint_of(sensor, self._joints), Level(severity))
        else:
            self._active.pop((sensor, method), None)

    def __len__(self) -> int:
        return len(self._active)

    def level(self, joint: str | None) -> Level:
        """Worst level of the active alarms on ``joint`` (None: alarms tied to no joint)."""
        return max((level for owner, level in self._active.values() if owner == joint), default=Level.OK)


@dataclass(frozen=True)
class Segment:
    """A line from the origin of frame ``parent`` to that of ``child``, on the rigid body that
    ``joint`` moves (None: the base, which no joint moves).
    """

    parent: str
    child: str
    joint: str | None


def segments(kinematics: ArmKinematics) -> tuple[Segment, ...]:
    """The arm's skeleton: one segment per URDF joint. A segment belongs to the movable joint
    that carries its parent frame (link_2 → link_3 is moved by joint_2).
    """
    owner: dict[str, str | None] = {BASE_FRAME: None}
    for joint in kinematics.joints:  # parents precede children
        owner[joint.child] = joint.name if joint.type in MOVABLE else owner[joint.parent]
    return tuple(Segment(j.parent, j.child, owner[j.parent]) for j in kinematics.joints)


def skeleton(frames: Mapping[str, np.ndarray], parts: Sequence[Segment]) -> np.ndarray:
    """End points (segments, 2, 3) of ``parts`` given every frame's transform in base_link."""
    return np.array([[frames[s.parent][:3, 3], frames[s.child][:3, 3]] for s in parts])


def desired_arm(kinematics: ArmKinematics, parts: Sequence[Segment], joint_names: Sequence[str],
                desired: np.ndarray) -> np.ndarray | None:
    """End points (segments, 2, 3) of the arm at the desired joint positions; None without a plan
    (``desired`` empty).
    """
    if not len(desired):
        return None
    return skeleton(kinematics.transforms(dict(zip(joint_names, desired))), parts)


def segment_colours(parts: Sequence[Segment], alarms: ActiveAlarms) -> list[RGBA]:
    """Colour of each segment by the worst active alarm on its joint; base segments take the
    alarms that concern no joint (imu, scan, multivariate).
    """
    return [LEVEL_COLOURS[alarms.level(s.joint)] for s in parts]


def outline_colour(alarms: ActiveAlarms) -> RGBA | None:
    """Colour of a halo around the whole arm while alarms that concern no joint are active."""
    level = alarms.level(None)
    return LEVEL_COLOURS[level] if level > Level.OK else None


@dataclass(frozen=True)
class Trajectory:
    """Rows of joint values (points, joints) at ``times`` (s from ``stamp``)."""

    stamp: float
    joint_names: tuple[str, ...]
    times: np.ndarray
    values: np.ndarray

    @staticmethod
    def from_points(stamp: float, joint_names: Sequence[str], times: Sequence[float],
                    rows: Sequence[Sequence[float]]) -> Trajectory:
        """Validate a JointTrajectory's content: raises ValueError on bad shape or values."""
        if len(rows) == 0:
            raise ValueError('trajectory has no points')
        if len(set(joint_names)) != len(joint_names):
            raise ValueError(f'trajectory repeats joint names: {list(joint_names)}')
        if len(times) != len(rows):
            raise ValueError(f'{len(times)} times for {len(rows)} points')
        if any(len(row) != len(joint_names) for row in rows):
            raise ValueError(f'every point needs {len(joint_names)} positions ({list(joint_names)})')
        values, offsets = np.asarray(rows, float), np.asarray(times, float)
        if not (np.isfinite(values).all() and np.isfinite(offsets).all()):
            raise ValueError('trajectory holds non-finite values')
        if np.any(np.diff(offsets) <= 0.0):
            raise ValueError('trajectory time_from_start must increase')
        return Trajectory(stamp, tuple(joint_names), offsets, values)


def position_jacobian(kinematics: ArmKinematics, frames: Mapping[str, np.ndarray],
                      joint_names: Sequence[str], frame: str = END_EFFECTOR) -> np.ndarray:
    """d(position of ``frame``)/d(joint) (3, joints) in base_link, from the transforms at the
    linearization point; joints not between base_link and ``frame`` give zero columns.
    """
    by_name = {joint.name: joint for joint in kinematics.joints}
    ancestors, current = set(), frame
    while current != BASE_FRAME:
        joint = next(j for j in kinematics.joints if j.child == current)
        ancestors.add(joint.name)
        current = joint.parent
    tip = frames[frame][:3, 3]
    out = np.zeros((3, len(joint_names)))
    for column, name in enumerate(joint_names):
        if name in ancestors:
            joint = by_name[name]
            child = frames[joint.child]  # the joint's rotation leaves its axis in place
            axis = child[:3, :3] @ (np.asarray(joint.axis, float) / np.linalg.norm(joint.axis))
            out[:, column] = np.cross(axis, tip - child[:3, 3])
    return out


@dataclass(frozen=True)
class Ghost:
    """The predicted motion drawn in base_link."""

    path: np.ndarray  # (points, 3) end-effector positions
    arms: tuple[tuple[float, np.ndarray], ...]  # (time_from_start, skeleton (segments, 2, 3))
    spheres: tuple[tuple[np.ndarray, float], ...]  # (centre, diameter) of uncertainty spheres


def ghost(kinematics: ArmKinematics, parts: Sequence[Segment], mean: Trajectory,
          std: Trajectory | None, fractions: Sequence[float], sphere_count: int, sigmas: float,
          min_diameter: float) -> Ghost:
    """End-effector path and arm skeletons (at ``fractions`` of the horizon) by forward kinematics
    of the ensemble-mean joint positions, and uncertainty spheres at ``sphere_count`` points.

    A sphere's radius is ``sigmas`` × the largest principal standard deviation of the position
    covariance J diag(σ²) Jᵀ, with J the end-effector position Jacobian at the mean. This is a
    first-order (linearized) propagation that treats the per-joint ensemble deviations as
    independent; it is not a bound on the true (correlated, non-Gaussian) spread, and a sphere
    overstates the spread along the smaller principal axes.
    """
    missing = set(kinematics.joint_names) - set(mean.joint_names)
    unknown = set(mean.joint_names) - set(kinematics.joint_names)
    if missing or unknown:
        raise ValueError(f'trajectory joints {list(mean.joint_names)} do not match the arm '
                         f'{list(kinematics.joint_names)}')
    if std is not None and (std.joint_names != mean.joint_names
                            or std.values.shape != mean.values.shape):
        raise ValueError('the standard deviation trajectory does not match the mean trajectory')
    if std is not None and np.any(std.values < 0.0):
        raise ValueError('negative standard deviation in the predicted trajectory')
    points = len(mean.times)
    frames = [kinematics.transforms(dict(zip(mean.joint_names, row))) for row in mean.values]
    path = np.array([f[END_EFFECTOR][:3, 3] for f in frames])
    arms = []
    for index in sorted({min(points - 1, max(0, round(f * (points - 1)))) for f in fractions}):
        arms.append((float(mean.times[index]), skeleton(frames[index], parts)))
    spheres = []
    if std is not None and sphere_count > 0:
        for index in np.unique(np.linspace(0, points - 1, sphere_count).round().astype(int)):
            jacobian = position_jacobian(kinematics, frames[index], mean.joint_names)
            covariance = jacobian @ np.diag(std.values[index] ** 2) @ jacobian.T
            radius = sigmas * float(np.sqrt(max(np.linalg.eigvalsh(covariance)[-1], 0.0)))
            spheres.append((path[index], max(2.0 * radius, min_diameter)))
    return Ghost(path, tuple(arms), tuple(spheres))


class PredictionFeed:
    """The latest predicted trajectory with its matching standard deviation, and whether the
    ghost is due to be drawn or cleared.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._mean: Trajectory | None = None
        self._std: Trajectory | None = None
        self._received = 0.0
        self._drawn = True  # nothing new to draw
        self._cleared = True  # nothing shown

    def offer_mean(self, trajectory: Trajectory, now: float) -> None:
        self._mean, self._received, self._drawn = trajectory, now, False

    def offer_std(self, trajectory: Trajectory) -> None:
        self._std = trajectory
        self._drawn = False

    def age(self, now: float) -> float | None:
        """Seconds since the last mean trajectory arrived (None before the first)."""
        return None if self._mean is None else now - self._received

    def poll(self, now: float) -> tuple[str | None, Trajectory | None, Trajectory | None]:
        """(DRAW, mean, std or None) when a trajectory arrived since the last draw, (CLEAR, …)
        once it has gone ``timeout`` s without one (either clock direction: a looped bag's time
        jumps back), else (None, …).
        """
        mean, age = self._mean, self.age(now)
        if mean is None or age is None:
            return None, None, None
        if abs(age) > self._timeout:
            if self._cleared:
                return None, None, None
            self._cleared = True
            return CLEAR, None, None
        if self._drawn:
            return None, None, None
        self._drawn, self._cleared = True, False
        std = self._std if self._std is not None and self._std.stamp == mean.stamp else None
        return DRAW, mean, std


@dataclass(frozen=True)
class TaskInfo:
    """One maintenance task of twin/maintenance_schedule (RUL values in s)."""

    component: str
    action: str
    risk: Risk
    rul: float
    rul_low: float
    rul_high: float


@dataclass(frozen=True)
class Label:
    """A text shown at ``position`` (base_link)."""

    position: np.ndarray
    text: str
    colour: RGBA


def human_duration(seconds: float) -> str:
    """'40 min', '2.5 h' or '3.0 d'."""
    seconds = max(seconds, 0.0)
    if seconds < 3600.0:
        return f'{seconds / 60.0:.0f} min'
    if seconds < 48 * 3600.0:
        return f'{seconds / 3600.0:.1f} h'
    return f'{seconds / 86400.0:.1f} d'


def task_line(task: TaskInfo, name: str) -> str:
    """'joint_2 gearbox HIGH · RUL 2.0 h (10–90 %: 40 min–5.0 h)' or the action for tasks with
    no RUL estimate (motors, sensors).
    """
    if task.rul_high > 0.0:
        return (f'{name} {task.risk} · RUL {human_duration(task.rul)} (10–90 %: '
                f'{human_duration(task.rul_low)}–{human_duration(task.rul_high)})')
    return f'{name} {task.risk} · {task.action}'


def maintenance_labels(kinematics: ArmKinematics, frames: Mapping[str, np.ndarray],
                  tasks: Sequence[TaskInfo], offset: Sequence[float]) -> list[Label]:
    """One label per joint (at the joint, shifted by ``offset``) with its gearbox and motor tasks,
    coloured by the worst risk; tasks of other components (sensors) in one label at the base.
    """
    by_joint = {joint.name: joint.child for joint in kinematics.joints
                if joint.name in kinematics.joint_names}
    shift = np.asarray(offset, float)
    labels, others = [], []
    for name, child in by_joint.items():
        own = [t for t in tasks if t.component in (name, f'{name}_motor')]
        lines = [task_line(t, name if t.component == name else f'{name} motor') for t in own]
        risk = max((t.risk for t in own), default=Risk.LOW)
        labels.append(Label(frames[child][:3, 3] + shift, '\n'.join(lines) or f'{name} {Risk.LOW} risk',
                            RISK_COLOURS[risk]))
    for task in tasks:
        if not any(task.component in (name, f'{name}_motor') for name in by_joint):
            others.append(task)
    if others:
        risk = max(t.risk for t in others)
        labels.append(Label(frames[BASE_FRAME][:3, 3] + shift,
                            '\n'.join(task_line(t, t.component) for t in others), RISK_COLOURS[risk]))
    return labels
