"""Devices that send one binary frame per UDP datagram (lidar scans, the controller's plan)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twin_sensors.stats import DriverStats
from twin_sensors.wire import FrameDecoder, WireError

T = TypeVar('T')


class DatagramStream(Generic[T]):
    """Decodes each datagram on its own: a truncated frame never joins the next datagram."""

    def __init__(self, stats: DriverStats, msg_type: int, decode: Callable[[bytes], T],
                 max_payload: int | None = None) -> None:
        self.stats = stats
        self._decode = decode
        self.decoder = (FrameDecoder(known_types=(msg_type,)) if max_payload is None
                        else FrameDecoder(known_types=(msg_type,), max_payload=max_payload))

    def feed(self, datagram: bytes) -> list[T]:
        out = []
        for frame in self.decoder.feed(datagram):
            try:
                out.append(self._decode(frame.payload))
            except WireError as error:
                self.stats.error(error.reason, str(error), payload=frame.payload)
        if self.decoder.discard_partial():
            self.stats.error('truncated', 'datagram ends inside a frame', payload=datagram)
        self.stats.messages += len(out)
        return out
