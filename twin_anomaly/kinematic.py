"""Kinematic residual of the IMU: its gyro against the angular rate the joint states imply.

The arm's kinematics turn the encoders' positions and velocities into the angular velocity of
the IMU's frame; a sound IMU reads that plus its constant device bias and noise, whatever the
motion, so a bias jump shows even while the wrist moves.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from twin_core.kinematics import ArmKinematics
from twin_core.signals import IMU_ANGULAR_VELOCITY, joint_signals
from twin_core.urdf import JointOrigin

IMU_FRAME = 'imu_link'
GYRO_CHANNELS = IMU_ANGULAR_VELOCITY


class GyroResidual:
    """Measured minus predicted angular rate of ``frame`` (rad/s, per gyro channel) of a series
    with channels ``names``.
    """

    channels = GYRO_CHANNELS

    def __init__(self, kinematics: ArmKinematics, names: Sequence[str], frame: str = IMU_FRAME) -> None:
        index = {name: j for j, name in enumerate(names)}
        needed = [*GYRO_CHANNELS, *joint_signals(kinematics.joint_names, 'position'),
                  *joint_signals(kinematics.joint_names, 'velocity')]
        missing = [name for name in needed if name not in index]
        if missing:
            raise KeyError(f'kinematic residual: no channel {", ".join(missing)}')
        self.kinematics, self.frame = kinematics, frame
        self._gyro, self._positions, self._velocities = np.split(
            np.array([index[name] for name in needed]), [3, 3 + len(kinematics.joint_names)])

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Residual per frame and gyro axis (n, 3); NaN where an input is missing."""
        predicted = self.kinematics.angular_velocity(values[:, self._positions], values[:, self._velocities],
                                                     self.frame)
        return values[:, self._gyro] - predicted

    def to_dict(self) -> dict[str, Any]:
        return {'frame': self.frame, 'joints': [asdict(joint) for joint in self.kinematics.joints]}

    @classmethod
    def from_dict(cls, document: dict[str, Any], names: Sequence[str]) -> GyroResidual:
        joints = []
        for joint in document['joints']:  # asdict() read back from JSON: the triples are lists
            fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in joint.items()}
            joints.append(JointOrigin(**fields))
        return cls(ArmKinematics(joints), names, document['frame'])
