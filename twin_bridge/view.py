"""Live view: the twin's topics served on the Foxglove WebSocket protocol (Foxglove, Lichtblick).

Messages go out as they came in, CDR bytes with the ``ros2msg`` definition of their type as the
channel's schema, so a viewer decodes them like a ROS 2 bag: no conversion per message. The
robot description is served on ``robot_description`` (std_msgs/msg/String) and, from the twin's
joint states, the transform of every URDF joint on ``tf`` (foxglove.FrameTransforms), so the 3D
panel draws the arm without robot_state_publisher.

The cell camera, where ``camera/image_raw/compressed`` is published: the node keeps only the
newest image's bytes as they came (no decoding) and, at most ``camera.rate_hz`` times a second,
hands a newer one on: its JPEG to an HTTP server (``http://host:camera.http_port/``: a page
showing it, ``/stream.mjpg``, ``/snapshot.jpg``) and its CDR to the Foxglove channel of the topic
(an Image panel shows it).
"""
from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from foxglove.messages import FrameTransform, FrameTransforms, Quaternion, Timestamp, Vector3
from transforms3d.quaternions import mat2quat

from twin_bag.config import QOS_CHOICES, check_topics
from twin_bag.writer import load_typestore
from twin_core.config import describe
from twin_core.kinematics import ArmKinematics
from twin_core.network import check_host

