"""Fuzz every inbound parser: it raises only its own rejection, counts it, and lets nothing
non-finite through (REP 117's ±inf lidar ranges aside); held state stays bounded.
"""
import json
import math
import struct

import cv2
import numpy as np
from asyncua import ua
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64

from twin_bridge.mqtt_config import MqttBridgeConfig
from twin_bridge.opcua_space import speed_override_command
from twin_bridge.payload import CDR_HEADER, CDR_MAGIC, PayloadError, Schema
from twin_control.config import ActuationConfig
from twin_core.config import ConfigError, build
from twin_sensors.camera import JPEG_END, JPEG_START, CameraConfig, CameraStream
from twin_sensors.encoders import EncoderConfig, EncoderStream
from twin_sensors.imu import ImuConfig, ImuStream
from twin_sensors.lidar import LidarStream
from twin_sensors.mjpeg import MAX_HEAD
from twin_sensors.plan import PlanDriverConfig, PlanStream
from twin_sensors.plc import PlcDriverConfig, PlcView
from twin_sensors.stats import DriverStats
from twin_sensors.wire import MsgType, encode_encoder_payload, encode_frame
from twin_sync.sync_config import SyncConfig

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30))
TEXT_NUMBERS = st.one_of(NUMBERS.map(repr), st.sampled_from(['1e999', '-1e999', 'nan', 'inf', '', ' ', '0x10',
                                                             '1_0', '١', '1e-999', '--1']), st.text(max_size=12))


def rejected(stats: DriverStats) -> int:
    return sum(stats.errors.values())


@FUZZ
@given(st.lists(st.lists(TEXT_NUMBERS, min_size=5, max_size=8), max_size=20), st.binary(max_size=300),
       st.integers(1, 64))
def test_imu_lines(rows: list[list[str]], noise: bytes, chunk: int) -> None:
    stats = DriverStats()
    stream = ImuStream(ImuConfig(), stats)
    # The stream joins a device mid-line: its first line is dropped as partial; start with an empty one.
    data = b'\n' + b''.join(','.join(row).encode(errors='replace') + b'\n' for row in rows) + noise + b'\n'
    readings = [r for i in range(0, len(data), chunk) for r in stream.feed(data[i:i + chunk])]
    lines = sum(bool(line.strip()) for line in data.split(b'\n')[:-1])  # blank lines carry nothing
    assert all(np.isfinite(r.values).all() and (r.device_time is None or math.isfinite(r.device_time))
               for r in readings)
    assert len(readings) + rejected(stats) >= lines - stats.errors['overflow']  # each line: a reading or a reason
    assert len(stream.decoder._partial) <= stream.decoder.max_line_length  # noqa: SLF001 - memory bound


def encoder_frame(seq: int, time: float, velocity: float) -> bytes:
    return encode_frame(MsgType.ENCODERS, seq, encode_encoder_payload(
        time, 4096, np.zeros(2), np.array([velocity, 0.0]), np.zeros(2)))


@FUZZ
@given(st.lists(st.tuples(st.floats(), st.floats(width=32)), max_size=10),
       st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8), st.integers(1, 50))
def test_encoder_frames(fields: list[tuple[float, float]], flips: list[tuple[int, int]], chunk: int) -> None:
    stats = DriverStats()
    stream = EncoderStream(EncoderConfig(joint_names=('a', 'b')), stats)
    data = bytearray(b''.join(encoder_frame(seq, t, v) for seq, (t, v) in enumerate(fields)))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    samples = [s for i in range(0, len(data), chunk) for s in stream.feed(bytes(data[i:i + chunk]))]
    assert all(math.isfinite(s.device_time) and np.isfinite(s.velocities).all() and np.isfinite(s.efforts).all()
               for s in samples)
    non_finite = sum(not (math.isfinite(t) and math.isfinite(v)) for t, v in fields)
    if not flips:  # intact frames: every one is a sample or a counted rejection
        assert len(samples) == len(fields) - non_finite and stats.errors['non_finite'] == non_finite
    assert len(stream.decoder._buffer) <= 2 * 1024  # noqa: SLF001 - a few frames at most


LIDAR_HEAD = struct.Struct('<d5fH')


