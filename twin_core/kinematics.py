"""Kinematics of the arm from its URDF: every link's pose in base_link and in world, and the
angular velocity of a link from the joint rates.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat, quat2mat

from twin_core.urdf import MOVABLE, JointOrigin, read_joint_origins

BASE_FRAME = 'base_link'
END_EFFECTOR = 'tool0'


@dataclass(frozen=True)
class Pose:
    """A rigid transform: position (m) and unit quaternion (w, x, y, z)."""

    position: np.ndarray
    orientation: np.ndarray

    @staticmethod
    def identity() -> Pose:
        return Pose(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Pose:
        quaternion = mat2quat(matrix[:3, :3])
        return Pose(matrix[:3, 3].copy(), quaternion if quaternion[0] >= 0.0 else -quaternion)

    def matrix(self) -> np.ndarray:
        """The 4×4 homogeneous transform."""
        out = np.eye(4)
        out[:3, :3] = quat2mat(self.orientation)
        out[:3, 3] = self.position
        return out


def _rotations(axis: np.ndarray, angles: np.ndarray | float) -> np.ndarray:
    """Rotations (..., 3, 3) by ``angles`` (...) about the unit ``axis`` (Rodrigues' formula)."""
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    angles = np.asarray(angles, float)[..., None, None]
    return np.eye(3) + np.sin(angles) * cross + (1.0 - np.cos(angles)) * (cross @ cross)


def _origin(joint: JointOrigin) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = euler2mat(*joint.rpy, axes='sxyz')  # URDF rpy: fixed-axis roll, pitch, yaw
    out[:3, 3] = joint.xyz
    return out


class ArmKinematics:
    """Poses and angular velocities of the URDF tree's frames in ``base_link``; revolute joints
    move, others are fixed.
    """

    def __init__(self, joints: Sequence[JointOrigin], base_in_world: Pose | None = None) -> None:
        children: dict[str, list[JointOrigin]] = {joint.parent: [] for joint in joints}
        for joint in joints:
            children[joint.parent].append(joint)
        self._chain: list[tuple[JointOrigin, np.ndarray, np.ndarray]] = []
        pending = [BASE_FRAME]
        while pending:  # breadth first, so parents precede children
            parent = pending.pop(0)
            for joint in children.get(parent, ()):
                axis = np.asarray(joint.axis, float)
                self._chain.append((joint, _origin(joint), axis / np.linalg.norm(axis)))
                pending.append(joint.child)
        self._by_child = {entry[0].child: entry for entry in self._chain}
        self.joints = tuple(joint for joint, _, _ in self._chain)
        self.edges = tuple((joint.parent, joint.child) for joint in self.joints)
        self.joint_names = tuple(joint.name for joint in self.joints if joint.type in MOVABLE)
        self.frames = (BASE_FRAME,) + tuple(joint.child for joint in self.joints)
        self.base_in_world = base_in_world or Pose.identity()

    @classmethod
    def from_urdf(cls, urdf_path: str | Path, base_in_world: Pose | None = None) -> ArmKinematics:
        return cls(read_joint_origins(urdf_path), base_in_world)

    def transforms(self, positions: Mapping[str, float]) -> dict[str, np.ndarray]:
        """4×4 transform of every frame in base_link; missing joint positions count as 0."""
        out = {BASE_FRAME: np.eye(4)}
        for joint, origin, axis in self._chain:
            transform = out[joint.parent] @ origin
            if joint.type in MOVABLE:
                motion = np.eye(4)
                motion[:3, :3] = _rotations(axis, positions.get(joint.name, 0.0))
                transform = transform @ motion
            out[joint.child] = transform
        return out

    def angular_velocity(self, positions: np.ndarray, velocities: np.ndarray, frame: str) -> np.ndarray:
        """Angular velocity (n, 3) of ``frame`` relative to base_link, expressed in ``frame``, from
        rows of joint positions (rad) and velocities (rad/s) (n, joints) ordered like ``joint_names``.
        """
        path = []
        while frame != BASE_FRAME:
            path.append(self._by_child[frame])
            frame = path[-1][0].parent
        column = {name: j for j, name in enumerate(self.joint_names)}
        omega = np.zeros((len(positions), 3))
        for joint, origin, axis in reversed(path):  # child frame = parent frame · origin · motion
            omega = omega @ origin[:3, :3]
            if joint.type in MOVABLE:
                j = column[joint.name]
                omega = np.einsum('nji,nj->ni', _rotations(axis, positions[:, j]), omega)
                omega += velocities[:, j, None] * axis
        return omega

    def poses(self, positions: Mapping[str, float]) -> dict[str, Pose]:
        """Pose of every frame in base_link."""
        return {frame: Pose.from_matrix(m) for frame, m in self.transforms(positions).items()}

    def end_effector(self, positions: Mapping[str, float], frame: str = END_EFFECTOR) -> Pose:
        """Pose of ``frame`` (default tool0) in base_link."""
        return Pose.from_matrix(self.transforms(positions)[frame])

    def in_world(self, pose: Pose) -> Pose:
        """A base_link pose expressed in world."""
        return Pose.from_matrix(self.base_in_world.matrix() @ pose.matrix())
