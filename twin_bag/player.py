"""Replay core: a bag's messages at their recorded spacing (scaled by a rate), optionally
looped, with a callback for the bag time (``/clock``) between messages.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.interfaces import ConnectionExtRosbag2

from twin_bag.config import qos_name
from twin_core.stamps import from_seconds, to_seconds


@dataclass(frozen=True)
class BagTopic:
    """A replayed topic: its type and QoS (sensor_data, reliable or latched, as recorded)."""

    name: str
    msgtype: str
    qos: str


class Playback:
    """An open bag restricted to ``topics`` (empty: all); ``ValueError`` names a topic the
    bag does not hold. Close it with :meth:`close`.
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

    def run(self, publish: Callable[[str, bytes], None], rate: float, loop: bool,
            stop: threading.Event, clock: Callable[[int], None] | None = None,
            clock_period_s: float = 0.01) -> int:
        """Publish every message at ``start + (stamp - bag start) / rate``; call
        ``clock(bag time ns)`` every ``clock_period_s`` (with the first message, between
        messages and with the stamp of a message once a period has passed, so a message runs
        ahead of the clock by less than a period) and with the last message's stamp.
        Returns the number published when the bag ends (never with ``loop``) or ``stop`` is set.
        """
        played = 0
        start_ns = self._reader.start_time
        clocked = -math.inf  # monotonic time of the last clock tick

        def tick(stamp_ns: int) -> None:
            nonlocal clocked
            assert clock is not None
            clock(stamp_ns)
            clocked = time.monotonic()

        while True:
            start, clocked, stamp_ns = time.monotonic(), -math.inf, start_ns
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
                publish(connection.topic, bytes(data))
                played += 1
            if clock:
                tick(stamp_ns)
            if not loop:
                return played

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()
