"""imu_driver node: IMU CSV lines on a serial port to sensor_msgs/Imu on imu/data."""
from __future__ import annotations

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu

from twin_core import cdr
from twin_ros.common import run
from twin_sensors.driver_node import DriverNode
from twin_sensors.imu import ImuConfig, ImuStream


class ImuDriver(DriverNode):
    """Reads the IMU in a thread and publishes each calibrated reading as it arrives (written
    straight into the message's wire form: a third of the cost of an rclpy message).
    """

    def __init__(self) -> None:
        super().__init__('imu_driver', ImuConfig)
        self._stream = ImuStream(self.config, self.stats)
        self._values = np.zeros(cdr.IMU_DOUBLES)
        self._values[cdr.IMU_ORIENTATION_COVARIANCE.start] = -1.0  # no orientation estimate
        self._values[cdr.IMU_ANGULAR_VELOCITY_COVARIANCE] = self._stream.gyro_covariance
        self._values[cdr.IMU_LINEAR_ACCELERATION_COVARIANCE] = self._stream.accel_covariance
        self._publisher = self.create_publisher(Imu, 'imu/data', qos_profile_sensor_data)
        self.attach_serial(self._on_data)

    def restart_stream(self) -> None:
        self._stream.restart()

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        values, frame_id = self._values, self.config.frame_id
        for reading in self._stream.feed(chunk):
            values[cdr.IMU_LINEAR_ACCELERATION] = reading.values[:3]
            values[cdr.IMU_ANGULAR_VELOCITY] = reading.values[3:]
            stamp_ns = self.stamper.stamp(receive_ns, reading.device_time)
            self.publish(self._publisher, cdr.encode_imu(stamp_ns, frame_id, values))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(ImuDriver, 'imu_driver', args)