@FUZZ
@given(st.tuples(*[st.floats(allow_nan=True, allow_infinity=True, width=w) for w in (64, 32, 32, 32, 32, 32)]),
       st.lists(st.integers(0, 0xFFFF), max_size=40), st.binary(max_size=20))
def test_lidar_datagrams(head: tuple[float, ...], millimetres: list[int], tail: bytes) -> None:
    stats = DriverStats()
    stream = LidarStream(stats)
    payload = LIDAR_HEAD.pack(*head, len(millimetres)) + struct.pack(f'<{len(millimetres)}H', *millimetres)
    scans = stream.feed(encode_frame(MsgType.LIDAR, 1, payload)) + stream.feed(tail)
    for scan in scans:
        assert all(map(math.isfinite, (scan.device_time, scan.angle_min, scan.angle_increment, scan.range_min,
                                       scan.range_max, scan.scan_time)))
        assert not np.isnan(scan.ranges).any()
    assert len(scans) == (1 if all(map(math.isfinite, head)) else 0)
    assert len(scans) + rejected(stats) >= 1


CAMERA_JPEGS = st.sampled_from([
    cv2.imencode('.jpg', np.full((16, 16, 3), shade, np.uint8))[1].tobytes() for shade in (0, 90, 200)])
HEADER_VALUES = st.one_of(TEXT_NUMBERS, st.just('image/png'), st.text(max_size=20))


@FUZZ
@given(st.lists(st.tuples(CAMERA_JPEGS, TEXT_NUMBERS), max_size=6),
       st.lists(st.tuples(st.sampled_from(['Content-Length', 'Content-Type', 'X-Timestamp', 'x']), HEADER_VALUES),
                max_size=3),
       st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 255)), max_size=6), st.binary(max_size=200),
       st.integers(1, 700))
def test_mjpeg_parts(parts: list[tuple[bytes, str]], extra_headers: list[tuple[str, str]],
                     flips: list[tuple[int, int]], noise: bytes, chunk: int) -> None:
    stats = DriverStats()
    stream = CameraStream(CameraConfig(max_frame_bytes=2048), stats)
    stream.reset(b'frame')
    extra = ''.join(f'{name}: {value}\r\n' for name, value in extra_headers).encode(errors='replace')
    data = bytearray(b''.join(b'--frame\r\n' + extra + f'Content-Length: {len(jpeg)}\r\nX-Timestamp: {stamp}\r\n'
                              .encode(errors='replace') + b'\r\n' + jpeg + b'\r\n' for jpeg, stamp in parts))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    data += noise
    frames = [f for i in range(0, len(data), chunk) for f in stream.feed(bytes(data[i:i + chunk]), 1.0)]
    for frame in frames:
        assert frame.jpeg.startswith(JPEG_START) and frame.jpeg.endswith(JPEG_END)
        assert frame.device_time is None or math.isfinite(frame.device_time)
    if not (flips or extra_headers or noise):  # intact parts: each one a frame
        assert len(frames) == len(parts) and stats.errors['bad_timestamp'] == sum(f.device_time is None for f in frames)
    assert len(stream.parser._buffer) <= 2048 + MAX_HEAD + 64  # noqa: SLF001 - one part at most


PLAN_HEAD = struct.Struct('<dBBB')


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 5), st.integers(0, 4), st.integers(0, 40),
       st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=80), st.binary(max_size=20))
def test_plan_datagrams(time: float, mode: int, joints: int, points: int, values: list[float], tail: bytes) -> None:
    stats = DriverStats()
    stream = PlanStream(PlanDriverConfig(joint_names=('a', 'b')), stats)
    payload = PLAN_HEAD.pack(time, mode, joints, points) + struct.pack(f'<{len(values)}d', *values)
    try:
        frame = encode_frame(MsgType.PLAN, 1, payload)
    except ValueError:  # beyond any frame
        return
    plans = stream.feed(frame) + stream.feed(tail)
    for plan in plans:
        assert math.isfinite(plan.device_time) and plan.positions.shape[1] == 2
        assert all(np.isfinite(a).all() for a in (plan.times, plan.positions, plan.velocities, plan.accelerations))
        assert plan.times[0] >= 0.0 and (np.diff(plan.times) >= 0.0).all()
    assert len(plans) + rejected(stats) >= 1


