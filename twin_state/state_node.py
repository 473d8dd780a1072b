"""twin_state node: synchronized frames in; joint states, end-effector pose, state, markers out.

Besides the aligned output, twin/live/joint_states mirrors each joint measurement (``live_input``)
as it arrives, in the twin's joint order.

The controller's desired joint states (plan/desired_joint_states) are read at each state's stamp:
twin/state carries the desired position and velocity and the tracking error of every joint.

Markers (at markers_rate_hz): twin/markers shows the arm coloured by the active anomaly alarms,
the ghost of the arm at the desired joint positions (while a plan is known, ns desired_arm),
obstacles and maintenance labels from the maintenance schedule; twin/predicted_markers shows the ghost
of twin/predicted_trajectory (path, ghost arms, uncertainty spheres) and is cleared when
predictions stop.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PoseStamped, Vector3
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Float64MultiArray, Header, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from twin_core import cdr
from twin_core.config import ConfigError
from twin_core.kinematics import BASE_FRAME
from twin_core.levels import Level, Risk
from twin_core.stamps import from_msg, from_seconds, to_seconds
from twin_core.urdf import urdf_file
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule
from twin_interfaces.msg import TwinState as TwinStateMsg
from twin_interfaces.srv import GetHistory, GetStateAt
from twin_ros.common import (
    LATCHED,
    SENSOR_INPUT,
    SYNCED_FRAMES,
    declare_config,
    listened,
    plain_cdr,
    run,
    status,
    subscribe_synced_frames,
)
from twin_ros.poses import pose_msg
from twin_ros.stamps import to_msg
from twin_state import markers as viz
from twin_state.config import StateConfig
from twin_state.estimator import StateEstimator
from twin_state.history import HistoryError
from twin_state.live import LiveMirror
from twin_state.monitor import PLAN_INPUT, StateMonitor
from twin_state.state import TwinState


def trajectory(message: JointTrajectory) -> viz.Trajectory:
    return viz.Trajectory.from_points(
        to_seconds(from_msg(message.header.stamp)), list(message.joint_names),
        [to_seconds(from_msg(p.time_from_start)) for p in message.points], [list(p.positions) for p in message.points])


def marker(header: Header, ns: str, index: int, kind: int, colour: viz.RGBA, width: float
           ) -> Marker:
    """An ADD marker with identity pose and all scales ``width`` (line width, sphere diameter)."""
    out = Marker(header=header, ns=ns, id=index, type=kind, action=Marker.ADD,
                 color=ColorRGBA(**dict(zip('rgba', colour))))
    out.scale.x = out.scale.y = out.scale.z = width
    out.pose.orientation.w = 1.0
    return out


def points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.reshape(xyz, (-1, 3)).tolist()]


def state_msg(state: TwinState, header: Header, predicted: bool = False, sigma: Sequence[float] = ()
              ) -> TwinStateMsg:
    robot, process = state.robot, state.process
    return TwinStateMsg(
        header=header, predicted=predicted,
        joint_names=list(robot.joint_names), position=robot.position.tolist(),
        velocity=robot.velocity.tolist(), acceleration=robot.acceleration.tolist(),
        effort=robot.effort.tolist(), load=robot.load.tolist(),
        motor_temperature=robot.motor_temperature.tolist(),
        position_sigma=[float(v) for v in sigma], desired_position=robot.desired_position.tolist(),
        desired_velocity=robot.desired_velocity.tolist(), tracking_error=robot.tracking_error.tolist(),
        base_pose=pose_msg(robot.base_pose), end_effector_pose=pose_msg(robot.end_effector_pose),
        imu_linear_acceleration=Vector3(**dict(zip('xyz', robot.imu_linear_acceleration.tolist()))),
        imu_angular_velocity=Vector3(**dict(zip('xyz', robot.imu_angular_velocity.tolist()))),
        task_id=max(process.task_id, 0),
        status=TwinStateMsg.STATUS_STOPPED if process.stopped else TwinStateMsg.STATUS_RUNNING,
        task_progress=process.progress, speed_override=process.speed_override,
        obstacle_count=len(state.environment.obstacles),
        input_topics=[i.topic for i in process.inputs],
        input_ages=[i.age for i in process.inputs],
        input_qualities=[int(i.quality) for i in process.inputs])


class StateNode(Node):
    """Runs the state estimator on twin/synced_frame and serves its history."""

    def __init__(self) -> None:
        super().__init__('twin_state')
        self._config = declare_config(self, StateConfig)
        self._base_frame = self._config.frame_prefix + BASE_FRAME
        urdf = urdf_file(self._config.urdf)
        if not urdf.is_file():
            raise ConfigError(f'{self.get_name()}.urdf: no such file: {urdf}')
        self._estimator = StateEstimator(self._config, urdf)
        self._monitor = StateMonitor(self._config.stale_after, time.monotonic())
        kinematics = self._estimator.kinematics
        self._segments = viz.segments(kinematics)
        self._alarms = viz.ActiveAlarms(kinematics.joint_names)
        self._predictions = viz.PredictionFeed(self._config.visualization.prediction_timeout)
        self._tasks: list[viz.TaskInfo] | None = None  # None until a maintenance schedule arrives
        self._joint_states = self.create_publisher(JointState, 'twin/joint_states', 10)
        self._end_effector = self.create_publisher(PoseStamped, 'twin/end_effector_pose', 10)
        self._state = self.create_publisher(TwinStateMsg, 'twin/state', 10)
        self._markers = self.create_publisher(MarkerArray, 'twin/markers', 10)
        self._predicted_markers = self.create_publisher(MarkerArray, 'twin/predicted_markers', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        subscribe_synced_frames(self, self._on_frame, partial(self._reject, SYNCED_FRAMES))
        if self._config.live_input:
            self._live = LiveMirror(kinematics.joint_names)
            self._live_joint_states = self.create_publisher(JointState, 'twin/live/joint_states',
                                                            qos_profile_sensor_data)
            self.create_subscription(JointState, self._config.live_input, plain_cdr(JointState, self._on_live),
                                     SENSOR_INPUT, raw=True)
        if self._config.plan.enabled:
            self.create_subscription(JointState, PLAN_INPUT, self._on_desired, SENSOR_INPUT)
        self.create_subscription(JointTrajectory, 'twin/predicted_trajectory',
                                 self._on_prediction, 10)
        self.create_subscription(JointTrajectory, 'twin/predicted_trajectory_std',
                                 self._on_prediction_std, 10)
        self.create_subscription(AnomalyEvent, 'twin/anomalies', self._on_anomaly, 10)
        self.create_subscription(MaintenanceSchedule, 'twin/maintenance_schedule',
                                 self._on_schedule, LATCHED)
        self.create_service(GetStateAt, 'twin/get_state_at', self._get_state_at)
        self.create_service(GetHistory, 'twin/get_history', self._get_history)
        self.create_timer(1.0 / self._config.markers_rate_hz, self._publish_markers)
        self.create_timer(1.0 / self._config.diagnostics_rate_hz, self._publish_diagnostics)

    def _on_frame(self, frame: cdr.SyncedFrameWire) -> None:
        self._monitor.frame()
        stamp_ns = from_msg(frame.header.stamp)
        state = self._estimator.ingest(to_seconds(stamp_ns), frame.samples)
        if state is None:
            return
        header = Header(stamp=to_msg(stamp_ns), frame_id=self._base_frame)
        robot = state.robot
        if listened(self._joint_states):
            self._joint_states.publish(cdr.encode_joint_state(
                stamp_ns, self._base_frame, robot.joint_names, robot.position, robot.velocity, robot.effort))
        if listened(self._end_effector):
            self._end_effector.publish(PoseStamped(header=header, pose=pose_msg(robot.end_effector_pose)))
        if listened(self._state):
            self._state.publish(state_msg(state, header))

    def _on_live(self, data: bytes) -> None:
        """A joint measurement, read and written in its serialized form (a kilohertz path)."""
        if not listened(self._live_joint_states):
            return
        try:
            message = cdr.decode_joint_state(data)
            joints = self._live.update(message.stamp_ns, message.name, message.position,
                                       message.velocity, message.effort)
        except ValueError as error:
            self._reject(self._config.live_input, error)
            return
        self._live_joint_states.publish(cdr.encode_joint_state(
            joints.stamp_ns, self._base_frame, self._live.joint_names, joints.position, joints.velocity,
            joints.effort))

    def _on_desired(self, message: JointState) -> None:
        try:
            self._estimator.desired(from_msg(message.header.stamp), message.name, message.position,
                                    message.velocity)
        except ValueError as error:
            self._reject(PLAN_INPUT, error)

    def _get_state_at(self, request: GetStateAt.Request, response: GetStateAt.Response
                      ) -> GetStateAt.Response:
        try:
            found = self._estimator.lookup(to_seconds(from_msg(request.stamp)), request.allow_prediction)
        except (HistoryError, ValueError) as error:
            response.success, response.message = False, f'{type(error).__name__}: {error}'
            return response
        response.success = True
        response.message = 'predicted' if found.predicted else 'interpolated'
        header = Header(stamp=to_msg(from_seconds(found.state.stamp)), frame_id=self._base_frame)
        response.state = state_msg(found.state, header, found.predicted, found.sigma)
        return response

    def _get_history(self, request: GetHistory.Request, response: GetHistory.Response
                     ) -> GetHistory.Response:
        history = self._estimator.history
        end = to_seconds(from_msg(request.end)) or float('inf')
        try:
            stamps, values = history.window(list(request.paths), to_seconds(from_msg(request.start)), end,
                                            request.max_samples)
        except KeyError as error:
            response.success, response.message = False, str(error.args[0])
            return response
        columns = [history.layout.columns[i] for i in history.layout.columns_of(request.paths)]
        response.success, response.message = True, f'{len(stamps)} samples'
        response.columns, response.stamps = columns, stamps.tolist()
        response.values = Float64MultiArray(data=values.ravel().tolist())
        response.values.layout.dim = [
            MultiArrayDimension(label='samples', size=len(stamps), stride=values.size),
            MultiArrayDimension(label='columns', size=len(columns), stride=len(columns))]
        return response

    def _now(self) -> float:
        return to_seconds(self.get_clock().now().nanoseconds)

    def _reject(self, topic: str, error: ValueError) -> None:
        """Log bad input once per topic, message and diagnostics period; report it there."""
        if self._monitor.reject(topic, str(error)):
            self.get_logger().warning(f'{topic}: {error}')

    def _on_prediction(self, message: JointTrajectory) -> None:
        try:
            self._predictions.offer_mean(trajectory(message), self._now())
        except ValueError as error:
            self._reject('twin/predicted_trajectory', error)

    def _on_prediction_std(self, message: JointTrajectory) -> None:
        try:
            self._predictions.offer_std(trajectory(message))
        except ValueError as error:
            self._reject('twin/predicted_trajectory_std', error)

    def _on_anomaly(self, event: AnomalyEvent) -> None:
        try:
            self._alarms.update(event.sensor, event.method, event.severity, event.active)
        except ValueError as error:
            self._reject('twin/anomalies', error)

    def _on_schedule(self, schedule: MaintenanceSchedule) -> None:
        try:
            self._tasks = [viz.TaskInfo(t.component, t.action, Risk.named(t.risk), t.rul, t.rul_low, t.rul_high)
                           for t in schedule.tasks]
        except ValueError as error:
            self._reject('twin/maintenance_schedule', error)

    def _publish_markers(self) -> None:
        self._publish_prediction()
        state = self._estimator.latest
        if state is None or not listened(self._markers):
            return
        header = Header(stamp=to_msg(from_seconds(state.stamp)), frame_id=self._base_frame)
        kinematics = self._estimator.kinematics
        frames = kinematics.transforms(dict(zip(state.robot.joint_names, state.robot.position)))
        ends = viz.skeleton(frames, self._segments)
        arm = marker(header, 'arm', 0, Marker.LINE_LIST, viz.LEVEL_COLOURS[Level.OK], 0.04)
        arm.points = points(ends)
        arm.colors = [ColorRGBA(**dict(zip('rgba', c)))
                      for c in viz.segment_colours(self._segments, self._alarms) for _ in range(2)]
        markers = [Marker(header=header, action=Marker.DELETEALL), arm]
        desired = viz.desired_arm(kinematics, self._segments, state.robot.joint_names, state.robot.desired_position)
        if desired is not None:
            ghost = marker(header, 'desired_arm', 0, Marker.LINE_LIST, viz.DESIRED_COLOUR, 0.05)
            ghost.points = points(desired)
            markers.append(ghost)
        halo = viz.outline_colour(self._alarms)
        if halo is not None:
            outline = marker(header, 'arm_outline', 0, Marker.LINE_LIST, halo[:3] + (0.35,), 0.09)
            outline.points = arm.points
            markers.append(outline)
        for index, obstacle in enumerate(state.environment.obstacles):
            cylinder = marker(header, 'obstacles', index, Marker.CYLINDER, (0.2, 0.5, 0.8, 0.6),
                              max(2.0 * obstacle.radius, 0.02))
            cylinder.pose.position = points(obstacle.centroid)[0]
            cylinder.scale.z = 0.1
            markers.append(cylinder)
        if self._tasks is not None:
            visualization = self._config.visualization
            labels = viz.maintenance_labels(kinematics, frames, self._tasks, visualization.text_offset)
            for index, label in enumerate(labels):
                text = marker(header, 'health', index, Marker.TEXT_VIEW_FACING, label.colour,
                              visualization.text_size)
                text.pose.position, text.text = points(label.position)[0], label.text
                markers.append(text)
        self._markers.publish(MarkerArray(markers=markers))

    def _publish_prediction(self) -> None:
        action, mean, std = self._predictions.poll(self._now())
        if action == viz.CLEAR:
            self._predicted_markers.publish(MarkerArray(markers=[Marker(
                header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self._base_frame),
                action=Marker.DELETEALL)]))
        if action != viz.DRAW or not listened(self._predicted_markers):
            return
        visualization = self._config.visualization
        try:
            drawn = viz.ghost(self._estimator.kinematics, self._segments, mean, std,
                              visualization.ghost_fractions, visualization.uncertainty_spheres,
                              visualization.uncertainty_sigmas, visualization.min_sphere_diameter)
        except ValueError as error:
            self._reject('twin/predicted_trajectory', error)
            return
        header = Header(stamp=to_msg(from_seconds(mean.stamp)), frame_id=self._base_frame)
        path = marker(header, 'predicted_path', 0, Marker.LINE_STRIP, (0.1, 0.8, 1.0, 0.9), 0.012)
        path.points = points(drawn.path)
        markers = [Marker(header=header, action=Marker.DELETEALL), path]
        for index, (_, ends) in enumerate(drawn.arms):
            arm = marker(header, 'ghost_arm', index, Marker.LINE_LIST, (0.6, 0.7, 1.0, 0.3), 0.04)
            arm.points = points(ends)
            markers.append(arm)
        for index, (centre, diameter) in enumerate(drawn.spheres):
            sphere = marker(header, 'uncertainty', index, Marker.SPHERE, (0.3, 0.6, 1.0, 0.2),
                            diameter)
            sphere.pose.position = points(centre)[0]
            markers.append(sphere)
        self._predicted_markers.publish(MarkerArray(markers=markers))

    def _publish_diagnostics(self) -> None:
        reports = self._monitor.report(self._estimator, len(self._alarms), self._predictions.age(self._now()),
                                       None if self._tasks is None else len(self._tasks), time.monotonic())
        name = self.get_name()
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()),
            status=[status(f'{name}: {r.name}', r.level, r.message, values=r.values) for r in reports]))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(StateNode, 'twin_state', args)
