"""Input messages as signal vectors (:mod:`twin_core.signals`), registered by ROS type string.

The kilohertz types (Imu, JointState) are read from their serialized form (:mod:`twin_core.cdr`,
a ``raw`` subscription): half the receiving cost of an rclpy message. Images are never decoded:
a frame holds an image input's stamp (which image is current, how old) and no values.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CompressedImage, Image, Imu, JointState, LaserScan, Temperature

from twin_core import cdr, signals
from twin_core.signals import Layout, Signal
from twin_core.stamps import from_msg
from twin_interfaces.msg import CellStatus
from twin_sync.frame import Sample

IMU_LAYOUT = Layout(signals.IMU, signals.IMU_PREFIX)
IMU_ORIENTED = Layout((*signals.IMU, signals.IMU_ORIENTATION), signals.IMU_PREFIX)
CELL_STATUS = Layout(signals.PROCESS)
RANGES = Layout()
NO_VALUES = np.empty(0)


@dataclass(frozen=True)
class Adapter:
    """How one message type on a topic becomes a :class:`Sample`; ``interpolable`` allows
    INTERPOLATE; ``raw``: ``convert`` takes the serialized message (plain CDR), not an rclpy one.
    """

    message_class: type
    convert: Callable[[Any, str], Sample]
    interpolable: bool
    raw: bool = False


def _imu(data: bytes, _topic: str) -> Sample:
    imu = cdr.decode_imu(data)
    values = imu.values
    if values[cdr.IMU_ORIENTATION_COVARIANCE.start] == -1.0:  # no orientation estimate
        return Sample(imu.stamp_ns, IMU_LAYOUT, np.concatenate(
            (values[cdr.IMU_LINEAR_ACCELERATION], values[cdr.IMU_ANGULAR_VELOCITY])))
    return Sample(imu.stamp_ns, IMU_ORIENTED, np.concatenate(
        (values[cdr.IMU_LINEAR_ACCELERATION], values[cdr.IMU_ANGULAR_VELOCITY], values[cdr.IMU_ORIENTATION])))


@functools.lru_cache(maxsize=64)
def joint_layout(names: tuple[str, ...], fields: tuple[str, ...]) -> Layout:
    """``<joint>.<field>`` for every joint and filled field, joint-major."""
    return Layout(tuple(signals.joint_signal(name, f) for name in names for f in fields))


@functools.lru_cache(maxsize=64)
def temperature_layout(topic: str) -> Layout:
    """The one signal of a Temperature on ``topic`` (``<joint>.temperature``)."""
    prefix = signals.input_prefix(signals.TEMPERATURE_TYPE, topic)
    return Layout((Signal(f'{prefix}temperature', signals.JOINT_UNITS['temperature']),), prefix)


def _joint_state(data: bytes, _topic: str) -> Sample:
    """Fields (position, velocity, effort) count only when they have one value per joint."""
    message = cdr.decode_joint_state(data)
    names = message.name
    count = len(names)
    filled = [(f, column) for f, column in (('position', message.position),
                                            ('velocity', message.velocity),
                                            ('effort', message.effort))
              if len(column) == count and count]
    layout = joint_layout(names, tuple(f for f, _ in filled))
    values = np.empty(count * len(filled))
    for offset, (_, column) in enumerate(filled):  # joint-major: every len(filled)-th value
        values[offset::len(filled)] = column
    return Sample(message.stamp_ns, layout, values)


def _laser_scan(message: LaserScan, _topic: str) -> Sample:
    return Sample(from_msg(message.header.stamp), RANGES, np.asarray(message.ranges, dtype=float))


def _temperature(message: Temperature, topic: str) -> Sample:
    return Sample(from_msg(message.header.stamp), temperature_layout(topic), np.array([message.temperature]))


def _image(data: bytes, _topic: str) -> Sample:
    """An image as its stamp alone: the pixels stay in the message (read from its header only)."""
    return Sample(cdr.header_stamp_ns(data), RANGES, NO_VALUES)


def _cell_status(message: CellStatus, _topic: str) -> Sample:
    return Sample(from_msg(message.header.stamp), CELL_STATUS, np.array([
        float(message.task_id), message.task_progress, message.speed_override,
        float(message.stopped)]))


ADAPTERS: dict[str, Adapter] = {
    signals.IMU_TYPE: Adapter(Imu, _imu, interpolable=True, raw=True),
    signals.JOINT_STATE_TYPE: Adapter(JointState, _joint_state, interpolable=True, raw=True),
    signals.LASER_SCAN_TYPE: Adapter(LaserScan, _laser_scan, interpolable=False),
    signals.TEMPERATURE_TYPE: Adapter(Temperature, _temperature, interpolable=True),
    signals.CELL_STATUS_TYPE: Adapter(CellStatus, _cell_status, interpolable=False),
    **{type_name: Adapter(message_class, _image, interpolable=False, raw=True)
       for type_name, message_class in zip(signals.IMAGE_TYPES, (Image, CompressedImage))},
}
