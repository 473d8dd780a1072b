"""camera_check node: the cell camera against the twin.

In: camera/image_raw/compressed and camera/camera_info (camera_driver), twin/joint_states (the
twin's). Out: twin/camera/tool_pose (the tool plate as the camera sees it) beside
twin/camera/twin_tool_pose (the same plate at the twin's joint positions, at the frame's stamp),
both in base_link; twin/camera/discrepancy (CameraDiscrepancy at the frame's stamp in base_link: mm
in the image at the plate's distance, px, mm between the plate centres and the twin/camera clock
offset fitted, per judged frame: a signal for analytics);
twin/anomalies (method ``camera``) and /diagnostics.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, JointState
from std_msgs.msg import Header

from twin_anomaly.anomaly import AnomalyEvent
from twin_anomaly.camera_check import CameraCheck, CameraCheckConfig, Judged
from twin_core.config import ConfigError
from twin_core.kinematics import BASE_FRAME, ArmKinematics, Pose
from twin_core.stamps import from_msg, from_seconds
from twin_core.urdf import urdf_file
from twin_interfaces.msg import AnomalyEvent as AnomalyEventMsg
from twin_interfaces.msg import CameraDiscrepancy
from twin_ros.common import SENSOR_INPUT, declare_config, run, status
from twin_ros.poses import pose_msg
from twin_ros.stamps import to_msg
from twin_sensors.camera_info import CameraCalibration


def calibration_of(info: CameraInfo) -> CameraCalibration:
    return CameraCalibration(info.header.frame_id, info.width, info.height, tuple(info.k), tuple(info.d),
                             tuple(info.r), tuple(info.p), info.distortion_model or 'plumb_bob')


class CameraCheckNode(Node):
    def __init__(self) -> None:
        super().__init__('camera_check')
        self._config = declare_config(self, CameraCheckConfig)
        self._frame = self._config.frame_prefix + BASE_FRAME
        urdf = urdf_file(self._config.urdf)
        if not urdf.is_file():
            raise ConfigError(f'{self.get_name()}.urdf: no such file: {urdf}')
        try:
            self._check = CameraCheck(self._config, ArmKinematics.from_urdf(urdf))
        except ValueError as error:
            raise ConfigError(f'{self.get_name()}: {error}') from None
        self._seen = self.create_publisher(PoseStamped, 'twin/camera/tool_pose', 10)
        self._twin = self.create_publisher(PoseStamped, 'twin/camera/twin_tool_pose', 10)
        self._discrepancy = self.create_publisher(CameraDiscrepancy, 'twin/camera/discrepancy', 10)
        self._events = self.create_publisher(AnomalyEventMsg, 'twin/anomalies', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_subscription(CompressedImage, 'camera/image_raw/compressed', self._on_image,
                                 qos_profile_sensor_data)
        self.create_subscription(CameraInfo, 'camera/camera_info', self._on_info, qos_profile_sensor_data)
        self.create_subscription(JointState, 'twin/joint_states', self._on_joint_state, SENSOR_INPUT)
        self.create_timer(1.0 / self._config.diagnostics_rate_hz, self._publish_diagnostics)

    def _on_info(self, info: CameraInfo) -> None:
        try:
            self._check.calibrate(calibration_of(info))
        except ValueError as error:
            self._check.rejection = f'camera_info: {error}'

    def _on_image(self, image: CompressedImage) -> None:
        self._publish(self._check.frame(from_msg(image.header.stamp), bytes(image.data)))

    def _on_joint_state(self, state: JointState) -> None:
        self._publish(self._check.twin_state(from_msg(state.header.stamp), state.name, state.position,
                                             state.velocity))

    def _publish(self, judged: list[Judged]) -> None:
        for frame in judged:
            header = Header(stamp=to_msg(frame.stamp), frame_id=self._frame)
            comparison = frame.comparison
            self._twin.publish(PoseStamped(header=header, pose=pose_msg(Pose.from_matrix(comparison.twin_plate))))
            if comparison.seen_plate is None:
                continue
            self._seen.publish(PoseStamped(header=header, pose=pose_msg(Pose.from_matrix(comparison.seen_plate))))
            self._discrepancy.publish(CameraDiscrepancy(
                header=header, image_mm=float(comparison.reprojection_mm), image_px=float(comparison.reprojection_px),
                position_mm=float(comparison.position_mm), offset_ms=1e3 * frame.offset))
            for event in frame.events:
                self._publish_event(event)

    def _publish_event(self, event: AnomalyEvent) -> None:
        self._events.publish(AnomalyEventMsg(
            header=Header(stamp=to_msg(from_seconds(event.stamp)), frame_id=self._frame), sensor=event.sensor,
            method=event.method, score=float(event.score), threshold=event.threshold,
            severity=int(event.severity), description=event.description, active=event.active))

    def _publish_diagnostics(self) -> None:
        report = self._check.report()
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[
            status(f'{self.get_name()}: {report.name}', report.level, report.message, values=report.values)]))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(CameraCheckNode, 'camera_check', args)
