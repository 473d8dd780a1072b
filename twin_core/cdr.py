"""The wire form (CDR) of the message types on the twin's busiest paths, to and from numpy:
``sensor_msgs/Imu`` and ``JointState`` (kilohertz) and ``twin_interfaces/SyncedFrame`` (every
frame, to the state and the analytics).

rclpy turns each received message into Python objects and each published one into a C struct
field by field; for a ``sensor_msgs/Imu`` at 1 kHz that conversion is most of what a node spends
per message. Subscriptions created with ``raw=True`` hand over the serialized bytes and
``Publisher.publish`` takes bytes, so the hot paths read and write them here instead.

Decoding reads plain CDR (XCDR1) and plain XCDR2 in either byte order, the encodings ROS 2's
rmw implementations use for these types; any other encapsulation raises
:class:`UnsupportedEncoding`, so that a caller can fall back to rclpy's deserialization. A buffer
too short for what it announces raises :class:`ValueError`. Encoding writes little-endian XCDR1,
what rmw_fastrtps writes; rclpy's ``deserialize_message`` reads it back (the tests check both ways).
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from twin_core.stamps import NS_PER_S

ENCAPSULATION = 4  # bytes before the payload: representation id (2) and options (2)
CDR_LE = b'\x00\x01\x00\x00'
IMU_DOUBLES = 37  # an Imu's doubles in message order, each field's slice below
IMU_ORIENTATION, IMU_ORIENTATION_COVARIANCE = slice(0, 4), slice(4, 13)
IMU_ANGULAR_VELOCITY, IMU_ANGULAR_VELOCITY_COVARIANCE = slice(13, 16), slice(16, 25)
IMU_LINEAR_ACCELERATION, IMU_LINEAR_ACCELERATION_COVARIANCE = slice(25, 28), slice(28, 37)
PLAIN_ENCODINGS = (b'\x00\x00', b'\x00\x01', b'\x00\x06', b'\x00\x07')  # the first two bytes this module reads
_ENCODINGS = {0x0000: ('>', 8), 0x0001: ('<', 8),  # XCDR1: byte order, alignment of 8-byte values
              0x0006: ('>', 4), 0x0007: ('<', 4)}  # plain XCDR2
_STAMP = {'<': struct.Struct('<iI'), '>': struct.Struct('>iI')}
_UINT32 = {'<': struct.Struct('<I'), '>': struct.Struct('>I')}
_DOUBLE = {'<': struct.Struct('<d'), '>': struct.Struct('>d')}
MAX_STRING_SEQUENCES = 64
_STRING_SEQUENCES: dict[tuple[str, int], tuple[bytes, tuple[str, ...]]] = {}  # (byte order, count) -> (bytes, strings)


class UnsupportedEncoding(ValueError):
    """The buffer's encapsulation is none this module reads."""


@dataclass(frozen=True, slots=True)
class ImuWire:
    """A decoded ``sensor_msgs/Imu``: ``values`` holds its :data:`IMU_DOUBLES` doubles in
    message order (:data:`IMU_ORIENTATION` and the other slices), a read-only view of the buffer.
    """

    stamp_ns: int
    frame_id: str
    values: np.ndarray


@dataclass(frozen=True, slots=True)
class JointStateWire:
    """A decoded ``sensor_msgs/JointState``; the arrays are read-only views of the buffer."""

    stamp_ns: int
    frame_id: str
    name: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


class TimeWire(NamedTuple):
    """A ``builtin_interfaces/Time``."""

    sec: int
    nanosec: int


class HeaderWire(NamedTuple):
    """A ``std_msgs/Header``."""

    stamp: TimeWire
    frame_id: str


class SensorSampleWire(NamedTuple):
    """A decoded ``twin_interfaces/SensorSample`` (``values``: a read-only view of the buffer)."""

    topic: str
    type: str
    stamp: TimeWire
    age: float
    quality: int
    names: tuple[str, ...]
    values: np.ndarray


class SyncedFrameWire(NamedTuple):
    """A decoded ``twin_interfaces/SyncedFrame``, with the message's field names."""

    header: HeaderWire
    samples: tuple[SensorSampleWire, ...]
    max_skew: float
    complete: bool


class FrameSampleFields(NamedTuple):
    """What :func:`encode_synced_frame` writes of one ``SensorSample``."""

    topic: str
    type: str
    stamp_ns: int
    age: float
    quality: int
    names: tuple[str, ...]
    values: np.ndarray


