"""Wire formats: round trips, strict parsing and the resynchronising stream decoders."""

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_sensors.wire import (
    FRAME_OVERHEAD,
    MAX_PAYLOAD,
    SYNC,
    Ack,
    CommandName,
    FrameDecoder,
    LidarScan,
    LineDecoder,
    MsgType,
    WireError,
    crc16_ccitt_false,
    decode_encoder_payload,
    decode_lidar_payload,
    encode_ack,
    encode_command,
    encode_encoder_payload,
    encode_frame,
    encode_lidar_payload,
    format_imu_line,
    make_command,
    parse_ack,
    parse_command,
    parse_imu_line,
    request_seq,
)

# --------------------------------------------------------------------------- IMU lines


def test_imu_line_round_trip() -> None:
    line = format_imu_line(np.array([0.1, -9.81, 0.25, 0.001, -0.002, 0.5]), 123.456789)
    assert line.endswith(b"\n") and line.count(b",") == 6
    sample = parse_imu_line(line)
    assert sample.accel == pytest.approx((0.1, -9.81, 0.25))
    assert sample.gyro == pytest.approx((0.001, -0.002, 0.5))
    assert sample.device_time == pytest.approx(123.456789)


@pytest.mark.parametrize(("line", "reason"), [
    (b"", "field_count"),
    (b"1,2,3", "field_count"),
    (b"1,2,3,4,5,6,7,8", "field_count"),
    (b"1,2,3,4,5,6,", "non_numeric"),
    (b"1,2,x,4,5,6,7", "non_numeric"),
    (b"1,2,3,4,5,6,1_000", "non_numeric"),
    (b"1,2,3,4,5,6,0x10", "non_numeric"),
    (b"nan,2,3,4,5,6,7", "non_finite"),
    (b"1,2,3,-inf,5,6,7", "non_finite"),
    (b"1,2,3,4,5,6,Infinity", "non_finite"),
    (b"1,2,3,4,\xff,6,7", "encoding"),
])
def test_imu_parser_names_the_defect(line: bytes, reason: str) -> None:
    with pytest.raises(WireError) as raised:
        parse_imu_line(line)
    assert raised.value.reason == reason


def test_imu_parser_accepts_crlf_and_exponents() -> None:
    sample = parse_imu_line("1e-3,+2.,.5,-4E2,5,6,7\r\n")
    assert sample.accel == (0.001, 2.0, 0.5) and sample.gyro == (-400.0, 5.0, 6.0)


def test_line_decoder_reassembles_lines_split_across_chunks() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"abc") == []
    assert decoder.feed(b"def\nghi\n\nj") == [b"abcdef", b"ghi", b""]
    assert decoder.feed(b"k\n") == [b"jk"]


def test_line_decoder_bounds_memory_for_a_stream_without_newlines() -> None:
    decoder = LineDecoder(max_line_length=100)
    for _ in range(1000):
        assert decoder.feed(b"x" * 1000) == []
        assert len(decoder._partial) <= 100
    assert decoder.overflows == 1
    # the tail of the runaway line is dropped; the following lines come through intact
    assert decoder.feed(b"tail\nok\nfine\n") == [b"ok", b"fine"]
    assert decoder.bytes_discarded == 1000 * 1000 + len(b"tail\n")


def test_line_decoder_drops_overlong_complete_lines() -> None:
    decoder = LineDecoder(max_line_length=4)
    assert decoder.feed(b"toolong\nok\n") == [b"ok"]
    assert decoder.overflows == 1 and decoder.lines_ok == 1


# --------------------------------------------------------------------------- frames


def test_crc_matches_the_published_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_frame_layout() -> None:
    frame = encode_frame(MsgType.LIDAR, 0x1234, b"\x01\x02")
    assert frame[:2] == SYNC and frame[2] == MsgType.LIDAR
    assert frame[3:5] == b"\x34\x12" and frame[5:7] == b"\x02\x00"
    assert int.from_bytes(frame[-2:], "little") == crc16_ccitt_false(frame[2:-2])
    assert len(frame) == FRAME_OVERHEAD + 2


