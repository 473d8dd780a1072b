"""imu_driver node: IMU CSV lines on a serial port to sensor_msgs/Imu on imu/data."""
from __future__ import annotations

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu

from twin_ros.common import run
from twin_sensors.driver_node import DriverNode
from twin_sensors.imu import ImuConfig, ImuStream


class ImuDriver(DriverNode):
    """Reads the IMU in a thread and publishes each calibrated reading as it arrives."""

    def __init__(self) -> None:
        super().__init__('imu_driver', ImuConfig)
        self._stream = ImuStream(self.config, self.stats)
        self._message = Imu()
        self._message.header.frame_id = self.config.frame_id
        self._message.orientation_covariance[0] = -1.0  # no orientation estimate
        self._message.linear_acceleration_covariance = self._stream.accel_covariance
        self._message.angular_velocity_covariance = self._stream.gyro_covariance
        self._publisher = self.create_publisher(Imu, 'imu/data', qos_profile_sensor_data)
        self.attach_serial(self._on_data)

    def restart_stream(self) -> None:
        self._stream.restart()

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        message = self._message
        accel, gyro = message.linear_acceleration, message.angular_velocity
        for reading in self._stream.feed(chunk):
            message.header.stamp = self.stamp(receive_ns, reading.device_time)
            accel.x, accel.y, accel.z, gyro.x, gyro.y, gyro.z = reading.values.tolist()
            self.publish(self._publisher, message)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(ImuDriver, 'imu_driver', args)
