"""Parameters of the cloud_uploader node: recorded topics, the durable spool and the S3 target.

Topics are parallel arrays (entry i of ``topics``, ``types`` and ``qos``), because ROS
parameters cannot hold lists of structures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from twin_bag.config import QOS_CHOICES, check_topics
from twin_core.config import describe

DROP_OLDEST = 'drop_oldest'
DROP_NEWEST = 'drop_newest'
@dataclass(frozen=True)
class SpoolConfig:
    """Where segments wait for upload, how they roll and how much disk they may use."""

    directory: str = field(default='~/.ros/twin_cloud_spool', metadata=describe(
        'Spool directory (created if missing); pending segments survive restarts here.'))
    segment_max_mb: float = field(default=8.0, metadata=describe(
        'A segment is finalized once its messages reach this many MB.', min=0.01, max=256.0))
    segment_max_s: float = field(default=30.0, metadata=describe(
        'A segment is finalized once it spans this many seconds.', min=0.1, max=3600.0))
    max_mb: float = field(default=1024.0, metadata=describe(
        'Disk the spool may use, MB (at least twice segment_max_mb).', min=0.02, max=1.0e6))
    policy: str = field(default=DROP_OLDEST, metadata=describe(
        'When max_mb is reached: delete the oldest pending segment, or drop new messages.',
        choices=(DROP_OLDEST, DROP_NEWEST)))
    compression: str = field(default='zstd', metadata=describe(
        'MCAP chunk compression.', choices=('zstd', 'none')))

    def __post_init__(self) -> None:
        if self.max_mb < 2.0 * self.segment_max_mb:
            raise ValueError(f'max_mb ({self.max_mb}) must be at least twice '
                             f'segment_max_mb ({self.segment_max_mb})')


@dataclass(frozen=True)
class S3Config:
    """The bucket and how to reach it; credentials come from the standard AWS chain."""

    bucket: str = field(default='twin-data', metadata=describe('Target bucket (must exist).'))
    prefix: str = field(default='twin', metadata=describe(
        'Key prefix: <prefix>/<robot>/YYYY/MM/DD/HH/<segment>.'))
    endpoint_url: str = field(default='', metadata=describe(
        'S3-compatible endpoint, e.g. http://127.0.0.1:8333; empty: AWS for the region.'))
    region: str = field(default='us-east-1', metadata=describe('AWS region.'))
    profile: str = field(default='', metadata=describe(
        'Profile of the shared AWS config/credentials files; empty: the default chain.'))
    path_style: bool = field(default=True, metadata=describe(
        'Path-style addressing (S3-compatible servers); false: virtual-hosted style.'))
    timeout: float = field(default=30.0, metadata=describe(
        'Connect and read timeout of one request, s.', min=0.5, max=600.0))
    backoff_min: float = field(default=0.5, metadata=describe(
        'First retry delay after a failed upload, s; doubles after each failure.',
        min=0.01, max=60.0))
    backoff_max: float = field(default=30.0, metadata=describe(
        'Largest retry delay, s.', min=0.01, max=3600.0))

    def __post_init__(self) -> None:
        if self.backoff_max < self.backoff_min:
            raise ValueError('backoff_max must not be below backoff_min')


@dataclass(frozen=True)
class CloudUploaderConfig:
    """Parameters of the ``cloud_uploader`` node."""

    robot: str = field(default='cell_1', metadata=describe(
        'Robot or cell name, part of every object key.'))
    topics: tuple[str, ...] = field(default=(
        'twin/state', 'twin/joint_states', 'cell/status', 'diagnostics'),
        metadata=describe('Recorded topics (raw CDR, no deserialization).'))
    types: tuple[str, ...] = field(default=(
        'twin_interfaces/msg/TwinState', 'sensor_msgs/msg/JointState',
        'twin_interfaces/msg/CellStatus', 'diagnostic_msgs/msg/DiagnosticArray'),
        metadata=describe('Message type of each topic, e.g. sensor_msgs/msg/Imu.'))
    qos: tuple[str, ...] = field(default=('reliable',) * 4, metadata=describe(
        f'Subscription QoS of each topic, one of {list(QOS_CHOICES)}.'))
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    s3: S3Config = field(default_factory=S3Config)
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics.', min=0.1, max=10.0))

    def __post_init__(self) -> None:
        check_topics(self.topics, self.types, self.qos)
        if not re.fullmatch(r'[\w.-]+', self.robot):
            raise ValueError(f'robot: {self.robot!r} may hold only letters, digits, _ . -')
