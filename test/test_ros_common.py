"""Typed parameters on a real rclpy node: descriptors, overrides, empty arrays, errors."""
import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu

from twin_core import cdr
from twin_core.config import ConfigError, describe
from twin_core.levels import Level
from twin_ros.common import declare_config, plain_cdr


@dataclass(frozen=True)
class Channel:
    rate_hz: float = field(default=100.0, metadata=describe('rate', min=1.0, max=1000.0))


@dataclass(frozen=True)
class Settings:
    names: tuple[str, ...] = ()
    channel: Channel = Channel()


def test_declares_typed_read_only_parameters_with_overrides(make_node):
    node = make_node(Parameter('channel.rate_hz', value=250.0), Parameter('names', value=['a', 'b']))
    assert declare_config(node, Settings) == Settings(('a', 'b'), Channel(250.0))
    descriptor = node.describe_parameter('channel.rate_hz')
    assert descriptor.read_only and descriptor.description == 'rate'
    assert descriptor.floating_point_range[0].to_value == 1000.0


def test_empty_array_default_is_declared_by_type(make_node):
    node = make_node()
    assert declare_config(node, Settings).names == ()
    assert node.describe_parameter('names').type == Parameter.Type.STRING_ARRAY.value


def test_wrong_type_names_the_parameter(make_node):
    node = make_node(Parameter('channel.rate_hz', value='fast'))
    with pytest.raises(ConfigError, match=r"^typed.channel.rate_hz: "):
        declare_config(node, Settings)


def test_out_of_range_names_the_parameter(make_node):
    node = make_node(Parameter('channel.rate_hz', value=5000.0))
    with pytest.raises(ConfigError, match=r"^typed.channel.rate_hz: "):
        declare_config(node, Settings)


def test_health_summary_can_go_from_warning_to_ok_and_back(ros_env):
    from twin_bringup.health_node import HealthMonitor
    rclpy.init()
    try:
        monitor = HealthMonitor()
        for level in (Level.WARN, Level.OK, Level.WARN, Level.OK):
            monitor._log_summary(level, f'3 components; level {level}')
        monitor.destroy_node()
    finally:
        rclpy.shutdown()


def test_a_raw_message_in_another_encoding_is_handed_on_as_plain_cdr() -> None:
    values = np.arange(cdr.IMU_DOUBLES, dtype=float)
    body = struct.pack('<iII', 2, 5, 4) + b'imu\x00' + values.tobytes()
    delimited = b'\x00\x09\x00\x00' + body  # D_CDR2, little-endian: no encoding twin_core.cdr reads
    with pytest.raises(cdr.UnsupportedEncoding):
        cdr.decode_imu(delimited)
    received: list[bytes] = []
    plain_cdr(Imu, received.append)(delimited)
    plain_cdr(Imu, received.append)(b'\x00\x07\x00\x00' + body)  # plain XCDR2: handed on as it is
    assert received[0][:2] in cdr.PLAIN_ENCODINGS and received[1] == b'\x00\x07\x00\x00' + body
    for data in received:
        imu = cdr.decode_imu(data)
        assert (imu.stamp_ns, imu.frame_id) == (2_000_000_005, 'imu')
        np.testing.assert_array_equal(imu.values, values)
