"""Lidar driver core: one framed scan per UDP datagram to REP 117 ranges."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_sensors.readers import UdpConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig
from twin_sensors.wire import FrameDecoder, LidarScan, MsgType, WireError, decode_lidar_payload


@dataclass(frozen=True)
class LidarConfig:
    """Parameters of the lidar_driver node."""

    udp: UdpConfig = field(default_factory=UdpConfig)
    frame_id: str = field(default='laser', metadata=describe('frame_id of the published scans.'))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)


class LidarStream:
    """Decodes each datagram on its own: a truncated frame never joins the next datagram."""

    def __init__(self, stats: DriverStats) -> None:
        self.stats = stats
        self.decoder = FrameDecoder(known_types=(MsgType.LIDAR,))

    def feed(self, datagram: bytes) -> list[LidarScan]:
        scans = []
        for frame in self.decoder.feed(datagram):
            try:
                scans.append(decode_lidar_payload(frame.payload))
            except WireError as error:
                self.stats.error(error.reason, str(error), payload=frame.payload)
        if self.decoder.discard_partial():
            self.stats.error('truncated', 'datagram ends inside a frame', payload=datagram)
        self.stats.messages += len(scans)
        return scans
