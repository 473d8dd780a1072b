"""plan_driver node: the controller's commanded trajectory (UDP frames) to the plan and desired joint states.

Publishes ``trajectory_msgs/JointTrajectory`` on ``plan/joint_trajectory`` (reliable, depth 1:
the latest plan is the one that counts; point 0 is the current reference, ``header.stamp`` the
instant it describes, the later points the next segment ends with ``time_from_start``) and
``sensor_msgs/JointState`` on ``plan/desired_joint_states`` (the desired position and velocity
now, best effort like every sensor stream): a desired state per plan received, a trajectory when
the plan's segment ends change or ``trajectory_period`` has passed.
"""
from __future__ import annotations

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from twin_core.stamps import from_seconds
from twin_ros.common import run
from twin_ros.stamps import to_duration
from twin_sensors.driver_node import DriverNode
from twin_sensors.plan import PlanDriverConfig, PlanStream, TrajectoryGate
from twin_sensors.readers import UdpReader
from twin_sensors.stats import frame_decoder_values

PLAN_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class PlanDriver(DriverNode):
    """Receives plans in a thread and publishes each as a JointTrajectory and a desired JointState."""

    def __init__(self) -> None:
        super().__init__('plan_driver', PlanDriverConfig)
        self._stream = PlanStream(self.config, self.stats)
        self._gate = TrajectoryGate(self.config.trajectory_period)
        self._names = list(self.config.joint_names)
        self._mode = ''
        self._trajectory = self.create_publisher(JointTrajectory, 'plan/joint_trajectory', PLAN_QOS)
        self._desired = self.create_publisher(JointState, 'plan/desired_joint_states', qos_profile_sensor_data)
        reader = UdpReader(self.config.udp, self._on_data, self.on_state, self.now_ns, self.workers)
        self.attach(reader, reader.source)

    def _on_data(self, datagram: bytes, receive_ns: int) -> None:
        for plan in self._stream.feed(datagram):
            stamp = self.stamp(receive_ns, plan.device_time)
            self._mode = plan.mode.name.lower()
            if self._gate.admit(plan):
                trajectory = JointTrajectory(joint_names=self._names, points=[
                    JointTrajectoryPoint(positions=p.tolist(), velocities=v.tolist(), accelerations=a.tolist(),
                                         time_from_start=to_duration(from_seconds(float(t))))
                    for t, p, v, a in zip(plan.times, plan.positions, plan.velocities, plan.accelerations)])
                trajectory.header.stamp = stamp
                self.publish(self._trajectory, trajectory)
            desired = JointState(name=self._names, position=plan.positions[0].tolist(),
                                 velocity=plan.velocities[0].tolist())
            desired.header.stamp = stamp
            self.publish(self._desired, desired)

    def extra_values(self) -> dict[str, int | str]:
        return {'mode': self._mode, 'trajectories': self._gate.admitted, **frame_decoder_values(self._stream.decoder)}


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(PlanDriver, 'plan_driver', args)
