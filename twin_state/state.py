"""The twin's state: robot, environment and process, built from a synchronized frame.

:class:`TwinStateBuilder` writes one frame's input values straight into the state row, the
vector :class:`~twin_state.history.History` records, laid out by
:func:`twin_core.signals.state_layout` (an input's value names become signal names through
:func:`~twin_core.signals.input_prefix`; values the layout has no signal for are ignored). It
derives velocity, acceleration and the end-effector pose there and reads a :class:`TwinState`
from any row for output. Laser scans (ranges, no names) give the obstacles.

A value an input has not delivered in this frame keeps its last delivered value; a value never
delivered is NaN, which the history rejects (the state is incomplete). The controller's desired
joint states (:meth:`TwinStateBuilder.desired`) are read at each frame's stamp: the desired
position and velocity and the tracking error (measured − desired position) of every joint, NaN
in the row and empty in the state while no plan is known or its stream is stale.
"""
from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from twin_core import signals
from twin_core.kinematics import END_EFFECTOR, ArmKinematics, Pose
from twin_core.levels import Quality
from twin_core.stamps import from_seconds
from twin_core.tracking import DesiredStates, deviation
from twin_core.urdf import ArmDescription
from twin_state.history import slope_weights
from twin_state.obstacles import Obstacle, ScanGeometry, extract_obstacles

LASER_FRAME = 'laser'
MAX_INPUT_LAYOUTS = 256  # (topic, type, names) column maps kept


class InputSample(Protocol):
    """One input's contribution to a frame: a ``twin_interfaces/SensorSample`` or alike."""

    topic: str
    type: str
    age: float  # s from the source sample to the frame stamp
    quality: Quality
    names: Sequence[str]  # empty for array inputs (laser ranges)
    values: Sequence[float]


@dataclass(frozen=True)
class FrameInput:
    """An :class:`InputSample` as plain data (frames built offline: benchmarks, tests)."""

    topic: str
    type: str
    age: float
    quality: Quality
    names: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True)
class InputStatus:
    """Freshness of one input at the frame time."""

    topic: str
    quality: Quality
    age: float


@dataclass(frozen=True)
class RobotState:
    """Joint arrays are ordered like ``joint_names``; poses are in base_link (base: in world)."""

    joint_names: tuple[str, ...]
    position: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    acceleration: np.ndarray  # rad/s², filtered
    effort: np.ndarray  # N·m
    load: np.ndarray  # |effort| / URDF effort limit
    motor_temperature: np.ndarray  # °C
    desired_position: np.ndarray  # rad, the controller's; empty without a plan
    desired_velocity: np.ndarray  # rad/s, the controller's; empty without a plan (or velocities)
    tracking_error: np.ndarray  # rad, position − desired_position; empty without a plan
    imu_linear_acceleration: np.ndarray  # m/s², imu_link frame
    imu_angular_velocity: np.ndarray  # rad/s, imu_link frame
    base_pose: Pose
    end_effector_pose: Pose


@dataclass(frozen=True)
class EnvironmentState:
    obstacles: tuple[Obstacle, ...]  # from the latest scan, in base_link


@dataclass(frozen=True)
class ProcessState:
    task_id: int
    stopped: bool
    progress: float  # 0..1 within the cycle
    speed_override: float  # 0..1
    inputs: tuple[InputStatus, ...]  # quality metrics: freshness of every input

    @property
    def status(self) -> str:
        return 'stopped' if self.stopped else 'running'


@dataclass(frozen=True)
class TwinState:
    stamp: float  # s
    robot: RobotState
    environment: EnvironmentState
    process: ProcessState


def known(values: np.ndarray) -> np.ndarray:
    """``values`` if all are known (finite), else empty."""
    return values if np.isfinite(values).all() else np.zeros(0)


