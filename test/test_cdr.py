"""twin_core.cdr against rclpy's own (de)serialization and rosbags' big-endian CDR."""
from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from sensor_msgs.msg import Imu, JointState

from twin_core import cdr
from twin_interfaces.msg import SensorSample, SyncedFrame

STAMPS_NS = (0, 1, 999_999_999, 1_700_000_000_123_456_789, -1_500_000_000)  # before 1970 too
FRAME_IDS = ('', 'a', 'imu', 'imu_link', 'robot_2/imu_link_9')  # every padding length


def random_imu(rng: random.Random, stamp_ns: int, frame_id: str) -> Imu:
    message = Imu()
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    message.header.frame_id = frame_id
    values = [rng.uniform(-10, 10) for _ in range(cdr.IMU_DOUBLES)]
    q, gyro, accel = message.orientation, message.angular_velocity, message.linear_acceleration
    q.x, q.y, q.z, q.w = values[0:4]
    message.orientation_covariance = values[4:13]
    gyro.x, gyro.y, gyro.z = values[13:16]
    message.angular_velocity_covariance = values[16:25]
    accel.x, accel.y, accel.z = values[25:28]
    message.linear_acceleration_covariance = values[28:37]
    return message


def random_joint_state(rng: random.Random, stamp_ns: int, frame_id: str) -> JointState:
    count = rng.randint(0, 8)
    message = JointState(name=[f'j{"x" * rng.randint(0, 6)}_{i}' for i in range(count)])
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    message.header.frame_id = frame_id
    for field in ('position', 'velocity', 'effort'):
        if rng.random() < 0.7:
            setattr(message, field, [rng.choice((rng.uniform(-5, 5), np.inf, -0.0)) for _ in range(count)])
    return message


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('stamp_ns', STAMPS_NS)
def test_an_imu_reads_as_rclpy_wrote_it_and_rclpy_reads_what_is_written(stamp_ns: int, frame_id: str) -> None:
    message = random_imu(random.Random(stamp_ns), stamp_ns, frame_id)
    wire = cdr.decode_imu(serialize_message(message))
    assert (wire.stamp_ns, wire.frame_id) == (stamp_ns, frame_id)
    assert wire.values[0] == message.orientation.x and wire.values[-1] == message.linear_acceleration_covariance[-1]
    assert deserialize_message(cdr.encode_imu(wire.stamp_ns, wire.frame_id, wire.values), Imu) == message


def test_joint_states_of_any_size_and_filled_fields_read_and_write_like_rclpy() -> None:
    rng = random.Random(7)
    for trial in range(300):
        message = random_joint_state(rng, rng.choice(STAMPS_NS), rng.choice(FRAME_IDS))
        wire = cdr.decode_joint_state(serialize_message(message))
        assert (wire.stamp_ns, wire.frame_id, list(wire.name)) == (
            message.header.stamp.sec * 10**9 + message.header.stamp.nanosec, message.header.frame_id, message.name)
        for field in ('position', 'velocity', 'effort'):
            np.testing.assert_array_equal(getattr(wire, field), np.asarray(getattr(message, field)), err_msg=field)
        written = cdr.encode_joint_state(wire.stamp_ns, wire.frame_id, wire.name, wire.position,
                                         wire.velocity, wire.effort)
        assert deserialize_message(written, JointState) == message, trial
        assert cdr.header_stamp_ns(written) == wire.stamp_ns


def test_big_endian_cdr_reads_the_same() -> None:
    typestore = get_typestore(Stores.LATEST)
    rng = random.Random(3)
    for _ in range(20):
        message = random_joint_state(rng, rng.choice(STAMPS_NS), rng.choice(FRAME_IDS))
        wire = cdr.decode_joint_state(serialize_message(message))
        little = cdr.encode_joint_state(wire.stamp_ns, wire.frame_id, wire.name, wire.position, wire.velocity,
                                        wire.effort)  # rclpy leaves spare bytes at the end, which rosbags refuses
        big = typestore.serialize_cdr(typestore.deserialize_cdr(little, 'sensor_msgs/msg/JointState'),
                                      'sensor_msgs/msg/JointState', little_endian=False)
        assert big[:2] == b'\x00\x00'
        one, other = cdr.decode_joint_state(little), cdr.decode_joint_state(big)
        assert (one.stamp_ns, one.frame_id, one.name) == (other.stamp_ns, other.frame_id, other.name)
        np.testing.assert_array_equal(one.position, other.position)
        np.testing.assert_array_equal(one.effort, other.effort)


def test_plain_xcdr2_aligns_doubles_to_four_bytes() -> None:
    values = np.arange(cdr.IMU_DOUBLES, dtype=float)
    # stamp, frame id 'imu' (4 bytes with its null), then the doubles at payload offset 16 ...
    xcdr2 = b'\x00\x07\x00\x00' + struct.pack('<iII', 2, 5, 4) + b'imu\x00' + values.tobytes()
    # ... and 'ab' (3 bytes): the doubles start at 16 after one byte of padding, not at 24
    short = b'\x00\x07\x00\x00' + struct.pack('<iII', 2, 5, 3) + b'ab\x00\x00' + values.tobytes()
    for data, frame_id in ((xcdr2, 'imu'), (short, 'ab')):
        wire = cdr.decode_imu(data)
        assert (wire.stamp_ns, wire.frame_id) == (2_000_000_005, frame_id)
        np.testing.assert_array_equal(wire.values, values)


