"""camera_driver node: an MJPEG-over-HTTP camera, or a device, RTSP stream or video file read through
OpenCV, to sensor_msgs/CompressedImage and CameraInfo.
"""
from __future__ import annotations

from typing import Any

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import Header

from twin_core.levels import Level
from twin_ros.common import run
from twin_sensors.camera import CameraConfig, CameraStream, MjpegReader
from twin_sensors.camera_info import CameraCalibration, load_camera_info
from twin_sensors.capture import HTTP, CaptureReader
from twin_sensors.driver_node import DriverNode


def camera_info_message(calibration: CameraCalibration) -> CameraInfo:
    return CameraInfo(width=calibration.width, height=calibration.height,
                      distortion_model=calibration.distortion_model, d=list(calibration.d),
                      k=list(calibration.k), r=list(calibration.r), p=list(calibration.p))


class CameraDriver(DriverNode):
    """Reads the camera in a thread; publishes each JPEG (an MJPEG part as it came, an OpenCV source's
    frame as encoded) with the calibration beside it.
    """

    def __init__(self) -> None:
        super().__init__('camera_driver', CameraConfig)
        self._info = camera_info_message(load_camera_info(self.config.required_paths()['camera_info']))
        self._stream = CameraStream(self.config, self.stats)
        self._images = self.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                             qos_profile_sensor_data)
        self._infos = self.create_publisher(CameraInfo, 'camera/camera_info', qos_profile_sensor_data)
        source = self.config.source
        self._mjpeg: MjpegReader | None = None
        self._capture: CaptureReader | None = None
        if source.kind == HTTP:
            self._mjpeg = MjpegReader(self.config, self._on_data, self.on_state, self.now_ns, self.workers)
            self.attach(self._mjpeg, self._mjpeg.source)
        else:
            self._capture = CaptureReader(source, self.config.jpeg_quality, self.config.stall_timeout, self.stats,
                                          self._on_jpeg, self.on_state, self.now_ns, self.workers)
            self.attach(self._capture, self._capture.source)

    def restart_stream(self) -> None:
        if self._mjpeg is not None:
            self._stream.reset(self._mjpeg.boundary)

    def _on_data(self, chunk: bytes, receive_ns: int) -> None:
        for frame in self._stream.feed(chunk, receive_ns * 1e-9):
            self._publish_frame(frame.jpeg, receive_ns, frame.device_time)

    def _on_jpeg(self, jpeg: bytes, receive_ns: int) -> None:
        frame = self._stream.check(jpeg, receive_ns * 1e-9, None)
        if frame is not None:
            self._publish_frame(frame.jpeg, receive_ns, None)

    def _publish_frame(self, jpeg: bytes, receive_ns: int, device_time: float | None) -> None:
        header = Header(stamp=self.stamp(receive_ns, device_time), frame_id=self.config.frame_id)
        self.publish(self._images, CompressedImage(header=header, format='jpeg', data=jpeg))
        self._info.header = header
        self.publish(self._infos, self._info)

    def health(self, rate: float) -> tuple[Level, str]:
        level, message = super().health(rate)
        checker = self._stream.checker
        if level is Level.OK and checker.frozen:
            return Level.WARN, f'frozen: identical frames for more than {checker.frozen_after:g} s'
        if level is Level.OK and checker.last_black:
            return Level.WARN, f'black image (mean grey level below {checker.black_level:g})'
        return level, message

    def extra_values(self) -> dict[str, Any]:
        checker = self._stream.checker
        return {'frozen': checker.frozen, 'frozen_frames': checker.frozen_frames,
                'frozen_episodes': checker.frozen_episodes, 'black_frames': checker.black_frames,
                'bytes_skipped': self._stream.parser.bytes_skipped} | ({} if self._capture is None else {
                    'frames_read': self._capture.frames, 'frame_count': self._capture.frame_count,
                    'encode_ms': self._capture.encode_ns * 1e-6 / max(self._capture.encoded, 1)})


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(CameraDriver, 'camera_driver', args)
