"""The twin's signals: one name, unit and interpolation kind per value, and their column layouts.

A signal is named by what it measures, not by the topic that carried it: ``joint_2.position``,
``joint_2.temperature``, ``imu.linear_acceleration.x``, ``end_effector.orientation`` (a
quaternion: columns ``.x .y .z .w``, the ROS order), ``task_id``. These names are the history's
columns and GetHistory paths, the OPC UA history paths and the analytics channels. A
synchronized frame's inputs carry value names relative to their message (``SensorSample.names``:
``linear_acceleration.x``, ``temperature``); :func:`input_prefix` completes them.
"""
from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

AXES = ('x', 'y', 'z')
QUATERNION_AXES = ('x', 'y', 'z', 'w')
IMU_TYPE = 'sensor_msgs/msg/Imu'
JOINT_STATE_TYPE = 'sensor_msgs/msg/JointState'
TEMPERATURE_TYPE = 'sensor_msgs/msg/Temperature'
CELL_STATUS_TYPE = 'twin_interfaces/msg/CellStatus'
LASER_SCAN_TYPE = 'sensor_msgs/msg/LaserScan'
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


class Kind(enum.Enum):
    """How a signal is interpolated between two samples."""

    LINEAR = 'linear'
    QUATERNION = 'quaternion'  # 4 columns x, y, z, w; SLERP
    HOLD = 'hold'  # discrete: the earlier sample's value


@dataclass(frozen=True)
class Signal:
    """A named value with its unit; a quaternion signal spans 4 columns. An ``optional`` signal
    may be NaN (not known: no plan for the desired joint states).
    """

    name: str
    unit: str = ''
    kind: Kind = Kind.LINEAR
    optional: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind is Kind.QUATERNION:
            return tuple(f'{self.name}.{axis}' for axis in QUATERNION_AXES)
        return (self.name,)


@dataclass(frozen=True)
class Layout:
    """Column order of a vector of signals; ``prefix`` is what the columns share as one input's.

    Paths name a column or a whole (quaternion) signal. ``names`` are the columns without the
    prefix (the value names of the input's ``SensorSample``).
    """

    signals: tuple[Signal, ...] = ()
    prefix: str = ''

    @cached_property
    def columns(self) -> tuple[str, ...]:
        columns = tuple(column for signal in self.signals for column in signal.columns)
        if len(set(columns)) != len(columns):
            raise ValueError('duplicate signal names in a layout')
        return columns

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(column[len(self.prefix):] for column in self.columns)

    @cached_property
    def index(self) -> dict[str, int]:
        return {column: i for i, column in enumerate(self.columns)}

    @cached_property
    def by_name(self) -> dict[str, Signal]:
        return {signal.name: signal for signal in self.signals}

    @cached_property
    def held(self) -> np.ndarray:
        return np.flatnonzero([signal.kind is Kind.HOLD for signal in self.signals
                               for _ in signal.columns])

    @cached_property
    def required(self) -> np.ndarray:
        """The columns that must be finite (those of signals not ``optional``)."""
        return np.flatnonzero([not signal.optional for signal in self.signals for _ in signal.columns])

    @cached_property
    def quaternions(self) -> tuple[int, ...]:
        """The first column of every quaternion signal."""
        return tuple(self.index[signal.columns[0]] for signal in self.signals
                     if signal.kind is Kind.QUATERNION)

    def __len__(self) -> int:
        return len(self.columns)

    def columns_of(self, paths: Iterable[str]) -> list[int]:
        """Column indices of ``paths`` (column names, or signal names for quaternions)."""
        out: list[int] = []
        for path in paths:
            if path in self.index:
                out.append(self.index[path])
            elif path in self.by_name:
                out.extend(self.index[column] for column in self.by_name[path].columns)
            else:
                raise KeyError(f'unknown signal {path!r}')
        return out

    def interpolate(self, v0: np.ndarray, v1: np.ndarray, fraction: float) -> np.ndarray:
        """Values at ``fraction`` (0..1) from ``v0`` to ``v1``: linear, SLERP on quaternions,
        ``v0`` on held columns. Values beyond the columns (a fixed array such as laser ranges)
        are linear.
        """
        out = v0 + (v1 - v0) * fraction
        if len(self.held):
            out[self.held] = v0[self.held]
        for first in self.quaternions:
            out[first:first + 4] = slerp(v0[first:first + 4], v1[first:first + 4], fraction)
        return out