def test_decoder_counts_crc_errors_and_keeps_following_frames() -> None:
    frames = [encode_frame(MsgType.ENCODERS, seq, bytes([seq]) * 10) for seq in range(3)]
    corrupted = bytearray(frames[1])
    corrupted[9] ^= 0x40
    decoder = FrameDecoder()
    decoded = decoder.feed(frames[0] + bytes(corrupted) + frames[2])
    assert [f.seq for f in decoded] == [0, 2]
    assert decoder.crc_errors == 1
    assert decoder.sequence_gaps == 1 and decoder.frames_missed == 1


def test_decoder_waits_for_a_split_frame_and_counts_skipped_garbage() -> None:
    frame = encode_frame(MsgType.ENCODERS, 7, b"payload")
    decoder = FrameDecoder()
    assert decoder.feed(b"junk" + frame[:1]) == []
    assert decoder.feed(frame[1:5]) == []
    assert [f.payload for f in decoder.feed(frame[5:])] == [b"payload"]
    assert decoder.bytes_skipped == 4 and decoder.frames_ok == 1


def test_decoder_recovers_the_frame_after_a_truncated_one() -> None:
    first, second = (encode_frame(MsgType.LIDAR, seq, b"z" * 40) for seq in (1, 2))
    decoder = FrameDecoder()
    assert [f.seq for f in decoder.feed(first[:20] + second)] == [2]


def test_decoder_rejects_implausible_headers_without_waiting() -> None:
    fake = SYNC + bytes([MsgType.ENCODERS]) + b"\x00\x00" + (MAX_PAYLOAD + 1).to_bytes(2, "little")
    frame = encode_frame(MsgType.ENCODERS, 1, b"ok")
    decoder = FrameDecoder()
    assert [f.payload for f in decoder.feed(fake + frame)] == [b"ok"]
    assert decoder.bad_headers == 1


def test_decoder_throughput() -> None:
    payload = encode_encoder_payload(1.0, 2**20, np.zeros(6), np.zeros(6), np.zeros(6))
    stream = b"".join(encode_frame(MsgType.ENCODERS, seq, payload) for seq in range(20000))
    decoder = FrameDecoder()
    start = time.perf_counter()
    count = sum(len(decoder.feed(stream[i:i + 4096])) for i in range(0, len(stream), 4096))
    rate = count / (time.perf_counter() - start)
    assert count == 20000 and decoder.sequence_gaps == 0
    assert rate > 20000, f"{rate:.0f} frames/s"


_frames = st.builds(
    lambda msg_type, seq, payload: encode_frame(msg_type, seq, payload),
    st.sampled_from(list(MsgType)), st.integers(0, 0xFFFF), st.binary(max_size=80))


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(_frames))
    if draw(st.booleans()):
        index = draw(st.integers(2, len(frame) - 1))
        frame[index] ^= draw(st.integers(1, 255))
        return bytes(frame)
    return bytes(frame[:draw(st.integers(1, len(frame) - 1))])


_garbage = st.one_of(st.binary(min_size=1, max_size=60),
                     st.binary(max_size=20).map(lambda tail: SYNC + tail))
