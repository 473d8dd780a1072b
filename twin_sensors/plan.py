"""Plan driver core: the cell controller's commanded trajectory, one framed plan per UDP datagram.

Each plan holds the controller's current reference (point 0: desired position, velocity and
acceleration now) and the next segment ends it will reach, with their times. It becomes a
``trajectory_msgs/JointTrajectory`` (the plan, sampled between points like ros2_control's
joint_trajectory_controller does: see ``twin_core.trajectory``) and a desired ``JointState``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_core.urdf import check_joint_names, default_joint_names
from twin_sensors.datagrams import DatagramStream
from twin_sensors.readers import UdpConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig
from twin_sensors.wire import MAX_PLAN_POINTS, MsgType, PlanSample, WireError, decode_plan_payload, plan_payload_size


@dataclass(frozen=True)
class PlanDriverConfig:
    """Parameters of the plan_driver node."""

    udp: UdpConfig = field(default_factory=lambda: UdpConfig(port=7504))
    joint_names: tuple[str, ...] = field(default_factory=default_joint_names, metadata=describe(
        "Joint names, in the order of the plan frame (default: the URDF's movable joints)."))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)

    def __post_init__(self) -> None:
        check_joint_names(self.joint_names)


class PlanStream(DatagramStream[PlanSample]):
    """One framed plan per datagram; a plan of another joint count is refused (``joint_count``)."""

    def __init__(self, config: PlanDriverConfig, stats: DriverStats) -> None:
        self.joints = len(config.joint_names)
        super().__init__(stats, MsgType.PLAN, self._decode_checked,
                         max_payload=plan_payload_size(self.joints, MAX_PLAN_POINTS))

    def _decode_checked(self, payload: bytes) -> PlanSample:
        plan = decode_plan_payload(payload)
        if plan.positions.shape[1] != self.joints:
            raise WireError('joint_count', f'plan has {plan.positions.shape[1]} joints, expected {self.joints}')
        return plan