def test_every_truncation_and_a_foreign_encoding_are_refused_with_a_reason() -> None:
    data = cdr.encode_joint_state(5, 'base_link', ('a', 'bc'), np.ones(2), np.empty(0), np.zeros(2))
    for end in range(len(data)):
        with pytest.raises(ValueError):
            cdr.decode_joint_state(data[:end])
    with pytest.raises(cdr.UnsupportedEncoding, match='0x000a'):
        cdr.decode_joint_state(b'\x00\x0a' + data[2:])
    unterminated = bytearray(cdr.encode_imu(0, 'imu', np.zeros(cdr.IMU_DOUBLES)))
    unterminated[4 + 8 + 4 + 3] = ord('x')
    with pytest.raises(ValueError, match='null-terminated'):
        cdr.decode_imu(bytes(unterminated))


def test_arrays_that_do_not_match_the_names_are_not_written() -> None:
    with pytest.raises(ValueError, match='2 values for 3 joint names'):
        cdr.encode_joint_state(0, '', ('a', 'b', 'c'), np.zeros(2), np.empty(0), np.empty(0))
    with pytest.raises(ValueError, match='37 doubles'):
        cdr.encode_imu(0, '', np.zeros(6))


def random_synced_frame(rng: random.Random) -> SyncedFrame:
    """Samples of every shape a frame carries: named values, ranges without names, none at all."""
    message = SyncedFrame(max_skew=rng.uniform(0, 0.1), complete=rng.random() < 0.5)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(rng.choice(STAMPS_NS), 10**9)
    message.header.frame_id = rng.choice(FRAME_IDS)
    for index in range(rng.randint(0, 6)):
        count = rng.choice((0, 1, 3, 6, 18, 360))
        names = [] if count == 360 or rng.random() < 0.2 else [f'{"x" * rng.randint(0, 5)}_{i}' for i in range(count)]
        sample = SensorSample(topic=f'/{"t" * rng.randint(1, 9)}{index}', type=rng.choice(FRAME_IDS),
                              age=rng.uniform(0, 1), quality=rng.randint(0, 4), names=names,
                              values=[rng.choice((rng.uniform(-5, 5), np.nan, np.inf)) for _ in range(count)])
        sample.stamp.sec, sample.stamp.nanosec = divmod(rng.choice(STAMPS_NS), 10**9)
        message.samples.append(sample)
    return message


def assert_same_frame(wire: cdr.SyncedFrameWire, message: SyncedFrame) -> None:
    assert (wire.header.stamp.sec, wire.header.stamp.nanosec, wire.header.frame_id) == (
        message.header.stamp.sec, message.header.stamp.nanosec, message.header.frame_id)
    assert (wire.max_skew, wire.complete, len(wire.samples)) == (message.max_skew, message.complete,
                                                                  len(message.samples))
    for got, sent in zip(wire.samples, message.samples):
        assert (got.topic, got.type, got.stamp.sec, got.stamp.nanosec, got.age, got.quality, list(got.names)) == (
            sent.topic, sent.type, sent.stamp.sec, sent.stamp.nanosec, sent.age, sent.quality, sent.names)
        np.testing.assert_array_equal(got.values, np.asarray(sent.values))


def encoded_frame(wire: cdr.SyncedFrameWire) -> bytes:
    return cdr.encode_synced_frame(
        wire.header.stamp.sec * 10**9 + wire.header.stamp.nanosec, wire.header.frame_id,
        [cdr.FrameSampleFields(s.topic, s.type, s.stamp.sec * 10**9 + s.stamp.nanosec, s.age, s.quality,
                               s.names, s.values) for s in wire.samples], wire.max_skew, wire.complete)


def test_synced_frames_read_as_rclpy_wrote_them_and_rclpy_reads_what_is_written() -> None:
    rng = random.Random(11)
    for _ in range(200):
        message = random_synced_frame(rng)
        wire = cdr.decode_synced_frame(serialize_message(message))
        assert_same_frame(wire, message)
        written = encoded_frame(wire)
        assert_same_frame(cdr.decode_synced_frame(written), deserialize_message(written, SyncedFrame))


def test_a_big_endian_synced_frame_reads_the_same() -> None:
    typestore = get_typestore(Stores.LATEST)
    msg_dir = Path(__file__).resolve().parents[1] / 'twin_interfaces' / 'msg'
    for file in ('SensorSample', 'SyncedFrame'):
        typestore.register(get_types_from_msg((msg_dir / f'{file}.msg').read_text(), f'twin_interfaces/msg/{file}'))
    rng = random.Random(5)
    for _ in range(20):
        message = random_synced_frame(rng)
        little = encoded_frame(cdr.decode_synced_frame(serialize_message(message)))
        big = typestore.serialize_cdr(typestore.deserialize_cdr(little, 'twin_interfaces/msg/SyncedFrame'),
                                      'twin_interfaces/msg/SyncedFrame', little_endian=False)
        assert big[:2] == b'\x00\x00'
        assert_same_frame(cdr.decode_synced_frame(big), message)


def test_a_truncated_synced_frame_is_refused() -> None:
    data = encoded_frame(cdr.decode_synced_frame(serialize_message(random_synced_frame(random.Random(2)))))
    for end in range(len(data) - 1):  # the last byte is the flag 'complete'
        with pytest.raises(ValueError):
            cdr.decode_synced_frame(data[:end])
