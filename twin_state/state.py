"""The twin's state: robot, environment and process, built from a synchronized frame.

:class:`TwinStateBuilder` turns one frame's named input samples into a :class:`TwinState` and
into the flat vector recorded by :class:`~twin_state.history.History` (``layout`` maps column
names to positions). Inputs are dispatched by message type:

- ``sensor_msgs/msg/JointState``: ``<joint>.position``, ``.velocity``, ``.effort``
- ``sensor_msgs/msg/Imu``: ``angular_velocity.x`` … and ``linear_acceleration.x`` …
- ``sensor_msgs/msg/Temperature`` on ``motors/<joint>/temperature``: ``temperature``
- ``twin_interfaces/msg/CellStatus``: ``task_id``, ``task_progress``, ``speed_override``,
  ``stopped``
- ``sensor_msgs/msg/LaserScan``: the ranges (no names)

A value an input has not delivered in this frame keeps its last delivered value; a value never
delivered is NaN, which the history rejects (the state is incomplete).
"""
from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin_core.kinematics import END_EFFECTOR, ArmKinematics, Pose
from twin_core.levels import Quality
from twin_core.urdf import ArmDescription
from twin_state.history import Field, Kind, Layout, polyfit_at
from twin_state.obstacles import Obstacle, ScanGeometry, extract_obstacles

JOINT_STATE = 'sensor_msgs/msg/JointState'
IMU = 'sensor_msgs/msg/Imu'
TEMPERATURE = 'sensor_msgs/msg/Temperature'
CELL_STATUS = 'twin_interfaces/msg/CellStatus'
LASER_SCAN = 'sensor_msgs/msg/LaserScan'
LASER_FRAME = 'laser'
JOINT_FIELDS = ('position', 'velocity', 'acceleration', 'effort', 'temperature')
IMU_FIELDS = tuple(f'imu.{quantity}.{axis}'
                   for quantity in ('linear_acceleration', 'angular_velocity') for axis in 'xyz')
PROCESS_FIELDS = (Field('task_id', Kind.HOLD), Field('task_progress'),
                  Field('speed_override', Kind.HOLD), Field('stopped', Kind.HOLD))
EE_POSITION = tuple(f'end_effector.position.{axis}' for axis in 'xyz')
EE_ORIENTATION = 'end_effector.orientation'


@dataclass(frozen=True)
class InputSample:
    """One input's contribution to a frame (mirrors twin_interfaces/SensorSample)."""

    topic: str
    type: str
    age: float  # s from the source sample to the frame stamp
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


def state_layout(joint_names: Sequence[str]) -> Layout:
    """The history's field layout for an arm with ``joint_names``."""
    joint_fields = [Field(f'{joint}.{name}') for name in JOINT_FIELDS for joint in joint_names]
    return Layout(joint_fields + [Field(name) for name in IMU_FIELDS + EE_POSITION]
                  + [Field(EE_ORIENTATION, Kind.QUATERNION), *PROCESS_FIELDS])


