"""Read messages from a rosbag2 bag (as ``twin_record`` writes it) without ROS.

Message definitions come from the bag itself (rosbags ``AnyReader``, as ``twin_play`` reads
bags), so a bag is readable without the twin's interfaces installed.
"""
from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys.store import Typestore

from twin_core.stamps import to_seconds


def deserialize(typestore: Typestore, raw: bytes | memoryview, msgtype: str) -> object:
    """A CDR message, ignoring trailing padding: rclpy pads a message that ends in an empty
    sequence with more bytes than rosbags' ``deserialize_cdr`` accepts.
    """
    if len(raw) < 4 or bytes(raw[:2]) not in (b'\x00\x00', b'\x00\x01'):
        raise ValueError(f'{msgtype}: not a CDR message')
    definition = typestore.get_msgdef(msgtype)
    decode = definition.deserialize_cdr_le if raw[1] else definition.deserialize_cdr_be
    try:
        return decode(raw[4:], 0, definition.cls, typestore)[0]
    except (struct.error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f'{msgtype}: undecodable message ({error})') from None


@dataclass(frozen=True)
class BagContents:
    """Messages of the requested topics in bag order, message counts of every topic, time span (s)."""

    messages: dict[str, list[object]]
    counts: Counter[str]
    start: float
    end: float


def read_topics(path: Path, topics: Mapping[str, str]) -> BagContents:
    """The messages of ``topics`` (name -> expected type) in the bag at ``path``; ``ValueError``
    if it is no readable bag, holds no messages or a topic has another type.
    """
    try:
        with AnyReader([Path(path)]) as reader:
            counts = Counter({c.topic: c.msgcount for c in reader.connections})
            if not counts.total():
                raise ValueError(f'{path}: the bag holds no messages')
            connections = [c for c in reader.connections if c.topic in topics]
            for connection in connections:
                if connection.msgtype != topics[connection.topic]:
                    raise ValueError(f'{path}: {connection.topic} is {connection.msgtype}, '
                                     f'expected {topics[connection.topic]}')
            messages: dict[str, list[object]] = {}
            for connection, _, raw in reader.messages(connections=connections):
                messages.setdefault(connection.topic, []).append(
                    deserialize(reader.typestore, raw, connection.msgtype))
            return BagContents(messages, counts, to_seconds(reader.start_time), to_seconds(reader.end_time))
    except AnyReaderError as error:
        raise ValueError(f'{path}: {error}') from None