ROS2_SCHEMA_ENCODING = 'ros2msg'
CDR = 'cdr'
DESCRIPTION_TYPE = 'std_msgs/msg/String'
TRANSFORMS_TOPIC = 'tf'
SERVED = (  # topic, type, subscription QoS
    ('twin/joint_states', 'sensor_msgs/msg/JointState', 'reliable'),
    ('twin/live/joint_states', 'sensor_msgs/msg/JointState', 'sensor_data'),
    ('twin/end_effector_pose', 'geometry_msgs/msg/PoseStamped', 'reliable'),
    ('twin/markers', 'visualization_msgs/msg/MarkerArray', 'reliable'),
    ('twin/predicted_markers', 'visualization_msgs/msg/MarkerArray', 'reliable'),
    ('twin/predicted_trajectory', 'trajectory_msgs/msg/JointTrajectory', 'reliable'),
    ('twin/state', 'twin_interfaces/msg/TwinState', 'reliable'),
    ('twin/anomalies', 'twin_interfaces/msg/AnomalyEvent', 'reliable'),
    ('twin/maintenance_schedule', 'twin_interfaces/msg/MaintenanceSchedule', 'latched'),
    ('scan', 'sensor_msgs/msg/LaserScan', 'sensor_data'),
    ('diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 'reliable'),
)


CAMERA_TYPE = 'sensor_msgs/msg/CompressedImage'


@dataclass(frozen=True)
class ViewCameraConfig:
    """The camera's newest image in the live view."""

    enabled: bool = field(default=True, metadata=describe(
        'Serve the camera\'s newest image while `topic` is published (nothing is done without it).'))
    topic: str = field(default='camera/image_raw/compressed', metadata=describe(
        'sensor_msgs/CompressedImage topic (JPEG) of the camera.'))
    rate_hz: float = field(default=2.0, metadata=describe(
        'At most this many images per second are handed on (to HTTP and Foxglove); the rest are dropped.',
        min=0.1, max=10.0))
    http_port: int = field(default=8766, metadata=describe(
        'HTTP port of the camera page, /stream.mjpg and /snapshot.jpg, on `host` (0: any free port).',
        min=0, max=65535))


@dataclass(frozen=True)
class ViewConfig:
    """Parameters of the ``twin_view`` node."""

    host: str = field(default='127.0.0.1', metadata=describe(
        "Address the WebSocket server listens on ('0.0.0.0': every interface, for viewers on the cell network)."))
    port: int = field(default=8765, metadata=describe('WebSocket port (0: any free port).', min=0, max=65535))
    topics: tuple[str, ...] = field(default=tuple(t for t, _, _ in SERVED), metadata=describe(
        'Served topics (relative names follow the node namespace).'))
    types: tuple[str, ...] = field(default=tuple(t for _, t, _ in SERVED), metadata=describe(
        'Message type of each topic, e.g. sensor_msgs/msg/JointState.'))
    qos: tuple[str, ...] = field(default=tuple(q for _, _, q in SERVED), metadata=describe(
        f'Subscription QoS of each topic, one of {list(QOS_CHOICES)}.'))
    urdf: str = field(default='', metadata=describe(
        "Robot description served on robot_description; empty: config/arm.urdf."))
    frame_prefix: str = field(default='', metadata=describe(
        "Prefix of the transforms' frame ids ('robot_1/' in a fleet, like the state node's)."))
    transform_rate_hz: float = field(default=30.0, metadata=describe(
        'At most this many transform updates per second (from twin/joint_states).', min=1.0, max=1000.0))
    description_period_s: float = field(default=2.0, metadata=describe(
        'The robot description is sent again this often (s), for viewers that connect later.',
        min=0.1, max=3600.0))
    camera: ViewCameraConfig = ViewCameraConfig()

    def __post_init__(self) -> None:
        check_host(self.host)
        check_topics(self.topics, self.types, self.qos)
        if self.camera.enabled and self.camera.topic in self.topics:
            raise ValueError(f'topics: {self.camera.topic} is served as the camera (camera.topic), at most '
                             'camera.rate_hz: list it once')


def is_jpeg(image_format: str) -> bool:
    """Whether a CompressedImage ``format`` ('jpeg', 'rgb8; jpeg compressed bgr8', …) names JPEG data."""
    lowered = image_format.lower()
    return 'jpeg' in lowered or 'jpg' in lowered


class Newest:
    """The newest raw message of a topic; ``take`` hands each one on once (None: nothing new)."""

    def __init__(self) -> None:
        self._raw: bytes | None = None
        self.received = 0
        self.taken = 0

    def put(self, raw: bytes) -> None:
        self._raw = raw
        self.received += 1

    def take(self) -> bytes | None:
        raw, self._raw = self._raw, None
        self.taken += raw is not None
        return raw


def camera_page(title: str, rate_hz: float) -> bytes:
    """The page showing the camera's stream (the server pushes each new image)."""
    name = html.escape(title)
    return (f'''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name}: camera</title>
<style>body{{margin:0;background:#111;color:#ddd;font:14px sans-serif}}
img{{display:block;max-width:100vw;max-height:calc(100vh - 2em);margin:auto}}p{{margin:.4em;text-align:center}}</style>
</head><body><img src="stream.mjpg" alt="the camera's newest image (none yet)">
<p>{name}: the camera's newest image, at most {rate_hz:g} per second (<a href="snapshot.jpg">snapshot</a>)</p>
</body></html>
''').encode()


def schemas(type_names: Iterable[str], prefixes: Iterable[str]) -> dict[str, bytes]:
    """The ``ros2msg`` definition (the type's fields, then each type it uses) of every type."""
    names = sorted(set(type_names))
    typestore = load_typestore(names, list(prefixes))
    return {name: typestore.generate_msgdef(name, ros_version=2)[0].encode() for name in names}


@dataclass(frozen=True)
class JointTransform:
    """Pose of a URDF joint's child link in its parent link: translation (m), quaternion x, y, z, w."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]


def joint_transforms(kinematics: ArmKinematics, positions: Mapping[str, float],
                     prefix: str = '') -> list[JointTransform]:
    """The transform of every joint of the tree at ``positions`` (missing joints at 0), frame ids
    prefixed with ``prefix``.
    """
    frames = kinematics.transforms(positions)
    result = []
    for parent, child in kinematics.edges:
        local = np.linalg.solve(frames[parent], frames[child])
        w, x, y, z = (float(v) for v in mat2quat(local[:3, :3]))
        tx, ty, tz = (float(v) for v in local[:3, 3])
        result.append(JointTransform(prefix + parent, prefix + child, (tx, ty, tz), (x, y, z, w)))
    return result


def transforms_message(transforms: Iterable[JointTransform], sec: int, nanosec: int) -> FrameTransforms:
    """``transforms`` stamped ``sec``.``nanosec`` as one foxglove.FrameTransforms message."""
    stamp = Timestamp(sec=sec, nsec=nanosec)
    return FrameTransforms(transforms=[
        FrameTransform(timestamp=stamp, parent_frame_id=t.parent, child_frame_id=t.child,
                       translation=Vector3(x=t.translation[0], y=t.translation[1], z=t.translation[2]),
                       rotation=Quaternion(x=t.rotation[0], y=t.rotation[1], z=t.rotation[2], w=t.rotation[3]))
        for t in transforms])
