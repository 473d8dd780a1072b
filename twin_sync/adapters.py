"""Input messages as named numeric vectors, registered by ROS type string."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import Imu, JointState, LaserScan, Temperature

from twin_core.stamps import from_msg
from twin_interfaces.msg import CellStatus
from twin_sync.frame import Layout, Sample

_AXES = ('x', 'y', 'z')
IMU = Layout(tuple(f'{v}.{a}' for v in ('angular_velocity', 'linear_acceleration') for a in _AXES))
IMU_ORIENTED = Layout(IMU.names + tuple(f'orientation.{a}' for a in (*_AXES, 'w')),
                      quaternions=(len(IMU.names),))
TEMPERATURE = Layout(('temperature',))
CELL_STATUS = Layout(('task_id', 'task_progress', 'speed_override', 'stopped'))
RANGES = Layout()


@dataclass(frozen=True)
class Adapter:
    """How one message type becomes a :class:`Sample`; ``interpolable`` allows INTERPOLATE."""

    message_class: type
    convert: Callable[[Any], Sample]
    interpolable: bool


def _imu(message: Imu) -> Sample:
    w, a = message.angular_velocity, message.linear_acceleration
    values = [w.x, w.y, w.z, a.x, a.y, a.z]
    if message.orientation_covariance[0] == -1.0:
        return Sample(from_msg(message.header.stamp), IMU, np.array(values))
    q = message.orientation
    return Sample(from_msg(message.header.stamp), IMU_ORIENTED, np.array(values + [q.x, q.y, q.z, q.w]))


@functools.lru_cache(maxsize=64)
def joint_layout(names: tuple[str, ...], fields: tuple[str, ...]) -> Layout:
    """``<joint>.<field>`` for every joint and filled field, joint-major."""
    return Layout(tuple(f'{name}.{f}' for name in names for f in fields))


def _joint_state(message: JointState) -> Sample:
    """Fields (position, velocity, effort) count only when they have one value per joint."""
    names = tuple(message.name)
    filled = [(f, column) for f in ('position', 'velocity', 'effort')
              if len(column := getattr(message, f)) == len(names) and names]
    layout = joint_layout(names, tuple(f for f, _ in filled))
    values = np.column_stack([np.asarray(c, dtype=float) for _, c in filled]).ravel() \
        if filled else np.empty(0)
    return Sample(from_msg(message.header.stamp), layout, values)


def _laser_scan(message: LaserScan) -> Sample:
    return Sample(from_msg(message.header.stamp), RANGES, np.asarray(message.ranges, dtype=float))


def _temperature(message: Temperature) -> Sample:
    return Sample(from_msg(message.header.stamp), TEMPERATURE, np.array([message.temperature]))


def _cell_status(message: CellStatus) -> Sample:
    return Sample(from_msg(message.header.stamp), CELL_STATUS, np.array([
        float(message.task_id), message.task_progress, message.speed_override,
        float(message.stopped)]))


ADAPTERS: dict[str, Adapter] = {
    'sensor_msgs/msg/Imu': Adapter(Imu, _imu, interpolable=True),
    'sensor_msgs/msg/JointState': Adapter(JointState, _joint_state, interpolable=True),
    'sensor_msgs/msg/LaserScan': Adapter(LaserScan, _laser_scan, interpolable=False),
    'sensor_msgs/msg/Temperature': Adapter(Temperature, _temperature, interpolable=True),
    'twin_interfaces/msg/CellStatus': Adapter(CellStatus, _cell_status, interpolable=False),
}
