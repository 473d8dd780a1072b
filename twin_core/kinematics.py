"""Kinematics of the arm from its URDF: every link's pose in base_link and in world, and the
angular velocity of a link from the joint rates.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transforms3d.euler import euler2mat
from transforms3d.quaternions import quat2mat

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
        """The pose of a homogeneous transform whose rotation is orthonormal (w ≥ 0)."""
        return Pose(matrix[:3, 3].copy(), rotation_quaternion(matrix))

    def matrix(self) -> np.ndarray:
        """The 4×4 homogeneous transform."""
        out = np.eye(4)
        out[:3, :3] = quat2mat(self.orientation)
        out[:3, 3] = self.position
        return out


def rotation_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w ≥ 0, of the orthonormal rotation in ``matrix[:3, :3]``
    (Shepperd's method: each case divides by the largest of the four, so none loses precision).
    """
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = matrix[:3, :3].tolist()
    trace = r00 + r11 + r22
    if trace >= max(r00, r11, r22):
        s = 2.0 * math.sqrt(1.0 + trace)
        q = (0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s)
    elif r00 >= r11 and r00 >= r22:
        s = 2.0 * math.sqrt(1.0 + r00 - r11 - r22)
        q = ((r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s)
    elif r11 >= r22:
        s = 2.0 * math.sqrt(1.0 - r00 + r11 - r22)
        q = ((r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s)
    else:
        s = 2.0 * math.sqrt(1.0 - r00 - r11 + r22)
        q = ((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s)
    quaternion = np.array(q)
    quaternion /= math.sqrt(quaternion @ quaternion)
    return quaternion if quaternion[0] >= 0.0 else -quaternion


def _cross(axis: np.ndarray) -> np.ndarray:
    """The matrix K of the cross product with ``axis``: K @ v = axis × v."""
    return np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])


def _rotations(axis: np.ndarray, angles: np.ndarray | float) -> np.ndarray:
    """Rotations (..., 3, 3) by ``angles`` (...) about the unit ``axis`` (Rodrigues' formula)."""
    cross = _cross(axis)
    angles = np.asarray(angles, float)[..., None, None]
    return np.eye(3) + np.sin(angles) * cross + (1.0 - np.cos(angles)) * (cross @ cross)


def _origin(joint: JointOrigin) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = euler2mat(*joint.rpy, axes='sxyz')  # URDF rpy: fixed-axis roll, pitch, yaw
    out[:3, 3] = joint.xyz
    return out


class _Link:
    """One joint of the tree: its child frame's transform in its parent frame at a joint position."""

    def __init__(self, joint: JointOrigin) -> None:
        self.joint = joint
        self.name, self.parent, self.child = joint.name, joint.parent, joint.child
        self.movable = joint.type in MOVABLE
        self.origin = _origin(joint)
        axis = np.asarray(joint.axis, float)
        self.axis = axis / np.linalg.norm(axis)
        cross = np.zeros((4, 4))
        cross[:3, :3] = _cross(self.axis)
        # origin · motion(q) = origin + sin q · origin·K + (1 − cos q) · origin·K² (Rodrigues' formula)
        self._sine, self._versine = self.origin @ cross, self.origin @ cross @ cross

    def transform(self, positions: Mapping[str, float]) -> np.ndarray:
        """4×4 transform of the child frame in the parent frame; a missing position counts as 0."""
        if not self.movable:
            return self.origin
        angle = positions.get(self.name, 0.0)
        return self.origin + math.sin(angle) * self._sine + (1.0 - math.cos(angle)) * self._versine


class ArmKinematics:
    """Poses and angular velocities of the URDF tree's frames in ``base_link``; revolute joints
    move, others are fixed.
    """

    def __init__(self, joints: Sequence[JointOrigin], base_in_world: Pose | None = None) -> None:
        children: dict[str, list[JointOrigin]] = {joint.parent: [] for joint in joints}
        for joint in joints:
            children[joint.parent].append(joint)
        self._links: list[_Link] = []
        pending = [BASE_FRAME]
        while pending:  # breadth first, so parents precede children
            parent = pending.pop(0)
            for joint in children.get(parent, ()):
                self._links.append(_Link(joint))
                pending.append(joint.child)
        self._by_child = {link.child: link for link in self._links}
        self._paths: dict[str, list[_Link]] = {}  # frame → the links from base_link to it
        self.joints = tuple(link.joint for link in self._links)
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
        for link in self._links:
            out[link.child] = out[link.parent] @ link.transform(positions)
        return out

    def angular_velocity(self, positions: np.ndarray, velocities: np.ndarray, frame: str) -> np.ndarray:
        """Angular velocity (n, 3) of ``frame`` relative to base_link, expressed in ``frame``, from
        rows of joint positions (rad) and velocities (rad/s) (n, joints) ordered like ``joint_names``.
        """
        column = {name: j for j, name in enumerate(self.joint_names)}
        omega = np.zeros((len(positions), 3))
        for link in self._path(frame):  # child frame = parent frame · origin · motion
            omega = omega @ link.origin[:3, :3]
            if link.movable:
                j = column[link.name]
                omega = np.einsum('nji,nj->ni', _rotations(link.axis, positions[:, j]), omega)
                omega += velocities[:, j, None] * link.axis
        return omega

    def poses(self, positions: Mapping[str, float]) -> dict[str, Pose]:
        """Pose of every frame in base_link."""
        return {frame: Pose.from_matrix(m) for frame, m in self.transforms(positions).items()}

    def end_effector(self, positions: Mapping[str, float], frame: str = END_EFFECTOR) -> Pose:
        """Pose of ``frame`` (default tool0) in base_link: only the links up to it are computed."""
        transform = np.eye(4)
        for link in self._path(frame):
            transform = transform @ link.transform(positions)
        return Pose.from_matrix(transform)

    def _path(self, frame: str) -> list[_Link]:
        """The links from base_link to ``frame``, in that order (:class:`KeyError`: no such frame)."""
        path = self._paths.get(frame)
        if path is None:
            path, child = [], frame
            while child != BASE_FRAME:
                path.append(self._by_child[child])
                child = path[-1].parent
            path = self._paths[frame] = path[::-1]
        return path

    def in_world(self, pose: Pose) -> Pose:
        """A base_link pose expressed in world."""
        return Pose.from_matrix(self.base_in_world.matrix() @ pose.matrix())
