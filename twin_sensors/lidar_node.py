"""lidar_driver node: framed scans in UDP datagrams to sensor_msgs/LaserScan on /scan."""
from __future__ import annotations

import array

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

from twin_ros.common import run
from twin_sensors.driver_node import DriverNode
from twin_sensors.lidar import LidarConfig, LidarStream
from twin_sensors.readers import UdpReader
from twin_sensors.stats import frame_decoder_values


class LidarDriver(DriverNode):
    """Receives scans in a thread and publishes each as a LaserScan (ranges per REP 117)."""

    def __init__(self) -> None:
        super().__init__('lidar_driver', LidarConfig)
        self._stream = LidarStream(self.stats)
        self._publisher = self.create_publisher(LaserScan, 'scan', qos_profile_sensor_data)
        reader = UdpReader(self.config.udp, self._on_data, self.on_state, self.now_ns, self.workers)
        self.attach(reader, reader.source)

    def _on_data(self, datagram: bytes, receive_ns: int) -> None:
        for scan in self._stream.feed(datagram):
            message = LaserScan(
                angle_min=scan.angle_min,
                angle_max=scan.angle_min + scan.angle_increment * (len(scan.ranges) - 1),
                angle_increment=scan.angle_increment, time_increment=0.0, scan_time=scan.scan_time,
                range_min=scan.range_min, range_max=scan.range_max,
                ranges=array.array('f', scan.ranges.astype('=f4').tobytes()))
            message.header.frame_id = self.config.frame_id
            message.header.stamp = self.stamp(receive_ns, scan.device_time)
            self.publish(self._publisher, message)

    def extra_values(self) -> dict[str, int]:
        return frame_decoder_values(self._stream.decoder)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(LidarDriver, 'lidar_driver', args)
