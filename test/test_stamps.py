"""Int nanoseconds <-> float seconds (twin_core.stamps) and <-> builtin_interfaces messages (twin_ros.stamps)."""
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from rclpy.duration import Duration as RclpyDuration
from rclpy.time import Time as RclpyTime
from rosbags.typesys import Stores, get_typestore

from twin_core.stamps import NS_PER_S, from_msg, from_seconds, to_seconds
from twin_ros.stamps import to_duration, to_msg

EPOCH_NS = 1_777_636_800_123_456_789  # 2026-05-01T12:00:00.123456789Z
TIMES = st.integers(min_value=0, max_value=(2**31 - 1) * NS_PER_S + NS_PER_S - 1)  # Time.sec is an int32
DURATIONS = st.integers(min_value=-(2**31) * NS_PER_S, max_value=(2**31 - 1) * NS_PER_S + NS_PER_S - 1)


def test_seconds_round_to_the_nearest_nanosecond() -> None:
    assert from_seconds(1.5) == 1_500_000_000 and from_seconds(0.1) == 100_000_000  # 0.1 s is not exact in binary
    assert from_seconds(0.4e-9) == 0 and from_seconds(0.6e-9) == 1 and from_seconds(-0.6e-9) == -1
    assert from_seconds(-0.25) == -250_000_000
    assert isinstance(from_seconds(np.float64(2.0)), int)
    assert to_seconds(1_500_000_000) == 1.5 and to_seconds(-1) == -1e-9 and to_seconds(0) == 0.0


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_float_seconds_keep_nanoseconds_within_a_float_mantissa(nanoseconds: int) -> None:
    assert from_seconds(to_seconds(nanoseconds)) == nanoseconds


def test_float_seconds_of_an_epoch_stamp_lose_its_nanoseconds() -> None:
    # A double holds an epoch stamp in s to about 0.24 µs: int ns is the exact form.
    assert from_seconds(to_seconds(EPOCH_NS)) != EPOCH_NS
    assert abs(from_seconds(to_seconds(EPOCH_NS)) - EPOCH_NS) <= 256


def test_from_msg_reads_any_object_with_sec_and_nanosec() -> None:
    rosbags_time = get_typestore(Stores.ROS2_KILTED).types['builtin_interfaces/msg/Time']
    assert from_msg(SimpleNamespace(sec=3, nanosec=5)) == 3 * NS_PER_S + 5
    assert from_msg(rosbags_time(sec=1_777_636_800, nanosec=123_456_789)) == EPOCH_NS
    assert from_msg(to_msg(EPOCH_NS)) == EPOCH_NS


@given(TIMES)
def test_time_messages_round_trip_like_rclpy(nanoseconds: int) -> None:
    message = to_msg(nanoseconds)
    assert 0 <= message.nanosec < NS_PER_S
    assert message == RclpyTime(nanoseconds=nanoseconds).to_msg()
    assert from_msg(message) == nanoseconds == RclpyTime.from_msg(message).nanoseconds


@given(DURATIONS)
def test_duration_messages_round_trip_like_rclpy_negative_ones_included(nanoseconds: int) -> None:
    message = to_duration(nanoseconds)
    assert 0 <= message.nanosec < NS_PER_S  # a negative duration has a negative sec and a positive nanosec
    assert message == RclpyDuration(nanoseconds=nanoseconds).to_msg()
    assert from_msg(message) == nanoseconds


def test_negative_durations_borrow_from_sec() -> None:
    assert (to_duration(-1).sec, to_duration(-1).nanosec) == (-1, NS_PER_S - 1)
    assert (to_duration(-1_500_000_000).sec, to_duration(-1_500_000_000).nanosec) == (-2, 500_000_000)


def test_messages_take_numpy_integers() -> None:
    assert to_msg(np.int64(EPOCH_NS)) == to_msg(EPOCH_NS)
    assert to_duration(np.int64(-5)) == to_duration(-5)


def test_seconds_to_a_message_and_back() -> None:
    assert to_duration(from_seconds(0.02)).nanosec == 20_000_000
    assert to_seconds(from_msg(to_msg(from_seconds(1000.25)))) == 1000.25
