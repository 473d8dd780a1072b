"""encoder_driver node: encoder frames on a serial port to sensor_msgs/JointState on encoders/joint_states."""
from __future__ import annotations

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from twin_core import cdr
from twin_ros.common import run
from twin_sensors.driver_node import DriverNode
from twin_sensors.encoders import EncoderConfig, EncoderStream
from twin_sensors.stats import frame_decoder_values


class EncoderDriver(DriverNode):
    """Reads the encoder interface in a thread and publishes each frame as a JointState."""

    def __init__(self) -> None:
        super().__init__('encoder_driver', EncoderConfig)
        self._stream = EncoderStream(self.config, self.stats)
        self._names = tuple(self.config.joint_names)
        self._publisher = self.create_publisher(JointState, 'encoders/joint_states', qos_profile_sensor_data)
        self.attach_serial(self._on_data)

    def restart_stream(self) -> None:
        self._stream.restart()

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        for sample in self._stream.feed(chunk):  # written straight into the message's wire form
            stamp_ns = self.stamper.stamp(receive_ns, sample.device_time)
            self.publish(self._publisher, cdr.encode_joint_state(
                stamp_ns, '', self._names, sample.positions, sample.velocities, sample.efforts))

    def extra_values(self) -> dict[str, int]:
        return frame_decoder_values(self._stream.decoder)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(EncoderDriver, 'encoder_driver', args)
