"""Lidar driver core: one framed scan per UDP datagram to REP 117 ranges."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_sensors.datagrams import DatagramStream
from twin_sensors.readers import UdpConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig
from twin_sensors.wire import LidarScan, MsgType, decode_lidar_payload


@dataclass(frozen=True)
class LidarConfig:
    """Parameters of the lidar_driver node."""

    udp: UdpConfig = field(default_factory=UdpConfig)
    frame_id: str = field(default='laser', metadata=describe('frame_id of the published scans.'))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)


class LidarStream(DatagramStream[LidarScan]):
    """One framed scan per datagram."""

    def __init__(self, stats: DriverStats) -> None:
        super().__init__(stats, MsgType.LIDAR, decode_lidar_payload)
