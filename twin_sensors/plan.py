"""Plan driver core: the cell controller's commanded trajectory, one framed plan per UDP datagram.

Each plan holds the controller's current reference (point 0: desired position, velocity and
acceleration now) and the next segment ends it will reach, with their times. It becomes a
``trajectory_msgs/JointTrajectory`` (the plan, sampled between points like ros2_control's
joint_trajectory_controller does: see ``twin_core.trajectory``) and a desired ``JointState``.

Point 0 moves with every plan, but while the segment ends stand, sampling the last trajectory sent
gives the same reference (the segment's polynomial through point 0 and the next end is the
segment's own), so ``TrajectoryGate`` sends a new one only when an end or the mode changes, and
at least once per ``trajectory_period``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
    trajectory_period: float = field(default=0.1, metadata=describe(
        'Longest time (s) between two plan/joint_trajectory messages while the segment ends and mode stand '
        '(a change goes out at once); 0 sends every plan.', min=0.0, max=10.0))

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


class TrajectoryGate:
    """Admits a plan as a new trajectory when its segment ends (times within ``tolerance`` s, positions)
    or its mode differ from the last admitted one, or when that one is ``period`` s old (device time).
    """

    def __init__(self, period: float, tolerance: float = 1e-3) -> None:
        self.period = period
        self.tolerance = tolerance
        self.admitted = 0
        self._last: PlanSample | None = None

    def admit(self, plan: PlanSample) -> bool:
        """True when ``plan`` is to be sent (and becomes the reference for the next ones)."""
        last = self._last
        if (last is not None and plan.mode == last.mode and plan.device_time - last.device_time < self.period
                and _same_ends(plan, last, self.tolerance)):
            return False
        self._last = plan
        self.admitted += 1
        return True


def _same_ends(plan: PlanSample, other: PlanSample, tolerance: float) -> bool:
    if plan.positions.shape != other.positions.shape:
        return False
    ends = plan.device_time + plan.times[1:]
    other_ends = other.device_time + other.times[1:]
    return bool(np.all(np.abs(ends - other_ends) <= tolerance)
                and np.array_equal(plan.positions[1:], other.positions[1:]))
