"""Wire formats shared by the simulated workcell (encode side) and the drivers (decode side).

* IMU: ASCII CSV lines ``ax,ay,az,gx,gy,gz[,device_time]``, newline-terminated, over a serial port.
* Encoders, lidar and the controller's plan: binary frames
  ``SYNC(A5 5A) | msg_type u8 | seq u16 | length u16 | payload | CRC-16/CCITT-FALSE u16``,
  little-endian, the CRC covering msg_type..payload.
* Commands (twin -> cell): JSON datagrams ``{"seq", "cmd", "value"}`` answered by
  ``{"seq", "ok", "error"}`` acks.
"""

from __future__ import annotations

import binascii
import enum
import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class WireError(ValueError):
    """A message that does not follow its wire format; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


# --------------------------------------------------------------------------- IMU text lines

IMU_FIELD_COUNT = 7
IMU_FIELD_COUNTS = (6, IMU_FIELD_COUNT)  # device_time is optional
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class ImuSample:
    """One IMU reading: acceleration m/s^2, angular rate rad/s, the device's own clock in s (if sent)."""

    accel: tuple[float, float, float]
    gyro: tuple[float, float, float]
    device_time: float | None


def format_imu_line(reading: Sequence[float] | np.ndarray, device_time: float) -> bytes:
    """Encode a (6,) ``ax,ay,az,gx,gy,gz`` reading and its device time as one CSV line."""
    if len(reading) != 6:
        raise ValueError(f"an IMU reading has 6 values, got {len(reading)}")
    ax, ay, az, gx, gy, gz = (float(v) for v in reading)
    return (
        f"{ax:.5f},{ay:.5f},{az:.5f},{gx:.6f},{gy:.6f},{gz:.6f},{float(device_time):.6f}\n"
    ).encode("ascii")


def _parse_number(field: str, index: int) -> float:
    if _NUMBER.fullmatch(field):
        value = float(field)
        if math.isfinite(value):
            return value
        raise WireError("non_finite", f"field {index} is {field[:32]!r}, beyond the float range")
    try:
        special = float(field)
    except ValueError:
        special = None
    if special is not None and not math.isfinite(special):
        raise WireError("non_finite", f"field {index} is {field!r}")
    raise WireError("non_numeric", f"field {index} is {field[:32]!r}")


def parse_imu_line(line: bytes | str) -> ImuSample:
    """Parse one IMU CSV line (terminator optional); raise ``WireError`` naming the first defect.

    Reasons: ``encoding``, ``field_count``, ``non_numeric``, ``non_finite``.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError as error:
            raise WireError("encoding", f"non-ASCII byte at {error.start}") from None
    fields = line.strip().split(",")
    if len(fields) not in IMU_FIELD_COUNTS:
        raise WireError("field_count", f"expected 6 or {IMU_FIELD_COUNT} fields, got {len(fields)}")
    values = [_parse_number(field, index) for index, field in enumerate(fields)]
    return ImuSample(accel=(values[0], values[1], values[2]), gyro=(values[3], values[4], values[5]),
                     device_time=values[6] if len(values) == IMU_FIELD_COUNT else None)


class LineDecoder:
    """Split a byte stream into lines, bounding the memory held for an unterminated line.

    A partial line longer than ``max_line_length`` is discarded together with the rest of
    that line (up to the next newline) and counted in ``overflows``.
    """

    def __init__(self, max_line_length: int = 256) -> None:
        if max_line_length < 1:
            raise ValueError("max_line_length must be positive")
        self.max_line_length = max_line_length
        self.lines_ok = 0
        self.overflows = 0
        self.bytes_discarded = 0
        self._partial = b""
        self._discarding = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the complete lines (without terminator) that ``chunk`` completes."""
        pieces = (self._partial + chunk).split(b"\n")
        self._partial = pieces.pop()
        if self._discarding and pieces:
            self.bytes_discarded += len(pieces.pop(0)) + 1
            self._discarding = False
        if self._discarding:
            self.bytes_discarded += len(self._partial)
            self._partial = b""
        elif len(self._partial) > self.max_line_length:
            self.overflows += 1
            self.bytes_discarded += len(self._partial)
            self._partial = b""
            self._discarding = True
        lines = [piece for piece in pieces if len(piece) <= self.max_line_length]
        if len(lines) != len(pieces):
            self.overflows += len(pieces) - len(lines)
            self.bytes_discarded += sum(len(p) + 1 for p in pieces if len(p) > self.max_line_length)
        self.lines_ok += len(lines)
        return lines

    def discard_partial(self) -> None:
        """Drop the pending partial line and the rest of the next line (a stream (re)started mid-line)."""
        self.bytes_discarded += len(self._partial)
        self._partial = b""
        self._discarding = True


