"""Read a run from a rosbag2 bag (as ``twin_record`` writes it) into :class:`~twin_report.series.Run`.

Message definitions come from the bag itself (rosbags ``AnyReader``, as ``twin_play`` reads
bags), so a bag is readable without the twin's interfaces installed.
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys.store import Typestore

from twin_bridge.spool import NS
from twin_report.series import TOPICS, Run, build_run


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


def read_run(path: Path) -> Run:
    """The report's topics of the bag at ``path``; ``ValueError`` if it is no readable bag, holds
    no messages or a report topic has an unexpected type.
    """
    try:
        with AnyReader([Path(path)]) as reader:
            counts = Counter({c.topic: c.msgcount for c in reader.connections})
            if not counts.total():
                raise ValueError(f'{path}: the bag holds no messages')
            connections = [c for c in reader.connections if c.topic in TOPICS]
            for connection in connections:
                expected = TOPICS[connection.topic]
                if connection.msgtype != expected:
                    raise ValueError(f'{path}: {connection.topic} is {connection.msgtype}, '
                                     f'expected {expected}')
            messages: dict[str, list[object]] = {}
            for connection, _, raw in reader.messages(connections=connections):
                messages.setdefault(connection.topic, []).append(
                    deserialize(reader.typestore, raw, connection.msgtype))
            start, end = reader.start_time / NS, reader.end_time / NS
    except AnyReaderError as error:
        raise ValueError(f'{path}: {error}') from None
    return build_run(str(path), start, end, counts, messages)