class _Reader:
    """A cursor over one CDR payload; offsets count from the end of the encapsulation."""

    __slots__ = ('data', 'order', 'align8', 'offset')

    def __init__(self, data: bytes | memoryview) -> None:
        data = bytes(data)  # no copy for bytes
        if len(data) < ENCAPSULATION:
            raise ValueError(f'{len(data)} bytes: no CDR encapsulation header')
        encoding = _ENCODINGS.get(int.from_bytes(data[:2], 'big'))
        if encoding is None:
            raise UnsupportedEncoding(f'CDR representation 0x{data[:2].hex()} is not plain CDR')
        self.data = data
        self.order, self.align8 = encoding
        self.offset = 0

    def _need(self, size: int, alignment: int = 1) -> int:
        """The buffer index of the next ``size`` bytes, after padding to ``alignment``."""
        offset = self.offset + -self.offset % alignment
        start = ENCAPSULATION + offset
        if start + size > len(self.data):
            raise ValueError(f'CDR buffer of {len(self.data)} bytes ends inside a field at byte {start}')
        self.offset = offset + size
        return start

    def uint32(self) -> int:
        return int(_UINT32[self.order].unpack_from(self.data, self._need(4, 4))[0])

    def stamp_ns(self) -> int:
        sec, nanosec = _STAMP[self.order].unpack_from(self.data, self._need(8, 4))
        return int(sec) * NS_PER_S + int(nanosec)

    def time(self) -> TimeWire:
        return TimeWire(*_STAMP[self.order].unpack_from(self.data, self._need(8, 4)))

    def double(self) -> float:
        return float(_DOUBLE[self.order].unpack_from(self.data, self._need(8, self.align8))[0])

    def octet(self) -> int:
        return self.data[self._need(1)]

    def string(self) -> str:
        size = self.uint32()
        start = self._need(size)
        if size == 0 or self.data[start + size - 1] != 0:
            raise ValueError(f'CDR string at byte {start} is not null-terminated')
        return self.data[start:start + size - 1].decode()

    def doubles(self, count: int) -> np.ndarray:
        # an empty sequence has no padding before its (absent) values
        return np.frombuffer(self.data, f'{self.order}f8', count, self._need(8 * count, self.align8 if count else 1))

    def double_sequence(self) -> np.ndarray:
        return self.doubles(self.uint32())

    def strings(self) -> tuple[str, ...]:
        """A string sequence; a stream repeats the same names, so the bytes of the last few
        sequences are kept and a repeat is recognised without decoding it.
        """
        count = self.uint32()
        start = ENCAPSULATION + self.offset
        key = (self.order, count)
        known = _STRING_SEQUENCES.get(key)
        if known is not None and self.data.startswith(known[0], start):
            self.offset += len(known[0])
            return known[1]
        strings = tuple(self.string() for _ in range(count))
        if len(_STRING_SEQUENCES) >= MAX_STRING_SEQUENCES:
            _STRING_SEQUENCES.clear()
        _STRING_SEQUENCES[key] = (self.data[start:ENCAPSULATION + self.offset], strings)
        return strings


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp (ns) of any message whose first field is a ``std_msgs/Header``."""
    return _Reader(data).stamp_ns()


def decode_imu(data: bytes | memoryview) -> ImuWire:
    """A serialized ``sensor_msgs/Imu``."""
    reader = _Reader(data)
    stamp_ns = reader.stamp_ns()
    return ImuWire(stamp_ns, reader.string(), reader.doubles(IMU_DOUBLES))


def decode_joint_state(data: bytes | memoryview) -> JointStateWire:
    """A serialized ``sensor_msgs/JointState``."""
    reader = _Reader(data)
    stamp_ns = reader.stamp_ns()
    frame_id = reader.string()
    return JointStateWire(stamp_ns, frame_id, reader.strings(), reader.double_sequence(),
                          reader.double_sequence(), reader.double_sequence())


def decode_synced_frame(data: bytes | memoryview) -> SyncedFrameWire:
    """A serialized ``twin_interfaces/SyncedFrame``."""
    reader = _Reader(data)
    header = HeaderWire(reader.time(), reader.string())
    samples = tuple(SensorSampleWire(reader.string(), reader.string(), reader.time(), reader.double(),
                                     reader.octet(), reader.strings(), reader.double_sequence())
                    for _ in range(reader.uint32()))
    max_skew = reader.double()
    return SyncedFrameWire(header, samples, max_skew, bool(reader.octet()))


def _stamp_bytes(stamp_ns: int) -> bytes:
    sec, nanosec = divmod(stamp_ns, NS_PER_S)
    return _STAMP['<'].pack(sec, nanosec)


def _string(text: str, offset: int) -> bytes:
    """A CDR string written at payload ``offset``, with the padding before it."""
    encoded = text.encode() + b'\x00'
    return bytes(-offset % 4) + _UINT32['<'].pack(len(encoded)) + encoded


@lru_cache(maxsize=16)
def _imu_frame(frame_id: str) -> bytes:
    """The frame id and the padding up to the doubles (the payload's stamp comes before)."""
    text = _string(frame_id, 8)
    return text + bytes(-(8 + len(text)) % 8)


def encode_imu(stamp_ns: int, frame_id: str, values: np.ndarray) -> bytes:
    """A ``sensor_msgs/Imu`` from its :data:`IMU_DOUBLES` doubles in message order."""
    if values.shape != (IMU_DOUBLES,):
        raise ValueError(f'an Imu has {IMU_DOUBLES} doubles, not {values.shape}')
    return b''.join((CDR_LE, _stamp_bytes(stamp_ns), _imu_frame(frame_id), values.astype('<f8').tobytes()))


@lru_cache(maxsize=16)
def _joint_state_names(frame_id: str, names: tuple[str, ...]) -> bytes:
    """Frame id, the names and the position count's padding (the payload's stamp comes before)."""
    parts = [_string(frame_id, 8)]
    offset = 8 + len(parts[0])
    parts.append(bytes(-offset % 4) + _aligned_strings(names))
    offset += len(parts[-1])
    parts.append(bytes(-offset % 4))
    return b''.join(parts)


def encode_joint_state(stamp_ns: int, frame_id: str, names: Sequence[str], position: np.ndarray,
                       velocity: np.ndarray, effort: np.ndarray) -> bytes:
    """A ``sensor_msgs/JointState``; each array has one value per name or none."""
    head = _joint_state_names(frame_id, tuple(names))
    parts = [CDR_LE, _stamp_bytes(stamp_ns), head]
    offset = 8 + len(head)
    for array in (position, velocity, effort):
        count = len(array)
        if count not in (0, len(names)):
            raise ValueError(f'{count} values for {len(names)} joint names')
        padding = -(offset + 4) % 8 if count else 0
        parts += (_UINT32['<'].pack(count), bytes(padding), np.asarray(array, '<f8').tobytes())
        offset += 4 + padding + 8 * count  # a multiple of 4: the next count needs no padding
    return b''.join(parts)


@lru_cache(maxsize=256)
def _aligned_string(text: str) -> bytes:
    """A CDR string starting at a multiple of 4 (its length, its bytes, the null)."""
    return _string(text, 0)


@lru_cache(maxsize=64)
def _aligned_strings(names: tuple[str, ...]) -> bytes:
    """A CDR string sequence starting at a multiple of 4."""
    parts = [_UINT32['<'].pack(len(names))]
    offset = 4
    for name in names:
        parts.append(bytes(-offset % 4) + _aligned_string(name))
        offset += len(parts[-1])
    return b''.join(parts)


class _Writer:
    """Little-endian XCDR1 parts and the payload offset they reach."""

    __slots__ = ('parts', 'offset')

    def __init__(self) -> None:
        self.parts: list[bytes] = [CDR_LE]
        self.offset = 0

    def put(self, data: bytes, alignment: int = 1) -> None:
        padding = -self.offset % alignment
        if padding:
            self.parts.append(bytes(padding))
        self.parts.append(data)
        self.offset += padding + len(data)

    def double_sequence(self, values: np.ndarray) -> None:
        self.put(_UINT32['<'].pack(len(values)), 4)
        if len(values):
            self.put(np.asarray(values, '<f8').tobytes(), 8)


def encode_synced_frame(stamp_ns: int, frame_id: str, samples: Sequence[FrameSampleFields], max_skew: float,
                        complete: bool) -> bytes:
    """A ``twin_interfaces/SyncedFrame``."""
    writer = _Writer()
    writer.put(_stamp_bytes(stamp_ns))
    writer.put(_aligned_string(frame_id), 4)
    writer.put(_UINT32['<'].pack(len(samples)), 4)
    for sample in samples:
        writer.put(_aligned_string(sample.topic), 4)
        writer.put(_aligned_string(sample.type), 4)
        writer.put(_stamp_bytes(sample.stamp_ns), 4)
        writer.put(_DOUBLE['<'].pack(sample.age), 8)
        writer.put(bytes((sample.quality,)))
        writer.put(_aligned_strings(sample.names), 4)
        writer.double_sequence(sample.values)
    writer.put(_DOUBLE['<'].pack(max_skew), 8)
    writer.put(b'\x01' if complete else b'\x00')
    return b''.join(writer.parts)
