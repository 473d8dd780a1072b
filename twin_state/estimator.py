"""State estimator: frames in, current state out; past and predicted states on request."""
from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from transforms3d.euler import euler2quat

from twin_core.kinematics import ArmKinematics, Pose
from twin_core.signals import joint_signals
from twin_core.urdf import read_arm_description
from twin_state.config import StateConfig
from twin_state.history import History, HistoryError
from twin_state.live import LiveMirror
from twin_state.obstacles import ScanGeometry
from twin_state.state import InputSample, TwinState, TwinStateBuilder


@dataclass(frozen=True)
class Lookup:
    """A state from :meth:`StateEstimator.lookup`; ``sigma`` (rad, per joint) only if predicted."""

    state: TwinState
    predicted: bool
    sigma: np.ndarray


class StateEstimator:
    """Builds states from frames, records them in a history and answers lookups."""

    def __init__(self, config: StateConfig, urdf_path: str | Path) -> None:
        base = Pose(np.array(config.base_xyz), euler2quat(*config.base_rpy, axes='sxyz'))
        self.arm = read_arm_description(urdf_path)
        self.kinematics = ArmKinematics.from_urdf(urdf_path, base)
        scan = config.scan
        self.builder = TwinStateBuilder(
            self.arm, self.kinematics, ScanGeometry(scan.angle_min, scan.angle_max,
                                                    scan.range_min, scan.range_max),
            config.end_effector, config.history.derivative_points, scan.cluster_gap,
            scan.min_points, config.plan.max_age)
        self._desired_order = LiveMirror(self.arm.joint_names)
        self.history = History(self.builder.layout, config.history.capacity,
                               config.history.jump_back)
        self._points = config.history.derivative_points
        self.latest: TwinState | None = None
        self.errors: collections.Counter[str] = collections.Counter()  # error type → count

    def ingest(self, stamp: float, samples: Sequence[InputSample]) -> TwinState | None:
        """Take one frame; the new state, or None when it is incomplete or rejected."""
        row, inputs = self.builder.take(stamp, samples)
        try:
            self.history.append(stamp, row)
        except HistoryError as error:
            self.errors[type(error).__name__] += 1
            return None
        self.latest = self.builder.state_from_row(stamp, row, inputs)
        return self.latest

    def desired(self, stamp: int, names: Sequence[str], position: Sequence[float],
                velocity: Sequence[float]) -> None:
        """One desired joint state (ns, joint names in any order); :class:`ValueError` says why
        one is refused (a joint missing, a wrong length, a non-finite value).
        """
        ordered_position, ordered_velocity, _ = self._desired_order.arrange(names, position, velocity, ())
        self.builder.desired(stamp, ordered_position, ordered_velocity)

    def lookup(self, stamp: float, allow_prediction: bool = False) -> Lookup:
        """The state at ``stamp`` (0 = newest); beyond the newest only if ``allow_prediction``.

        Raises :class:`~twin_state.history.HistoryError` subclasses like the history.
        """
        if allow_prediction and len(self.history) and stamp > self.history.newest:
            positions = joint_signals(self.arm.joint_names, 'position')
            prediction = self.history.predict(positions, stamp, self._points)
            row = self.history.state_at(0.0)
            row[self.history.layout.columns_of(positions)] = prediction.values
            row[self.builder.plan_columns] = np.nan  # the desired values belong to the newest sample
            state = self.builder.state_from_row(stamp, row)
            pose = self.kinematics.end_effector(dict(zip(self.arm.joint_names, prediction.values)),
                                                self.builder.end_effector)
            return Lookup(replace(state, robot=replace(state.robot, end_effector_pose=pose)),
                          True, prediction.sigma)
        if stamp == 0.0 and self.latest is not None and self.latest.stamp == self.history.newest:
            return Lookup(self.latest, False, np.zeros(0))
        row = self.history.state_at(stamp)
        return Lookup(self.builder.state_from_row(stamp, row), False, np.zeros(0))
