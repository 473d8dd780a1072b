"""The arm's URDF read once for every layer: joint limits and dynamics, and the kinematic tree."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from twin_core.paths import config_dir

MOVABLE = ('revolute', 'continuous')


@dataclass(frozen=True)
class ArmDescription:
    """Per-joint data read from the URDF (arrays ordered like ``joint_names``)."""

    joint_names: tuple[str, ...]
    lower: np.ndarray  # rad
    upper: np.ndarray  # rad
    effort: np.ndarray  # N·m
    velocity: np.ndarray  # rad/s
    damping: np.ndarray  # N·m·s/rad
    friction: np.ndarray  # N·m (Coulomb)
    gear_ratio: np.ndarray  # motor turns per joint turn (1 when the URDF has no transmission)
    link_names: tuple[str, ...]


@dataclass(frozen=True)
class JointOrigin:
    """One URDF joint as a transform from its parent link to its child link."""

    name: str
    type: str  # revolute, continuous, fixed, ...
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float]


def _required(element: ElementTree.Element | None, name: str, what: str, urdf_path: str | Path) -> str:
    """The attribute ``name`` of ``element`` (``what``: the element as the error names it)."""
    value = None if element is None else element.get(name)
    if value is None:
        raise ValueError(f'{urdf_path}: {what} without {name}="..."')
    return value


def urdf_file(configured: str | Path = '') -> Path:
    """The robot description ``configured``; empty: the arm shipped in config/."""
    return Path(configured) if configured else config_dir() / 'arm.urdf'


@cache
def default_joint_names() -> tuple[str, ...]:
    """The movable joints of the arm shipped in config/, in file order: what configs default to."""
    return read_arm_description(urdf_file()).joint_names


def check_joint_names(names: tuple[str, ...]) -> None:
    """``ValueError`` unless ``names`` is a non-empty list of distinct joint names."""
    if not names or len(set(names)) != len(names):
        raise ValueError('joint_names must be non-empty and unique')


def read_arm_description(urdf_path: str | Path) -> ArmDescription:
    """Read the movable joints (in file order), their limits, dynamics and transmissions."""
    root = ElementTree.parse(urdf_path).getroot()
    joints = [joint for joint in root.findall('joint') if joint.get('type') in MOVABLE]
    if not joints:
        raise ValueError(f'{urdf_path}: no revolute joints')
    reductions = {
        element.get('name'): float(transmission.findtext('actuator/mechanicalReduction', '1'))
        for transmission in root.findall('transmission') if (element := transmission.find('joint')) is not None
    }

    def attribute(joint: ElementTree.Element, tag: str, name: str, default: float) -> float:
        element = joint.find(tag)
        return float(element.get(name, default)) if element is not None else default

    names = tuple(_required(joint, 'name', '<joint>', urdf_path) for joint in joints)
    return ArmDescription(
        joint_names=names,
        lower=np.array([attribute(j, 'limit', 'lower', -math.pi) for j in joints]),
        upper=np.array([attribute(j, 'limit', 'upper', math.pi) for j in joints]),
        effort=np.array([attribute(j, 'limit', 'effort', math.inf) for j in joints]),
        velocity=np.array([attribute(j, 'limit', 'velocity', math.inf) for j in joints]),
        damping=np.array([attribute(j, 'dynamics', 'damping', 0.0) for j in joints]),
        friction=np.array([attribute(j, 'dynamics', 'friction', 0.0) for j in joints]),
        gear_ratio=np.array([reductions.get(name, 1.0) for name in names]),
        link_names=tuple(_required(link, 'name', '<link>', urdf_path) for link in root.findall('link')),
    )


def read_joint_origins(urdf_path: str | Path) -> tuple[JointOrigin, ...]:
    """Every joint's parent, child, origin (xyz, rpy) and axis (default x, as in URDF)."""
    root = ElementTree.parse(urdf_path).getroot()

    def triple(element: ElementTree.Element | None, name: str, default: str) -> tuple[float, float, float]:
        text = element.get(name, default) if element is not None else default
        values = [float(v) for v in text.split()]
        if len(values) != 3:
            raise ValueError(f'{urdf_path}: {name}="{text}" needs three numbers')
        return values[0], values[1], values[2]

    def origin(joint: ElementTree.Element) -> JointOrigin:
        name = _required(joint, 'name', '<joint>', urdf_path)
        return JointOrigin(
            name=name, type=_required(joint, 'type', f'joint {name}', urdf_path),
            parent=_required(joint.find('parent'), 'link', f'joint {name}: <parent>', urdf_path),
            child=_required(joint.find('child'), 'link', f'joint {name}: <child>', urdf_path),
            xyz=triple(joint.find('origin'), 'xyz', '0 0 0'), rpy=triple(joint.find('origin'), 'rpy', '0 0 0'),
            axis=triple(joint.find('axis'), 'xyz', '1 0 0'))

    return tuple(origin(joint) for joint in root.findall('joint'))
