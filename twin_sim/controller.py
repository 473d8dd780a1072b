"""Joint-space reference generation: a repeating pick-and-place cycle and manual jogging.

The task runs on its own clock, advanced by ``speed scale × dt``: a speed override slows the
whole cycle down (0 holds position) and a protective stop ramps the scale to zero quickly.
Every move is a minimum-jerk (quintic) profile, so reference accelerations stay bounded.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from twin_core.urdf import ArmDescription
from twin_sim.scenario import ScenarioError, Task

PEAK_VELOCITY_FACTOR = 1.875  # peak of a minimum-jerk profile's velocity, in units of distance/duration
MANUAL_SPEED_FRACTION = 0.5  # manual and rejoin moves use this fraction of the URDF velocity limits
MINIMUM_MOVE_DURATION = 0.5  # s
STOP_RAMP_TIME = 0.2  # s, full speed to standstill on a protective stop
SPEED_RAMP_TIME = 1.0  # s, zero to full speed otherwise


class Mode(Enum):
    AUTO = "auto"
    MANUAL = "manual"
    REJOIN = "rejoin"  # moving back onto the task path before resuming it


@dataclass(frozen=True)
class Plan:
    """Commanded points from now: times (P,) s, positions, velocities, accelerations (P, n);
    ``mode`` a ``Mode`` value, or ``hold`` while the speed scale is zero.
    """

    mode: str
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray


@dataclass(frozen=True)
class Reference:
    position: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    acceleration: np.ndarray  # rad/s^2


def minimum_jerk(u: float) -> tuple[float, float, float]:
    """Quintic s(u) with zero velocity and acceleration at both ends, and ds/du, d2s/du2."""
    u = min(max(u, 0.0), 1.0)
    return (u ** 3 * (10.0 - 15.0 * u + 6.0 * u * u),
            30.0 * u * u * (1.0 - u) ** 2,
            60.0 * u * (1.0 - u) * (1.0 - 2.0 * u))


@dataclass(frozen=True)
class _Move:
    """A minimum-jerk move; derivatives are with respect to the (scaled) task clock."""

    start: np.ndarray
    goal: np.ndarray
    duration: float

    def sample(self, elapsed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, ds, dds = minimum_jerk(elapsed / self.duration)
        delta = self.goal - self.start
        return self.start + delta * s, delta * (ds / self.duration), delta * (dds / self.duration ** 2)


class CyclicTrajectory:
    """The task cycle: each segment moves to its waypoint, then dwells there."""

    def __init__(self, task: Task, velocity_limits: np.ndarray) -> None:
        self.task = task
        goals = [np.asarray(task.waypoints[segment.target], dtype=float) for segment in task.segments]
        starts = [goals[-1]] + goals[:-1]
        self._moves = [_Move(start, goal, segment.duration)
                       for start, goal, segment in zip(starts, goals, task.segments)]
        for index, move in enumerate(self._moves):
            peak = PEAK_VELOCITY_FACTOR * np.abs(move.goal - move.start) / move.duration
            if np.any(peak > velocity_limits):
                raise ScenarioError(f"task.cycle[{index}].duration: move too fast for the joint velocity "
                                    f"limits (peak {np.round(peak, 2).tolist()} rad/s)")
        spans = [segment.duration + segment.dwell for segment in task.segments]
        self.moves: tuple[_Move, ...] = tuple(self._moves)
        self._segment_starts = np.concatenate(([0.0], np.cumsum(spans)[:-1]))
        self.period = float(sum(spans))

    @property
    def start_position(self) -> np.ndarray:
        return self._moves[0].start

    def locate(self, task_time: float) -> tuple[int, int, float]:
        """(cycle index from 0, segment index, time since the segment started)."""
        cycle, within = divmod(task_time, self.period)
        index = int(np.searchsorted(self._segment_starts, within, side="right")) - 1
        return int(cycle), index, within - self._segment_starts[index]

    def sample(self, task_time: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, index, elapsed = self.locate(task_time)
        return self._moves[index].sample(elapsed)


class PickAndPlaceController:
    """Produces the joint reference each control period (automatic task, manual jog, rejoin)."""

    def __init__(self, task: Task, arm: ArmDescription) -> None:
        if len(next(iter(task.waypoints.values()))) != len(arm.joint_names):
            raise ScenarioError(f"task.waypoints: expected {len(arm.joint_names)} joint positions per waypoint")
        self._arm = arm
        self.trajectory = CyclicTrajectory(task, arm.velocity)
        for name, position in task.waypoints.items():
            if np.any(np.asarray(position) < arm.lower) or np.any(np.asarray(position) > arm.upper):
                raise ScenarioError(f"task.waypoints.{name}: outside the URDF joint limits")
        self.mode = Mode.AUTO
        self.task_time = 0.0
        self.speed_override = 1.0
        self.speed_scale = 1.0  # what the clock actually runs at, ramped towards the override
        self.stopped = False
        self.carrying_payload = False
        self._move: _Move | None = None
        self._move_elapsed = 0.0
        self._position = self.trajectory.start_position.copy()
        zero = np.zeros(len(arm.joint_names))
        self.reference = Reference(self._position.copy(), zero, zero.copy())

    @property
    def initial_position(self) -> np.ndarray:
        return self.trajectory.start_position.copy()

    @property
    def task_id(self) -> int:
        return self.trajectory.locate(self.task_time)[0] + 1

    @property
    def progress(self) -> float:
        return (self.task_time % self.trajectory.period) / self.trajectory.period

    @property
    def phase(self) -> str:
        if self.mode is not Mode.AUTO:
            return self.mode.value
        return self.trajectory.task.segments[self.trajectory.locate(self.task_time)[1]].phase

    def set_speed_override(self, value: float) -> None:
        self.speed_override = min(max(float(value), 0.0), 1.0) if math.isfinite(value) else 0.0

    def protective_stop(self) -> None:
        self.stopped = True

    def resume(self) -> None:
        self.stopped = False

    def command_positions(self, positions: Sequence[float]) -> None:
        """Switch to manual mode and move to ``positions`` (clamped to the joint limits)."""
        goal = np.asarray(positions, dtype=float)
        if goal.shape != (len(self._arm.joint_names),) or not np.all(np.isfinite(goal)):
            raise ValueError(f"expected {len(self._arm.joint_names)} finite joint positions, got {positions!r}")
        self._start_move(np.clip(goal, self._arm.lower, self._arm.upper))
        self.mode = Mode.MANUAL

    def resume_task(self) -> None:
        """Leave manual mode: move back onto the task path, then continue the cycle."""
        if self.mode is Mode.MANUAL:
            self._start_move(self.trajectory.sample(self.task_time)[0])
            self.mode = Mode.REJOIN

    def update(self, dt: float) -> Reference:
        """Advance by ``dt`` seconds of real time and return the joint reference."""
        previous_scale = self.speed_scale
        target_scale = 0.0 if self.stopped else self.speed_override
        ramp = STOP_RAMP_TIME if self.stopped else SPEED_RAMP_TIME
        self.speed_scale += float(np.clip(target_scale - previous_scale, -dt / ramp, dt / ramp))
        scale, scale_rate = self.speed_scale, (self.speed_scale - previous_scale) / dt
        if self.mode is Mode.AUTO:
            self.task_time += scale * dt
            position, velocity, acceleration = self.trajectory.sample(self.task_time)
            _, index, _ = self.trajectory.locate(self.task_time)
            self.carrying_payload = self.trajectory.task.segments[index].payload
        else:
            assert self._move is not None
            self._move_elapsed = min(self._move_elapsed + scale * dt, self._move.duration)
            position, velocity, acceleration = self._move.sample(self._move_elapsed)
            if self.mode is Mode.REJOIN and self._move_elapsed >= self._move.duration:
                self.mode = Mode.AUTO
        self._position = position
        self.reference = Reference(position, velocity * scale, acceleration * scale ** 2 + velocity * scale_rate)
        return self.reference

    def plan(self, targets: int) -> Plan:
        """The commanded trajectory from now: the current reference, then up to ``targets`` next
        segment ends (goal reached, end of its dwell) in real seconds at the current speed scale.

        Each move is a minimum-jerk profile, so the points with their velocities and
        accelerations (zero at the ends) give the whole path by quintic interpolation. While the
        speed scale is zero (stopped, override 0) the plan is the current reference alone.
        """
        current = self.reference
        times, positions = [0.0], [current.position]
        velocities, accelerations = [current.velocity], [current.acceleration]
        scale = self.speed_scale
        moving = scale > 1e-6
        if moving:
            zero = np.zeros_like(current.position)
            for task_time, goal in self._upcoming(targets):
                times.append(task_time / scale)
                positions.append(goal)
                velocities.append(zero)
                accelerations.append(zero)
        return Plan(self.mode.value if moving else 'hold', np.array(times), np.array(positions),
                    np.array(velocities), np.array(accelerations))

    def _upcoming(self, targets: int) -> list[tuple[float, np.ndarray]]:
        """(task-clock seconds from now, position) of the next ``targets`` segment ends."""
        if self.mode is not Mode.AUTO:
            assert self._move is not None
            return [(self._move.duration - self._move_elapsed, self._move.goal)][:targets]
        trajectory = self.trajectory
        segments = trajectory.task.segments
        _, index, elapsed = trajectory.locate(self.task_time)
        out: list[tuple[float, np.ndarray]] = []
        offset = -elapsed
        while len(out) < targets:
            segment, move = segments[index], trajectory.moves[index]
            arrival, departure = offset + move.duration, offset + move.duration + segment.dwell
            if arrival > 0.0:
                out.append((arrival, move.goal))
            if segment.dwell > 0.0 and departure > 0.0 and len(out) < targets:
                out.append((departure, move.goal))
            offset = departure
            index = (index + 1) % len(segments)
        return out

    def _start_move(self, goal: np.ndarray) -> None:
        distance = np.abs(goal - self._position)
        duration = float(np.max(PEAK_VELOCITY_FACTOR * distance / (MANUAL_SPEED_FRACTION * self._arm.velocity)))
        self._move = _Move(self._position.copy(), goal, max(duration, MINIMUM_MOVE_DURATION))
        self._move_elapsed = 0.0