def slerp(q0: Sequence[float] | np.ndarray, q1: Sequence[float] | np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (x, y, z, w) along the shorter arc."""
    (x0, y0, z0, w0), (x1, y1, z1, w1) = map(float, q0), map(float, q1)
    dot = x0 * x1 + y0 * y1 + z0 * z1 + w0 * w1
    sign = -1.0 if dot < 0.0 else 1.0
    dot = min(dot * sign, 1.0)
    if dot > 0.9995:  # nearly parallel: normalized lerp, exact to rounding
        a, b = 1.0 - fraction, sign * fraction
    else:
        angle = math.acos(dot)
        sin = math.sin(angle)
        a, b = math.sin((1.0 - fraction) * angle) / sin, sign * math.sin(fraction * angle) / sin
    x, y, z, w = a * x0 + b * x1, a * y0 + b * y1, a * z0 + b * z1, a * w0 + b * w1
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    return np.array([x / norm, y / norm, z / norm, w / norm])


# --- the twin's signals ------------------------------------------------------------------------

JOINT_UNITS = {'position': 'rad', 'velocity': 'rad/s', 'acceleration': 'rad/s^2', 'effort': 'N*m',
               'temperature': 'degC'}
IMU_PREFIX = 'imu.'
IMU_ACCELERATION = tuple(f'{IMU_PREFIX}linear_acceleration.{axis}' for axis in AXES)
IMU_ANGULAR_VELOCITY = tuple(f'{IMU_PREFIX}angular_velocity.{axis}' for axis in AXES)
IMU = (*(Signal(name, 'm/s^2') for name in IMU_ACCELERATION),
       *(Signal(name, 'rad/s') for name in IMU_ANGULAR_VELOCITY))
IMU_ORIENTATION = Signal(f'{IMU_PREFIX}orientation', kind=Kind.QUATERNION)
END_EFFECTOR_POSITION = tuple(f'end_effector.position.{axis}' for axis in AXES)
END_EFFECTOR_ORIENTATION = 'end_effector.orientation'
END_EFFECTOR = (*(Signal(name, 'm') for name in END_EFFECTOR_POSITION),
                Signal(END_EFFECTOR_ORIENTATION, kind=Kind.QUATERNION))
# The plan's view of each joint, NaN without a plan: the controller's desired position and
# velocity and the tracking error (measured − desired position) at the state's stamp.
PLAN_UNITS = {'desired_position': 'rad', 'desired_velocity': 'rad/s', 'tracking_error': 'rad'}
TASK_ID, TASK_PROGRESS, SPEED_OVERRIDE, STOPPED = 'task_id', 'task_progress', 'speed_override', 'stopped'
PROCESS = (Signal(TASK_ID, kind=Kind.HOLD), Signal(TASK_PROGRESS, '1'),
           Signal(SPEED_OVERRIDE, '1', Kind.HOLD), Signal(STOPPED, kind=Kind.HOLD))


def joint_signal(joint: str, quantity: str) -> Signal:
    """``<joint>.<quantity>``, a quantity of :data:`JOINT_UNITS`."""
    return Signal(f'{joint}.{quantity}', JOINT_UNITS[quantity])


def joint_signals(joints: Sequence[str], quantity: str) -> tuple[str, ...]:
    """The names of ``quantity`` of every joint, in joint order."""
    return tuple(f'{joint}.{quantity}' for joint in joints)


def state_layout(joints: Sequence[str]) -> Layout:
    """The twin state's layout (the history's columns) for an arm with ``joints``."""
    return Layout((*(joint_signal(joint, quantity) for quantity in JOINT_UNITS for joint in joints),
                   *IMU, *END_EFFECTOR, *PROCESS,
                   *(Signal(f'{joint}.{quantity}', unit, optional=True)
                     for quantity, unit in PLAN_UNITS.items() for joint in joints)))


def range_min(topic: str) -> Signal:
    """The smallest finite range of a laser scan on ``topic`` (``scan.min``), an analytics signal."""
    return Signal('.'.join([*topic.strip('/').split('/'), 'min']), 'm')


def input_prefix(type_name: str, topic: str) -> str:
    """What makes the value names of a frame input of ``type_name`` on ``topic`` signal names.

    IMU values are ``imu.<name>``; a Temperature on ``…/<joint>/temperature`` is
    ``<joint>.temperature``; joint states and cell status already carry signal names.
    """
    if type_name == IMU_TYPE:
        return IMU_PREFIX
    if type_name == TEMPERATURE_TYPE:
        segments = topic.strip('/').split('/')
        return f'{segments[-2]}.' if len(segments) > 1 else ''
    return ''


def input_type(name: str) -> str | None:
    """The message type of the frame input that delivers signal ``name`` (the inverse of
    :func:`input_prefix`); None for signals the twin derives (acceleration, end effector).
    """
    quantity = name.rpartition('.')[2]
    if name.startswith(IMU_PREFIX):
        return IMU_TYPE
    if name in (TASK_ID, TASK_PROGRESS, SPEED_OVERRIDE, STOPPED):
        return CELL_STATUS_TYPE
    if quantity == 'min':
        return LASER_SCAN_TYPE
    if quantity == 'temperature':
        return TEMPERATURE_TYPE
    return JOINT_STATE_TYPE if quantity in ('position', 'velocity', 'effort') and '.' in name else None


_LEGACY = re.compile(r'^(?:(?P<imu>imu\.data\.)|encoders\.joint_states\.|cell\.status\.'
                     r'|motors\.(?P<joint>[^.]+)\.(?=temperature$))')


def canonical(name: str) -> str:
    """A signal name from its older, topic-based analytics form (``imu.data.…``,
    ``encoders.joint_states.…``, ``motors.<joint>.temperature``, ``cell.status.…``) as stored
    by earlier models and configurations; other names are returned as they are.
    """
    match = _LEGACY.match(name)
    if not match:
        return name
    prefix = 'imu.' if match['imu'] else f'{match["joint"]}.' if match['joint'] else ''
    return prefix + name[match.end():]
