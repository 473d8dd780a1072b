"""Replay core: a bag's messages at their recorded spacing (scaled by a rate), optionally
looped and restamped to the time they play at, with a callback for the bag time (``/clock``)
between messages.
"""
from __future__ import annotations

import math
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.interfaces import ConnectionExtRosbag2, Nodetype

from twin_bag.config import qos_name
from twin_core.stamps import NS_PER_S, from_seconds, to_seconds

HEADER = 'std_msgs/msg/Header'
CDR_HEADER = 4  # encapsulation: representation id and options; the message follows
STAMP = {0: struct.Struct('>iI'), 1: struct.Struct('<iI')}  # Time (sec, nanosec) by CDR byte order


@dataclass(frozen=True)
class BagTopic:
    """A replayed topic: its type and QoS (sensor_data, reliable or latched, as recorded)."""

    name: str
    msgtype: str
    qos: str


def restamped(data: bytes, origin_ns: int, to_ns: int, rate: float) -> bytes:
    """``data``, a CDR message whose first field is a ``std_msgs/Header``, with its stamp moved
    from ``origin_ns + d`` to ``to_ns + d / rate``; ``ValueError`` if it is too short or not CDR.
    """
    if len(data) < CDR_HEADER + STAMP[1].size or data[:2] not in (b'\x00\x00', b'\x00\x01'):
        raise ValueError(f'not a CDR message with a header ({len(data)} bytes)')
    layout = STAMP[data[1]]
    sec, nanosec = layout.unpack_from(data, CDR_HEADER)
    patched = bytearray(data)
    stamp_ns = to_ns + round((sec * NS_PER_S + nanosec - origin_ns) / rate)
    layout.pack_into(patched, CDR_HEADER, *divmod(stamp_ns, NS_PER_S))
    return bytes(patched)


class Playback:
    """An open bag restricted to ``topics`` (empty: all); ``ValueError`` names a topic the
    bag does not hold. Close it with :meth:`close`.

    While it plays, ``published`` counts the messages published per topic (every topic has
    its key from the start) and ``passes`` the passes through the bag completed.
    """

    def __init__(self, path: Path, topics: Sequence[str] = ()) -> None:
        self._reader = AnyReader([path])
        self._reader.open()
        recorded = {c.topic for c in self._reader.connections}
        missing = sorted(set(topics) - recorded)
        if missing:
            self._reader.close()
            raise ValueError(f'{missing} not in {path} (it holds {sorted(recorded)})')
        self._connections = [c for c in self._reader.connections
                             if not topics or c.topic in topics]
        self.topics: dict[str, BagTopic] = {}
        for c in self._connections:
            if not isinstance(c.ext, ConnectionExtRosbag2):  # its messages are not CDR
                self._reader.close()
                raise ValueError(f'{path} is a ROS 1 bag: only rosbag2 bags are played')
            self.topics[c.topic] = BagTopic(c.topic, c.msgtype, qos_name(c.ext.offered_qos_profiles))
        fields = self._reader.typestore.fielddefs
        self._stamped = {c.topic for c in self._connections
                         if fields[c.msgtype][1][:1] and fields[c.msgtype][1][0][1] == (Nodetype.NAME, HEADER)}
        self.published: Counter[str] = Counter(dict.fromkeys(self.topics, 0))
        self.passes = 0

    @property
    def loop_period_ns(self) -> int:
        """How long one pass of a loop lasts at rate 1: the bag's span plus the mean spacing of
        its busiest topic, so that topic keeps its spacing across the seam.
        """
        span = self._reader.end_time - self._reader.start_time
        busiest = max((c.msgcount for c in self._connections), default=0)
        return span + (span // (busiest - 1) if busiest > 1 else 0)

    def run(self, publish: Callable[[str, bytes], None], rate: float, loop: bool,
            stop: threading.Event, clock: Callable[[int], None] | None = None,
            clock_period_s: float = 0.01, restamp: bool = False) -> int:
        """Publish every message at ``start + (stamp - bag start) / rate``; pass k of a loop
        starts at ``start + k * loop_period / rate`` (no drift, however long it runs).
        With ``restamp``, each header stamp becomes the wall-clock time its recorded instant
        plays at (on the same scale), so the messages look live and stamps keep rising over
        passes. Call ``clock(bag time ns)`` every ``clock_period_s`` (with the first message,
        between messages and with the stamp of a message once a period has passed, so a
        message runs ahead of the clock by less than a period) and with the last message's stamp.
        Returns the number published when the bag ends (never with ``loop``) or ``stop`` is set.
        """
        played = passes = 0  # in this run
        start_ns = self._reader.start_time
        first_pass, first_pass_wall_ns = time.monotonic(), time.time_ns()
        clocked = -math.inf  # monotonic time of the last clock tick

        def tick(stamp_ns: int) -> None:
            nonlocal clocked
            assert clock is not None
            clock(stamp_ns)
            clocked = time.monotonic()

        while True:
            offset_s = to_seconds(passes * self.loop_period_ns) / rate
            start, clocked, stamp_ns = first_pass + offset_s, -math.inf, start_ns
            wall_start_ns = first_pass_wall_ns + from_seconds(offset_s)
            for connection, stamp_ns, data in self._reader.messages(connections=self._connections):
                due = start + to_seconds(stamp_ns - start_ns) / rate
                while (remaining := due - time.monotonic()) > 0:
                    if stop.wait(min(remaining, clock_period_s) if clock else remaining):
                        return played
                    if clock:
                        tick(min(stamp_ns, start_ns + from_seconds((time.monotonic() - start) * rate)))
                if stop.is_set():
                    return played
                if clock and time.monotonic() - clocked >= clock_period_s:
                    tick(stamp_ns)
                message = bytes(data)
                if restamp and connection.topic in self._stamped:
                    try:
                        message = restamped(message, start_ns, wall_start_ns, rate)
                    except ValueError as error:
                        raise ValueError(f'{connection.topic} at {stamp_ns} ns: {error}') from None
                publish(connection.topic, message)
                self.published[connection.topic] += 1
                played += 1
            passes += 1
            self.passes += 1
            if clock:
                tick(stamp_ns)
            if not loop:
                return played

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()