class TwinStateBuilder:
    """Builds states from frames, holding the latest value of every input between frames."""

    def __init__(self, arm: ArmDescription, kinematics: ArmKinematics, scan: ScanGeometry,
                 end_effector: str = END_EFFECTOR, derivative_points: int = 15,
                 cluster_gap: float = 0.1, cluster_min_points: int = 3, plan_max_age: float = 0.05) -> None:
        self.arm = arm
        self.desired_states = DesiredStates(plan_max_age)
        self.kinematics = kinematics
        self.layout = layout = signals.state_layout(arm.joint_names)
        self._scan = scan
        self.end_effector = end_effector
        self._cluster = (cluster_gap, cluster_min_points)
        self._laser = kinematics.transforms({})[LASER_FRAME]
        self._row = np.full(len(layout), np.nan)
        self._obstacles: tuple[Obstacle, ...] = ()
        self._ranges: np.ndarray | None = None  # of the scan the obstacles are from
        self._recent: collections.deque[tuple[float, np.ndarray, np.ndarray]] = collections.deque(
            maxlen=derivative_points)  # (stamp, positions, velocities)
        self._inputs: dict[tuple[str, str, tuple[str, ...]], tuple[np.ndarray, np.ndarray, bool]] = {}

        def columns(names: Sequence[str]) -> np.ndarray:
            return np.array(layout.columns_of(names))
        self._position, self._velocity, self._acceleration, self._effort, self._temperature = (
            columns(signals.joint_signals(arm.joint_names, quantity))
            for quantity in ('position', 'velocity', 'acceleration', 'effort', 'temperature'))
        self._desired_position, self._desired_velocity, self._tracking_error = (
            columns(signals.joint_signals(arm.joint_names, quantity)) for quantity in signals.PLAN_UNITS)
        self.plan_columns = np.concatenate([self._desired_position, self._desired_velocity, self._tracking_error])
        self._imu = columns(signals.IMU_ACCELERATION), columns(signals.IMU_ANGULAR_VELOCITY)
        self._ee_position = columns(signals.END_EFFECTOR_POSITION)
        self._ee_orientation = columns([signals.END_EFFECTOR_ORIENTATION])[[3, 0, 1, 2]]  # Pose: w, x, y, z
        self._process = columns((signals.TASK_ID, signals.TASK_PROGRESS, signals.SPEED_OVERRIDE,
                                 signals.STOPPED))

    def take(self, stamp: float, samples: Sequence[InputSample]
             ) -> tuple[np.ndarray, tuple[InputStatus, ...]]:
        """The state row at ``stamp`` after taking in one frame's samples (the builder's own
        array, valid until the next frame) and the inputs' freshness.
        """
        measured_velocity = False
        for sample in samples:
            if not len(sample.values):
                continue
            if sample.type == signals.LASER_SCAN_TYPE:
                self._take_scan(np.asarray(sample.values, float))
                continue
            picked, columns, velocity = self._columns(sample)
            self._row[columns] = np.asarray(sample.values, float)[picked]
            measured_velocity |= velocity
        self._derive(stamp, measured_velocity)
        self._track(stamp)
        return self._row, tuple(InputStatus(s.topic, Quality(s.quality), s.age) for s in samples)

    def _take_scan(self, ranges: np.ndarray) -> None:
        """Obstacles from a scan; a scan held over frames (20 Hz into 100 Hz) is clustered once."""
        if self._ranges is not None and np.array_equal(ranges, self._ranges, equal_nan=True):
            return
        self._ranges = ranges
        self._obstacles = extract_obstacles(ranges, self._scan, self._laser, *self._cluster)

    def state_from_row(self, stamp: float, row: np.ndarray,
                       inputs: tuple[InputStatus, ...] = ()) -> TwinState:
        """A state from a state row (obstacles: the latest scan's)."""
        effort = row[self._effort]
        robot = RobotState(
            joint_names=self.arm.joint_names, position=row[self._position],
            velocity=row[self._velocity], acceleration=row[self._acceleration], effort=effort,
            load=np.abs(effort) / self.arm.effort, motor_temperature=row[self._temperature],
            desired_position=known(row[self._desired_position]),
            desired_velocity=known(row[self._desired_velocity]), tracking_error=known(row[self._tracking_error]),
            imu_linear_acceleration=row[self._imu[0]], imu_angular_velocity=row[self._imu[1]],
            base_pose=self.kinematics.base_in_world,
            end_effector_pose=Pose(row[self._ee_position], row[self._ee_orientation]))
        task_id, progress, speed_override, stopped = row[self._process]
        process = ProcessState(int(task_id) if np.isfinite(task_id) else -1, bool(stopped == 1.0),
                               float(progress), float(speed_override), inputs)
        return TwinState(stamp, robot, EnvironmentState(self._obstacles), process)

    def _columns(self, sample: InputSample) -> tuple[np.ndarray, np.ndarray, bool]:
        """Which of an input's values go to which row columns; whether joint velocities are among them."""
        key = (sample.topic, sample.type, tuple(sample.names))
        found = self._inputs.get(key)
        if found is None:
            prefix, index = signals.input_prefix(sample.type, sample.topic), self.layout.index
            picked = np.array([i for i, name in enumerate(sample.names) if prefix + name in index], int)
            columns = np.array([index[prefix + sample.names[i]] for i in picked], int)
            if len(self._inputs) >= MAX_INPUT_LAYOUTS:
                self._inputs.clear()
            found = self._inputs[key] = (picked, columns, bool(np.isin(columns, self._velocity).any()))
        return found

    def desired(self, stamp: int, position: np.ndarray, velocity: np.ndarray) -> None:
        """One desired joint state (ns; joint arrays in the arm's order, velocity may be empty)."""
        self.desired_states.add(stamp, position, velocity)

    def _track(self, stamp: float) -> None:
        """Desired position, velocity and tracking error at ``stamp`` (NaN when unknown)."""
        row = self._row
        desired = self.desired_states.at(from_seconds(stamp))
        if desired is None:
            row[self.plan_columns] = np.nan
            return
        row[self._desired_position], row[self._desired_velocity] = desired.position, desired.velocity
        row[self._tracking_error] = deviation(row[self._position], desired)

    def _derive(self, stamp: float, measured_velocity: bool) -> None:
        """Velocity (when not measured) and acceleration by a causal local polynomial fit; FK."""
        row = self._row
        positions = row[self._position]
        if not np.isfinite(positions).all():
            return
        if self._recent and stamp <= self._recent[-1][0]:
            self._recent.clear()  # time went backwards: the filter restarts
        self._recent.append((stamp, positions, row[self._velocity]))
        weights = slope_weights(np.array([entry[0] for entry in self._recent]))  # one set for both derivatives
        if not measured_velocity:
            row[self._velocity] = weights @ np.array([e[1] for e in self._recent])
        self._recent[-1] = (stamp, positions, row[self._velocity])
        row[self._acceleration] = weights @ np.array([e[2] for e in self._recent])
        pose = self.kinematics.end_effector(dict(zip(self.arm.joint_names, positions)),
                                            self.end_effector)
        row[self._ee_position] = pose.position
        row[self._ee_orientation] = pose.orientation
