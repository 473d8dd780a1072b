"""Parameters of the twin state node."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe


@dataclass(frozen=True)
class HistoryConfig:
    capacity: int = field(default=60_000, metadata=describe(
        'Samples kept (60 000 = 10 min at 100 Hz).', min=2, max=50_000_000))
    jump_back: float = field(default=1.0, metadata=describe(
        'A sample this many s older than the newest restarts the history (looped bag).',
        min=0.0, max=3600.0))
    derivative_points: int = field(default=15, metadata=describe(
        'Samples in the causal polynomial fit for velocities and accelerations.', min=4, max=1000))


@dataclass(frozen=True)
class ScanConfig:
    angle_min: float = field(default=-math.pi, metadata=describe(
        'Angle of the first beam (rad).', min=-2.0 * math.pi, max=2.0 * math.pi))
    angle_max: float = field(default=math.pi - 2.0 * math.pi / 360, metadata=describe(
        'Angle of the last beam (rad).', min=-2.0 * math.pi, max=2.0 * math.pi))
    range_min: float = field(default=0.05, metadata=describe('Shortest valid range (m).', min=0.0))
    range_max: float = field(default=10.0, metadata=describe('Longest valid range (m).', min=0.0))
    cluster_gap: float = field(default=0.1, metadata=describe(
        'Neighbouring hits farther apart than this (m) start a new obstacle.', min=0.001, max=10.0))
    min_points: int = field(default=3, metadata=describe(
        'Hits an obstacle needs.', min=1, max=10_000))


@dataclass(frozen=True)
class VisualizationConfig:
    """Markers of alarms, maintenance and the predicted trajectory."""

    prediction_timeout: float = field(default=1.0, metadata=describe(
        'The ghost of the predicted trajectory is cleared this many s after the last prediction.',
        min=0.01, max=3600.0))
    ghost_fractions: tuple[float, ...] = field(default=(0.5, 1.0), metadata=describe(
        'Fractions of the prediction horizon at which a ghost arm is drawn.'))
    uncertainty_spheres: int = field(default=10, metadata=describe(
        'Uncertainty spheres along the predicted end-effector path (0 = none).', min=0, max=1000))
    uncertainty_sigmas: float = field(default=2.0, metadata=describe(
        'Sphere radius in standard deviations of the end-effector position.', min=0.0, max=10.0))
    min_sphere_diameter: float = field(default=0.01, metadata=describe(
        'Smallest uncertainty sphere drawn (m).', min=0.0, max=1.0))
    text_size: float = field(default=0.04, metadata=describe(
        'Height of the maintenance labels (m).', min=0.001, max=1.0))
    text_offset: tuple[float, ...] = field(default=(0.0, 0.3, 0.0), metadata=describe(
        'Maintenance labels are drawn this far (m, base_link axes) from their joint.'))

    def __post_init__(self) -> None:
        if len(self.text_offset) != 3:
            raise ValueError('text_offset needs three values')
        if not self.ghost_fractions or not all(0.0 <= f <= 1.0 for f in self.ghost_fractions):
            raise ValueError('ghost_fractions needs values in [0, 1]')


@dataclass(frozen=True)
class PlanConfig:
    """The controller's desired joint states (plan/desired_joint_states) in the twin state."""

    enabled: bool = field(default=True, metadata=describe(
        'Subscribe to plan/desired_joint_states: desired position, velocity and tracking error per joint.'))
    max_age: float = field(default=0.05, metadata=describe(
        'Desired joint states are interpolated between samples at most this many s apart and held '
        'this long after the newest; beyond, the plan is stale and the state carries none.',
        min=0.001, max=10.0))


@dataclass(frozen=True)
class StateConfig:
    """Parameters of the twin_state node."""

    urdf: str = field(default='', metadata=describe('Robot description; empty = config/arm.urdf.'))
    end_effector: str = field(default='tool0', metadata=describe('End-effector frame of the URDF.'))
    frame_prefix: str = field(default='', metadata=describe(
        "Prefix of the frame ids the node publishes ('robot_1/' in a fleet, as robot_state_publisher's)."))
    base_xyz: tuple[float, ...] = field(default=(0.0, 0.0, 0.0), metadata=describe(
        'Position of base_link in world (m).'))
    base_rpy: tuple[float, ...] = field(default=(0.0, 0.0, 0.0), metadata=describe(
        'Orientation of base_link in world: roll, pitch, yaw (rad).'))
    stale_after: float = field(default=0.5, metadata=describe(
        'Input age (s) above which diagnostics warn.', min=0.001, max=3600.0))
    markers_rate_hz: float = field(default=5.0, metadata=describe(
        'Rate of twin/markers and at most of twin/predicted_markers.', min=0.1, max=100.0))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics.', min=0.1, max=50.0))
    live_input: str = field(default='encoders/joint_states', metadata=describe(
        'Joint measurements (sensor_msgs/JointState) mirrored on twin/live/joint_states as each '
        "arrives, beside the aligned twin/joint_states; '' = no live output."))
    history: HistoryConfig = HistoryConfig()
    scan: ScanConfig = ScanConfig()
    visualization: VisualizationConfig = VisualizationConfig()
    plan: PlanConfig = PlanConfig()

    def required_paths(self) -> dict[str, Path]:
        return {'urdf': Path(self.urdf)} if self.urdf else {}

    def __post_init__(self) -> None:
        if len(self.base_xyz) != 3 or len(self.base_rpy) != 3:
            raise ValueError('base_xyz and base_rpy need three values each')
        if not self.scan.angle_min < self.scan.angle_max:
            raise ValueError('scan.angle_min must be below scan.angle_max')