class TwinStateBuilder:
    """Builds states from frames, holding the latest value of every input between frames."""

    def __init__(self, arm: ArmDescription, kinematics: ArmKinematics, scan: ScanGeometry,
                 end_effector: str = END_EFFECTOR, derivative_points: int = 15,
                 cluster_gap: float = 0.1, cluster_min_points: int = 3) -> None:
        self.arm = arm
        self.kinematics = kinematics
        self.layout = state_layout(arm.joint_names)
        self._scan = scan
        self.end_effector = end_effector
        self._cluster = (cluster_gap, cluster_min_points)
        self._laser = kinematics.transforms({})[LASER_FRAME]
        self._values = np.full(len(self.layout), np.nan)
        self._obstacles: tuple[Obstacle, ...] = ()
        self._recent = collections.deque(maxlen=derivative_points)  # (stamp, positions, velocities)

    def build(self, stamp: float, samples: Sequence[InputSample]) -> TwinState:
        """The state at ``stamp`` after taking in one frame's samples."""
        measured_velocity = False
        for sample in samples:
            if len(sample.values):
                measured_velocity |= self._take(sample)
        self._derive(stamp, measured_velocity)
        inputs = tuple(InputStatus(s.topic, s.quality, s.age) for s in samples)
        return self.state_from_row(stamp, self._values.copy(), inputs)

    def row(self, state: TwinState) -> np.ndarray:
        """The history vector of ``state``."""
        robot, process = state.robot, state.process
        return np.concatenate((robot.position, robot.velocity, robot.acceleration, robot.effort,
                               robot.motor_temperature, robot.imu_linear_acceleration,
                               robot.imu_angular_velocity, robot.end_effector_pose.position,
                               robot.end_effector_pose.orientation,
                               [process.task_id, process.progress, process.speed_override,
                                float(process.stopped)]))

    def state_from_row(self, stamp: float, row: np.ndarray,
                       inputs: tuple[InputStatus, ...] = ()) -> TwinState:
        """A state from a history vector (obstacles: the latest scan's)."""
        joints = len(self.arm.joint_names)
        per_joint = row[:joints * len(JOINT_FIELDS)].reshape(len(JOINT_FIELDS), joints)
        rest = row[joints * len(JOINT_FIELDS):]
        position, velocity, acceleration, effort, temperature = per_joint
        robot = RobotState(
            joint_names=self.arm.joint_names, position=position, velocity=velocity,
            acceleration=acceleration, effort=effort, load=np.abs(effort) / self.arm.effort,
            motor_temperature=temperature, imu_linear_acceleration=rest[0:3],
            imu_angular_velocity=rest[3:6], base_pose=self.kinematics.base_in_world,
            end_effector_pose=Pose(rest[6:9], rest[9:13]))
        task_id, progress, speed_override, stopped = rest[13:17]
        process = ProcessState(int(task_id) if np.isfinite(task_id) else -1, bool(stopped == 1.0),
                               float(progress), float(speed_override), inputs)
        return TwinState(stamp, robot, EnvironmentState(self._obstacles), process)

    def _take(self, sample: InputSample) -> bool:
        """Store a sample's values; True when it carried joint velocities."""
        if sample.type == LASER_SCAN:
            self._obstacles = extract_obstacles(sample.values, self._scan, self._laser,
                                                *self._cluster)
            return False
        if sample.type == IMU:
            names = [f'imu.{name}' for name in sample.names]
        elif sample.type == TEMPERATURE:
            joint = sample.topic.strip('/').split('/')[-2]
            names = [f'{joint}.{name}' for name in sample.names]
        else:
            names = list(sample.names)
        velocity = False
        for name, value in zip(names, sample.values):
            column = self.layout.index.get(name)
            if column is not None:
                self._values[column] = value
                velocity |= sample.type == JOINT_STATE and name.endswith('.velocity')
        return velocity

    def _derive(self, stamp: float, measured_velocity: bool) -> None:
        """Velocity (when not measured) and acceleration by a causal local polynomial fit; FK."""
        index, joints = self.layout.index, self.arm.joint_names
        position_columns = [index[f'{joint}.position'] for joint in joints]
        velocity_columns = [index[f'{joint}.velocity'] for joint in joints]
        positions = self._values[position_columns]
        if not np.isfinite(positions).all():
            return
        if self._recent and stamp <= self._recent[-1][0]:
            self._recent.clear()  # time went backwards: the filter restarts
        self._recent.append((stamp, positions, self._values[velocity_columns]))
        times = np.array([entry[0] for entry in self._recent])
        if not measured_velocity:
            self._values[velocity_columns] = self._slope(times, [e[1] for e in self._recent])
        self._recent[-1] = (stamp, positions, self._values[velocity_columns])
        self._values[[index[f'{joint}.acceleration'] for joint in joints]] = self._slope(
            times, [e[2] for e in self._recent])
        pose = self.kinematics.end_effector(dict(zip(joints, positions)), self.end_effector)
        self._values[[index[name] for name in EE_POSITION]] = pose.position
        self._values[self.layout.columns_of([EE_ORIENTATION])] = pose.orientation

    @staticmethod
    def _slope(times: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
        if len(times) < 2:
            return np.zeros(len(rows[0]))
        coefficients, _, _ = polyfit_at(times, np.array(rows), times[-1], min(2, len(times) - 1))
        return coefficients[1]
