"""Joint trajectories as a controller executes them: waypoints in time, sampled between them.

A :class:`JointPlan` is what ``trajectory_msgs/JointTrajectory`` carries (points with
``time_from_start`` after a start stamp), without ROS. Between two points it is interpolated the
way ros2_control's joint_trajectory_controller does: a quintic polynomial when both points carry
positions, velocities and accelerations, a cubic with positions and velocities, linear with
positions only. A minimum-jerk move (zero velocity and acceleration at both ends) is a quintic, so
the plan of such moves is sampled exactly from its segment ends. Before the first point the plan
holds the first position, after the last one the last position (velocity and acceleration zero).
Times are float seconds after the start stamp (int ns, like every stamp of the twin).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin_core.stamps import from_msg, to_seconds


@dataclass(frozen=True)
class Sample:
    """Desired joint positions (rad), velocities (rad/s) and accelerations (rad/s²), (T, n) each."""

    position: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray


@dataclass(frozen=True)
class JointPlan:
    """Waypoints (P, n) at ``times`` (P,) s after ``stamp`` (ns); velocities/accelerations may be None."""

    stamp: int
    joint_names: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None

    def __post_init__(self) -> None:
        points, joints = np.shape(self.positions) if np.ndim(self.positions) == 2 else (-1, -1)
        if points < 1 or joints != len(self.joint_names) or np.shape(self.times) != (points,):
            raise ValueError('a plan needs (points, joints) positions and one time per point')
        for name, values in (('velocities', self.velocities), ('accelerations', self.accelerations)):
            if values is not None and np.shape(values) != (points, joints):
                raise ValueError(f'{name} must be shaped like the positions')
        if not all(np.isfinite(v).all() for v in (self.times, self.positions, self.velocities,
                                                  self.accelerations) if v is not None):
            raise ValueError('a plan holds only finite numbers')
        if np.any(np.diff(self.times) < 0.0):
            raise ValueError('plan times must not decrease')

    @classmethod
    def from_message(cls, message: Any) -> JointPlan:
        """From a ``trajectory_msgs/JointTrajectory`` (or alike); ValueError when it is not a usable plan.

        Velocities and accelerations are used only when every point carries them for every joint.
        """
        points: Sequence[Any] = message.points
        joints = len(message.joint_names)

        def field(name: str) -> np.ndarray | None:
            rows = [getattr(point, name) for point in points]
            return np.array(rows, dtype=float) if rows and all(len(r) == joints for r in rows) else None
        positions = field('positions')
        if positions is None:
            raise ValueError(f'a plan needs {joints} positions in every point')
        times = np.array([to_seconds(from_msg(point.time_from_start)) for point in points])
        return cls(from_msg(message.header.stamp), tuple(message.joint_names), times, positions,
                   field('velocities'), field('accelerations'))

    @property
    def duration(self) -> float:
        """Seconds from the stamp to the last point."""
        return float(self.times[-1])

    def sample(self, times: np.ndarray | float) -> Sample:
        """The plan at ``times`` (s after ``stamp``)."""
        t = np.atleast_1d(np.asarray(times, dtype=float))
        joints = len(self.joint_names)
        position = np.empty((len(t), joints))
        velocity = np.zeros((len(t), joints))
        acceleration = np.zeros((len(t), joints))
        knots = self.times
        index = np.clip(np.searchsorted(knots, t, side='right') - 1, 0, len(knots) - 1)
        before, after = t < knots[0], t >= knots[-1]
        position[before] = self.positions[0]
        position[after] = self.positions[-1]
        inside = ~(before | after)
        for segment in np.unique(index[inside]):
            rows = inside & (index == segment)
            p, v, a = self._segment(int(segment), t[rows] - knots[segment])
            position[rows], velocity[rows], acceleration[rows] = p, v, a
        return Sample(position, velocity, acceleration)

    def _segment(self, k: int, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, velocity, acceleration at ``tau`` (T,) s into segment ``k`` (point k to k + 1)."""
        span = float(self.times[k + 1] - self.times[k])
        p0, p1 = self.positions[k], self.positions[k + 1]
        if span <= 0.0:
            return np.tile(p1, (len(tau), 1)), np.zeros((len(tau), len(p1))), np.zeros((len(tau), len(p1)))
        zero = np.zeros_like(p0)
        v0, v1 = (zero, zero) if self.velocities is None else (self.velocities[k], self.velocities[k + 1])
        a0, a1 = (zero, zero) if self.accelerations is None else (self.accelerations[k], self.accelerations[k + 1])
        if self.velocities is None:  # linear
            slope = (p1 - p0) / span
            return p0 + tau[:, None] * slope, np.tile(slope, (len(tau), 1)), np.zeros((len(tau), len(p0)))
        c = _quintic(p0, v0, a0, p1, v1, a1, span) if self.accelerations is not None else \
            _cubic(p0, v0, p1, v1, span)
        powers = tau[:, None, None] ** np.arange(6)[None, :, None]  # (T, 6, 1)
        position = (powers * c).sum(1)
        d1 = np.arange(6)[:, None] * np.vstack((np.zeros((1, len(p0))), c[1:]))  # coefficient i · c_i of t^(i-1)
        velocity = (powers[:, :5] * d1[1:]).sum(1)
        d2 = (np.arange(6) * (np.arange(6) - 1))[:, None] * c
        acceleration = (powers[:, :4] * d2[2:]).sum(1)
        return position, velocity, acceleration


def _quintic(p0: np.ndarray, v0: np.ndarray, a0: np.ndarray, p1: np.ndarray, v1: np.ndarray,
             a1: np.ndarray, T: float) -> np.ndarray:
    """Coefficients (6, n) of the quintic through (p, v, a) at 0 and T."""
    T2, T3, T4, T5 = T * T, T ** 3, T ** 4, T ** 5
    c3 = (20 * (p1 - p0) - (8 * v1 + 12 * v0) * T - (3 * a0 - a1) * T2) / (2 * T3)
    c4 = (-30 * (p1 - p0) + (14 * v1 + 16 * v0) * T + (3 * a0 - 2 * a1) * T2) / (2 * T4)
    c5 = (12 * (p1 - p0) - 6 * (v1 + v0) * T - (a0 - a1) * T2) / (2 * T5)
    return np.stack((p0, v0, a0 / 2, c3, c4, c5))


def _cubic(p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray, T: float) -> np.ndarray:
    """Coefficients (6, n) of the cubic through (p, v) at 0 and T (the quintic terms zero)."""
    c2 = (3 * (p1 - p0) - (2 * v0 + v1) * T) / (T * T)
    c3 = (-2 * (p1 - p0) + (v0 + v1) * T) / T ** 3
    zero = np.zeros_like(p0)
    return np.stack((p0, v0, c2, c3, zero, zero))