# --------------------------------------------------------------------------- binary frames

SYNC = b"\xa5\x5a"
_HEADER = struct.Struct("<2sBHH")
_CRC = struct.Struct("<H")
HEADER_SIZE = _HEADER.size
FRAME_OVERHEAD = HEADER_SIZE + _CRC.size
MAX_PAYLOAD = 16384


class MsgType(enum.IntEnum):
    """Binary frame message types."""

    ENCODERS = 0x01
    LIDAR = 0x02
    PLAN = 0x03


def crc16_ccitt_false(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded binary frame."""

    msg_type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes) -> bytes:
    """Wrap ``payload`` in a sync/header/CRC frame; ``seq`` wraps at 2**16."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(SYNC, msg_type, seq & 0xFFFF, len(payload)) + payload
    return body + _CRC.pack(crc16_ccitt_false(memoryview(body)[2:]))


class FrameDecoder:
    """Streaming frame decoder that resynchronises after garbage, bad CRCs and truncated frames.

    After a bad frame it resumes the sync search one byte after the rejected sync, so a valid
    frame that a corrupted one swallowed is still found.
    """

    def __init__(self, known_types: Sequence[int] = tuple(MsgType), max_payload: int = MAX_PAYLOAD) -> None:
        self.known_types = frozenset(known_types)
        self.max_payload = max_payload
        self.frames_ok = 0
        self.crc_errors = 0
        self.bad_headers = 0
        self.bytes_skipped = 0
        self.sequence_gaps = 0
        self.frames_missed = 0
        self._buffer = bytearray()
        self._last_seq: dict[int, int] = {}

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data`` and return every frame completed by it, in stream order."""
        self._buffer += data
        with memoryview(self._buffer) as view:
            frames, consumed = self._scan(view)
        del self._buffer[:consumed]
        self.frames_ok += len(frames)
        return frames

    def discard_partial(self) -> int:
        """Drop the bytes of an incomplete frame (end of a datagram, stream restart); return how many."""
        dropped = len(self._buffer)
        self.bytes_skipped += dropped
        self._buffer.clear()
        return dropped

    def _scan(self, view: memoryview) -> tuple[list[Frame], int]:
        buffer = self._buffer
        frames: list[Frame] = []
        position = 0
        end = len(view)
        while True:
            start = buffer.find(SYNC, position)
            if start < 0:
                keep = 1 if end > position and view[end - 1] == SYNC[0] else 0
                self.bytes_skipped += end - position - keep
                return frames, end - keep
            self.bytes_skipped += start - position
            if end - start < HEADER_SIZE:
                return frames, start
            _, msg_type, seq, length = _HEADER.unpack_from(view, start)
            if msg_type not in self.known_types or length > self.max_payload:
                self.bad_headers += 1
                self.bytes_skipped += 1
                position = start + 1
                continue
            payload_end = start + HEADER_SIZE + length
            if payload_end + _CRC.size > end:
                return frames, start
            (crc,) = _CRC.unpack_from(view, payload_end)
            if crc != crc16_ccitt_false(view[start + 2:payload_end]):
                self.crc_errors += 1
                self.bytes_skipped += 1
                position = start + 1
                continue
            frames.append(Frame(msg_type, seq, bytes(view[start + HEADER_SIZE:payload_end])))
            self._track_sequence(msg_type, seq)
            position = payload_end + _CRC.size

    def _track_sequence(self, msg_type: int, seq: int) -> None:
        last = self._last_seq.get(msg_type)
        self._last_seq[msg_type] = seq
        if last is None:
            return
        missed = (seq - last - 1) & 0xFFFF
        if 0 < missed < 0x8000:  # larger jumps are reordering, duplicates or a device restart
            self.sequence_gaps += 1
            self.frames_missed += missed


# --------------------------------------------------------------------------- encoder payload

_ENCODER_HEAD = struct.Struct("<dIB")
_ENCODER_JOINT = np.dtype([("counts", "<i4"), ("velocity", "<f4"), ("effort", "<f4")])
MAX_JOINTS = 255


@dataclass(frozen=True, slots=True)
class EncoderSample:
    """Joint encoder readings: positions rad, velocities rad/s, efforts N·m."""

    device_time: float
    counts_per_rev: int
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


def encode_encoder_payload(device_time: float, counts_per_rev: int, positions: np.ndarray,
                           velocities: np.ndarray, efforts: np.ndarray) -> bytes:
    """Encode joint states; positions are quantised to absolute multi-turn int32 counts."""
    joints = len(positions)
    if not 0 < joints <= MAX_JOINTS or len(velocities) != joints or len(efforts) != joints:
        raise ValueError("positions, velocities and efforts must have the same length, 1..255")
    records = np.empty(joints, dtype=_ENCODER_JOINT)
    counts = np.rint(np.asarray(positions, dtype=np.float64) * (counts_per_rev / (2.0 * math.pi)))
    records["counts"] = np.clip(counts, -2**31, 2**31 - 1)
    records["velocity"] = velocities
    records["effort"] = efforts
    return _ENCODER_HEAD.pack(device_time, counts_per_rev, joints) + records.tobytes()


def encoder_payload_size(joints: int) -> int:
    """Bytes of an encoder payload for ``joints`` joints (the decoder's bound on frame length)."""
    return _ENCODER_HEAD.size + joints * _ENCODER_JOINT.itemsize


def decode_encoder_payload(payload: bytes) -> EncoderSample:
    """Decode an ``MsgType.ENCODERS`` payload; raise ``WireError`` (reason ``payload``, or
    ``non_finite`` for a NaN/inf time, velocity or effort) if malformed.
    """
    if len(payload) < _ENCODER_HEAD.size:
        raise WireError("payload", f"encoder payload of {len(payload)} bytes is shorter than its header")
    device_time, counts_per_rev, joints = _ENCODER_HEAD.unpack_from(payload)
    if len(payload) != _ENCODER_HEAD.size + joints * _ENCODER_JOINT.itemsize or counts_per_rev == 0:
        raise WireError("payload", f"encoder payload of {len(payload)} bytes does not hold {joints} joints")
    records = np.frombuffer(payload, dtype=_ENCODER_JOINT, offset=_ENCODER_HEAD.size)
    if not (math.isfinite(device_time) and np.isfinite(records["velocity"]).all()
            and np.isfinite(records["effort"]).all()):
        raise WireError("non_finite", "encoder frame holds a NaN or infinite time, velocity or effort")
    return EncoderSample(
        device_time=device_time,
        counts_per_rev=counts_per_rev,
        positions=records["counts"] * (2.0 * math.pi / counts_per_rev),
        velocities=records["velocity"].astype(np.float64),
        efforts=records["effort"].astype(np.float64),
    )


# --------------------------------------------------------------------------- lidar payload

_LIDAR_HEAD = struct.Struct("<d5fH")
NO_RETURN_MM = 0
TOO_CLOSE_MM = 0xFFFF
MAX_RANGE_M = (TOO_CLOSE_MM - 1) / 1000.0


@dataclass(frozen=True, slots=True)
class LidarScan:
    """A planar scan; ``ranges`` in m following REP 117 (+inf: no return, -inf: closer than range_min)."""

    device_time: float
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    scan_time: float
    ranges: np.ndarray


def encode_lidar_payload(scan: LidarScan) -> bytes:
    """Encode a scan with ranges as u16 millimetres: 0 for no return (NaN, beyond range_max),
    0xFFFF for a return closer than range_min.
    """
    if not 0.0 <= scan.range_min < scan.range_max <= MAX_RANGE_M:
        raise ValueError(f"need 0 <= range_min < range_max <= {MAX_RANGE_M} m")
    ranges = np.asarray(scan.ranges, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = (ranges >= scan.range_min) & (ranges <= scan.range_max)
        too_close = ranges < scan.range_min
    millimetres = np.full(len(ranges), NO_RETURN_MM, dtype="<u2")
    millimetres[valid] = np.maximum(np.rint(ranges[valid] * 1000.0), 1)
    millimetres[too_close] = TOO_CLOSE_MM
    head = _LIDAR_HEAD.pack(scan.device_time, scan.angle_min, scan.angle_increment, scan.range_min,
                            scan.range_max, scan.scan_time, len(millimetres))
    return head + millimetres.tobytes()


def decode_lidar_payload(payload: bytes) -> LidarScan:
    """Decode an ``MsgType.LIDAR`` payload; raise ``WireError`` (reason ``payload``, or ``non_finite``
    for a NaN/inf header field) if malformed. Ranges are finite or REP 117's ±inf, never NaN.
    """
    if len(payload) < _LIDAR_HEAD.size:
        raise WireError("payload", f"lidar payload of {len(payload)} bytes is shorter than its header")
    *head, beams = _LIDAR_HEAD.unpack_from(payload)
    if len(payload) != _LIDAR_HEAD.size + 2 * beams:
        raise WireError("payload", f"lidar payload of {len(payload)} bytes does not hold {beams} beams")
    if not all(map(math.isfinite, head)):
        raise WireError("non_finite", "lidar frame holds a NaN or infinite time, angle or range limit")
    millimetres = np.frombuffer(payload, dtype="<u2", offset=_LIDAR_HEAD.size)
    ranges = millimetres.astype(np.float32) / np.float32(1000.0)
    ranges[millimetres == NO_RETURN_MM] = np.inf
    ranges[millimetres == TOO_CLOSE_MM] = -np.inf
    device_time, angle_min, angle_increment, range_min, range_max, scan_time = head
    return LidarScan(device_time, angle_min, angle_increment, range_min, range_max, scan_time, ranges)


# --------------------------------------------------------------------------- plan payload

_PLAN_HEAD = struct.Struct("<dBBB")  # device time, mode, joints, points
MAX_PLAN_POINTS = 32


class PlanMode(enum.IntEnum):
    """What the cell's controller is executing."""

    AUTO = 0  # the task program
    MANUAL = 1  # a commanded move
    REJOIN = 2  # moving back onto the task path
    HOLD = 3  # stopped or at speed 0: holding the current reference


@dataclass(frozen=True, slots=True)
class PlanSample:
    """The controller's commanded trajectory from ``device_time``: point 0 is the current reference.

    ``times`` (P,) s from ``device_time``, non-decreasing; positions rad, velocities rad/s,
    accelerations rad/s², each (P, joints).
    """

    device_time: float
    mode: PlanMode
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray


def plan_payload_size(joints: int, points: int) -> int:
    """Bytes of a plan payload (the decoder's bound on frame length with ``MAX_PLAN_POINTS``)."""
    return _PLAN_HEAD.size + points * (1 + 3 * joints) * 8


def encode_plan_payload(plan: PlanSample) -> bytes:
    """Encode a plan: header, then per point its time and the joints' position, velocity, acceleration (f8)."""
    points, joints = np.shape(plan.positions)
    if not 0 < joints <= MAX_JOINTS or not 0 < points <= MAX_PLAN_POINTS or np.shape(plan.times) != (points,) \
            or np.shape(plan.velocities) != (points, joints) or np.shape(plan.accelerations) != (points, joints):
        raise ValueError(f"a plan has 1..{MAX_PLAN_POINTS} points of 1..{MAX_JOINTS} joints, all fields alike")
    table = np.column_stack((plan.times, plan.positions, plan.velocities, plan.accelerations)).astype("<f8")
    return _PLAN_HEAD.pack(plan.device_time, int(plan.mode), joints, points) + table.tobytes()


def decode_plan_payload(payload: bytes) -> PlanSample:
    """Decode an ``MsgType.PLAN`` payload; raise ``WireError`` (reasons ``payload``, ``non_finite``,
    ``bad_mode``, ``time_order``) if it is malformed.
    """
    if len(payload) < _PLAN_HEAD.size:
        raise WireError("payload", f"plan payload of {len(payload)} bytes is shorter than its header")
    device_time, mode, joints, points = _PLAN_HEAD.unpack_from(payload)
    if not joints or not 0 < points <= MAX_PLAN_POINTS or len(payload) != plan_payload_size(joints, points):
        raise WireError("payload", f"plan payload of {len(payload)} bytes does not hold {points} points "
                                   f"of {joints} joints")
    try:
        plan_mode = PlanMode(mode)
    except ValueError:
        raise WireError("bad_mode", f"unknown controller mode {mode}") from None
    table = np.frombuffer(payload, dtype="<f8", offset=_PLAN_HEAD.size).reshape(points, 1 + 3 * joints)
    if not (math.isfinite(device_time) and np.isfinite(table).all()):
        raise WireError("non_finite", "plan frame holds a NaN or infinite time or value")
    times = table[:, 0].astype(np.float64)
    if times[0] < 0.0 or np.any(np.diff(times) < 0.0):
        raise WireError("time_order", "plan point times must start at or after 0 and not decrease")
    positions, velocities, accelerations = (table[:, 1 + i * joints:1 + (i + 1) * joints].astype(np.float64)
                                            for i in range(3))
    return PlanSample(device_time, plan_mode, times, positions, velocities, accelerations)


# --------------------------------------------------------------------------- command datagrams

class CommandName(enum.StrEnum):
    """Commands the workcell accepts from the twin."""

    SPEED_OVERRIDE = "speed_override"
    STOP = "stop"
    RESUME = "resume"
    JOINT_POSITIONS = "joint_positions"


MAX_DATAGRAM = 65507
_COMMAND_KEYS = frozenset({"seq", "cmd", "value"})


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command; ``value`` is a float, a tuple of floats, or None for stop/resume."""

    seq: int
    cmd: CommandName
    value: float | tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The cell's reply to a command; ``seq`` is None when the request's seq was unreadable."""

    seq: int | None
    ok: bool
    error: str | None = None


def _finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WireError("bad_value", f"{what} must be a finite number, got {value!r}")
    return float(value)


def _validated_value(cmd: CommandName, value: object) -> float | tuple[float, ...] | None:
    if cmd in (CommandName.STOP, CommandName.RESUME):
        if value is not None:
            raise WireError("bad_value", f"{cmd} takes no value")
        return None
    if cmd is CommandName.SPEED_OVERRIDE:
        override = _finite_number(value, "speed_override value")
        if not 0.0 <= override <= 1.0:
            raise WireError("bad_value", f"speed_override must be within [0, 1], got {override}")
        return override
    if not isinstance(value, (list, tuple)) or not 0 < len(value) <= MAX_JOINTS:
        raise WireError("bad_value", "joint_positions value must be a list of 1..255 numbers")
    return tuple(_finite_number(v, f"joint position {i}") for i, v in enumerate(value))


def make_command(seq: int, cmd: str, value: object = None) -> Command:
    """Build a validated ``Command``; raise ``WireError`` (reasons ``bad_seq``, ``bad_cmd``, ``bad_value``)."""
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise WireError("bad_seq", f"seq must be a non-negative integer, got {seq!r}")
    try:
        name = CommandName(cmd)
    except ValueError:
        raise WireError("bad_cmd", f"unknown command {cmd!r}; expected one of {[c.value for c in CommandName]}") \
            from None
    return Command(seq, name, _validated_value(name, value))


def encode_command(command: Command) -> bytes:
    """Serialise a command as a JSON datagram."""
    value = list(command.value) if isinstance(command.value, tuple) else command.value
    return json.dumps({"seq": command.seq, "cmd": command.cmd.value, "value": value}).encode()


def _json_object(datagram: bytes) -> dict:
    if len(datagram) > MAX_DATAGRAM:
        raise WireError("too_large", f"datagram of {len(datagram)} bytes")
    try:
        message = json.loads(datagram)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError("malformed_json", str(error)) from None
    if not isinstance(message, dict):
        raise WireError("malformed_json", "top level must be an object")
    return message


def request_seq(datagram: bytes) -> int | None:
    """Best-effort seq of a datagram that failed validation, for addressing the negative ack."""
    try:
        seq = _json_object(datagram).get("seq")
    except WireError:
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def parse_command(datagram: bytes) -> Command:
    """Parse and validate a command datagram; raise ``WireError`` with the first defect."""
    message = _json_object(datagram)
    unknown = message.keys() - _COMMAND_KEYS
    if unknown:
        raise WireError("unknown_field", f"unexpected fields {sorted(unknown)}")
    for key in ("seq", "cmd"):
        if key not in message:
            raise WireError("missing_field", f"{key!r} is required")
    return make_command(message["seq"], message["cmd"], message.get("value"))


def encode_ack(ack: Ack) -> bytes:
    """Serialise an ack as a JSON datagram."""
    return json.dumps({"seq": ack.seq, "ok": ack.ok, "error": ack.error}).encode()


def parse_ack(datagram: bytes) -> Ack:
    """Parse an ack datagram; raise ``WireError`` if it is malformed."""
    message = _json_object(datagram)
    seq, ok, error = message.get("seq"), message.get("ok"), message.get("error")
    if (seq is not None and (isinstance(seq, bool) or not isinstance(seq, int))) or not isinstance(ok, bool) \
            or not (error is None or isinstance(error, str)):
        raise WireError("bad_ack", f"malformed ack {message!r}")
    return Ack(seq, ok, error)