_segments = st.lists(st.one_of(st.tuples(st.just(True), _frames), st.tuples(st.just(False), _damaged()),
                               st.tuples(st.just(False), _garbage)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(segments=_segments, chunk_sizes=st.lists(st.integers(1, 200), min_size=1, max_size=10))
def test_decoder_recovers_every_intact_frame_from_a_corrupted_stream(
        segments: list[tuple[bool, bytes]], chunk_sizes: list[int]) -> None:
    # trailing filler lets headers faked by garbage near the end run out of bytes and fail
    stream = b"".join(data for _, data in segments) + bytes(MAX_PAYLOAD + FRAME_OVERHEAD)
    decoder = FrameDecoder()
    decoded, position, turn = [], 0, 0
    while position < len(stream):
        size = chunk_sizes[turn % len(chunk_sizes)] * (1 if position < len(stream) - MAX_PAYLOAD else 100)
        decoded += [encode_frame(f.msg_type, f.seq, f.payload) for f in decoder.feed(stream[position:position + size])]
        position, turn = position + size, turn + 1
    remaining = iter(decoded)
    intact = [data for is_frame, data in segments if is_frame]
    assert all(any(found == frame for found in remaining) for frame in intact), "an intact frame was lost"
    assert decoder.frames_ok == len(decoded)


# --------------------------------------------------------------------------- payloads


def test_encoder_payload_round_trip_within_quantisation() -> None:
    positions = np.array([0.0, 1.2345, -3.0, 20.0, -0.0001, math.pi])
    velocities, efforts = np.linspace(-2, 2, 6), np.linspace(-50, 50, 6)
    sample = decode_encoder_payload(encode_encoder_payload(4.5, 2**20, positions, velocities, efforts))
    assert sample.device_time == 4.5 and sample.counts_per_rev == 2**20
    assert np.allclose(sample.positions, positions, atol=math.pi / 2**20)
    assert np.allclose(sample.velocities, velocities, rtol=1e-6)
    assert np.allclose(sample.efforts, efforts, rtol=1e-6)


def test_encoder_payload_length_is_checked() -> None:
    payload = encode_encoder_payload(0.0, 4096, np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(WireError, match="3 joints"):
        decode_encoder_payload(payload[:-1])


def test_lidar_payload_follows_rep_117() -> None:
    ranges = np.array([0.5, 9.9994, 0.01, -np.inf, 12.0, np.nan, np.inf, 3.21], dtype=np.float32)
    scan = LidarScan(7.0, -1.5, 0.25, 0.05, 10.0, 0.05, ranges)
    decoded = decode_lidar_payload(encode_lidar_payload(scan))
    assert (decoded.device_time, decoded.range_max, len(decoded.ranges)) == (7.0, 10.0, 8)
    assert decoded.angle_increment == pytest.approx(0.25)
    expected = np.array([0.5, 9.999, -np.inf, -np.inf, np.inf, np.inf, np.inf, 3.21])
    assert np.allclose(decoded.ranges, expected, atol=5e-4)
    assert decoded.ranges.dtype == np.float32


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(("cmd", "value"), [
    ("speed_override", 0.25), ("stop", None), ("resume", None), ("joint_positions", [0.0, -1.5, 2])])
def test_command_round_trip(cmd: str, value: object) -> None:
    command = make_command(9, cmd, value)
    parsed = parse_command(encode_command(command))
    assert parsed == command and parsed.cmd is CommandName(cmd)


@pytest.mark.parametrize(("datagram", "reason"), [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "malformed_json"),
    (b'{"cmd": "stop"}', "missing_field"),
    (b'{"seq": 1}', "missing_field"),
    (b'{"seq": 1, "cmd": "stop", "extra": 0}', "unknown_field"),
    (b'{"seq": true, "cmd": "stop"}', "bad_seq"),
    (b'{"seq": -1, "cmd": "stop"}', "bad_seq"),
    (b'{"seq": 1, "cmd": "explode"}', "bad_cmd"),
    (b'{"seq": 1, "cmd": "speed_override", "value": 1.5}', "bad_value"),
    (b'{"seq": 1, "cmd": "speed_override", "value": NaN}', "bad_value"),
    (b'{"seq": 1, "cmd": "speed_override", "value": "0.5"}', "bad_value"),
    (b'{"seq": 1, "cmd": "speed_override"}', "bad_value"),
    (b'{"seq": 1, "cmd": "stop", "value": 3}', "bad_value"),
    (b'{"seq": 1, "cmd": "joint_positions", "value": []}', "bad_value"),
    (b'{"seq": 1, "cmd": "joint_positions", "value": [0, "a"]}', "bad_value"),
])
def test_command_validation_names_the_defect(datagram: bytes, reason: str) -> None:
    with pytest.raises(WireError) as raised:
        parse_command(datagram)
    assert raised.value.reason == reason


def test_request_seq_is_recovered_when_possible() -> None:
    assert request_seq(b'{"seq": 4, "cmd": "explode"}') == 4
    assert request_seq(b"garbage") is None


def test_ack_round_trip_and_validation() -> None:
    for ack in (Ack(3, True, None), Ack(None, False, "malformed_json: x")):
        assert parse_ack(encode_ack(ack)) == ack
    with pytest.raises(WireError):
        parse_ack(json.dumps({"seq": 1, "ok": "yes"}).encode())