JSON_VALUES = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=4), max_leaves=20)
ADVERSARIAL_JSON = st.sampled_from([
    b'{"data": ' + b'1' * 5000 + b'}', b'[' * 100_000 + b']' * 100_000, b'{"data": 1e400}', b'{"data": -1e400}',
    b'{"data": NaN}', b'{"data": Infinity}', b'\xff\xfe', b'{"data": ' + b'9' * 400 + b'}', b'{"data": 1', b''])


def check_decoded(schema: Schema, payload: bytes) -> None:
    try:
        inbound = schema.decode_json(payload)
    except PayloadError as error:
        assert error.reason
        return
    for value in (inbound.message.data,) if hasattr(inbound.message, 'data') else ():
        assert math.isfinite(value)


@FUZZ
@given(st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(st.just('data'), NUMBERS).map(lambda d: json.dumps(d).encode()),
                 ADVERSARIAL_JSON, st.binary(max_size=200)))
def test_mqtt_json_payloads(payload: bytes) -> None:
    check_decoded(Schema(Float64, {}), payload)


@FUZZ
@given(st.binary(max_size=200), st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5))
def test_mqtt_cdr_payloads(noise: bytes, positions: list[float]) -> None:
    schema = Schema(JointState, {})
    message = JointState(name=['j'] * len(positions), position=positions)
    for payload in (CDR_MAGIC + CDR_HEADER.pack(0, 1) + b'x' + bytes(serialize_message(message)),
                    CDR_MAGIC + CDR_HEADER.pack(0, 0) + noise, noise):
        try:
            inbound = schema.decode_cdr(payload, deserialize_message)
        except PayloadError as error:
            assert error.reason in ('not_cdr', 'non_finite', 'schema')
            continue
        assert all(map(math.isfinite, inbound.message.position))


VARIANTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: ua.Variant(v, ua.VariantType.Double)),
    st.floats(width=32).map(lambda v: ua.Variant(v, ua.VariantType.Float)),
    st.integers(-2**31, 2**31 - 1).map(lambda v: ua.Variant(v, ua.VariantType.Int32)),
    st.text(max_size=5).map(lambda v: ua.Variant(v, ua.VariantType.String)), st.none())


@FUZZ
@given(VARIANTS)
def test_opcua_setpoint_writes(value: ua.Variant | None) -> None:
    try:
        command = speed_override_command(value)
    except (TypeError, ValueError):
        return
    assert 0.0 <= command <= 1.0


@FUZZ
@given(st.dictionaries(st.sampled_from(['Motor_joint_1.Temperature', 'Workcell.SpeedOverride', 'Workcell.Stopped',
                                        'Workcell.TaskId', 'Workcell.TaskProgress', 'Workcell.DeviceTime']),
                       st.one_of(NUMBERS, st.none(), st.text(max_size=4), st.booleans()), max_size=6))
def test_plc_values(changes: dict) -> None:
    stats = DriverStats()
    update = PlcView(PlcDriverConfig(joint_names=('joint_1',)), stats).apply(changes)
    assert all(math.isfinite(t) for t in update.temperatures.values())
    assert update.device_time is None or math.isfinite(update.device_time)
    if update.cell is not None:
        assert all(map(math.isfinite, (update.cell.task_progress, update.cell.speed_override)))


CONFIG_VALUES = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=6),
                             lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                                 st.sampled_from(['serial', 'port', 'baud', 'host', 'link', 'rate_hz', 'limits',
                                                  'urdf', 'delay', 'inputs', 'x']), inner, max_size=3), max_leaves=12)


@FUZZ
@given(st.sampled_from([ImuConfig, EncoderConfig, ActuationConfig, SyncConfig, MqttBridgeConfig]),
       st.dictionaries(st.sampled_from(['serial', 'link', 'limits', 'joint_names', 'frame_id', 'rate_hz', 'broker',
                                        'timestamps', 'typo']), CONFIG_VALUES, max_size=4))
def test_config_files(schema: type, document: dict) -> None:
    try:
        build(schema, document, 'fuzz')
    except ConfigError as error:
        assert str(error).startswith('fuzz')
