"""Parameters of the bag recorder and player, and the QoS a bag records for each topic.

Recorded topics are parallel arrays (entry i of ``topics``, ``types`` and ``qos``), like the
cloud uploader's; on the command line each is one ``/topic:pkg/msg/Type[:sensor_data|latched]``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from twin_core.config import describe

SENSOR_DATA, LATCHED = 'sensor_data', 'latched'
QOS_CHOICES = ('reliable', 'sensor_data', 'latched')  # latched: reliable, transient local
TYPE_NAME = re.compile(r'^[A-Za-z]\w*/msg/[A-Z]\w*$')
RELIABLE_DEPTH = 100
SENSOR_DEPTH = 5
_UNSET = QosTime(0, 0)


def check_topics(topics: Sequence[str], types: Sequence[str], qos: Sequence[str]) -> None:
    """Validate parallel topic arrays: at least one topic, each once, a type and QoS each."""
    count = len(topics)
    if not count or len(set(topics)) != count:
        raise ValueError('topics: need at least one topic, each listed once')
    for name, values in (('types', types), ('qos', qos)):
        if len(values) != count:
            raise ValueError(f'{name} has {len(values)} entries, topics has {count}')
    for topic, type_name, profile in zip(topics, types, qos):
        if not TYPE_NAME.match(type_name):
            raise ValueError(f'types: {type_name!r} ({topic}) is not like pkg/msg/Name')
        if profile not in QOS_CHOICES:
            raise ValueError(f'qos: {profile!r} ({topic}) is not one of {list(QOS_CHOICES)}')


@dataclass(frozen=True)
class RecorderConfig:
    """Parameters of the ``twin_recorder`` node."""

    output: str = field(default='', metadata=describe(
        'Bag directory to create (must not exist); empty: twin_bag_<UTC time> here.'))
    topics: tuple[str, ...] = field(default=(
        'twin/state', 'twin/joint_states', 'cell/status', 'twin/actuation/audit'),
        metadata=describe('Recorded topics (raw CDR, no deserialization).'))
    types: tuple[str, ...] = field(default=(
        'twin_interfaces/msg/TwinState', 'sensor_msgs/msg/JointState',
        'twin_interfaces/msg/CellStatus', 'twin_interfaces/msg/CommandAudit'),
        metadata=describe('Message type of each topic, e.g. sensor_msgs/msg/Imu.'))
    qos: tuple[str, ...] = field(default=('reliable',) * 4, metadata=describe(
        f'Subscription QoS of each topic, one of {list(QOS_CHOICES)}; stored in the bag.'))
    duration_s: float = field(default=0.0, metadata=describe(
        'Stop recording after this many seconds; 0: until stopped.', min=0.0, max=1.0e7))
    compression: str = field(default='none', metadata=describe(
        'MCAP chunk compression.', choices=('zstd', 'none')))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics.', min=0.1, max=10.0))

    def __post_init__(self) -> None:
        check_topics(self.topics, self.types, self.qos)


@dataclass(frozen=True)
class PlayerConfig:
    """Parameters of the ``twin_player`` node."""

    bag: str = field(default='', metadata=describe('Bag directory (or .mcap file) to replay.'))
    rate: float = field(default=1.0, metadata=describe(
        'Playback speed factor: 2.0 plays twice as fast.', min=0.01, max=100.0))
    loop: bool = field(default=False, metadata=describe('Start over at the end of the bag.'))
    topics: tuple[str, ...] = field(default=(), metadata=describe(
        'Replay only these topics; empty: every topic of the bag.'))
    clock: bool = field(default=False, metadata=describe(
        'Publish the bag time on /clock (for nodes with use_sim_time).'))
    clock_rate_hz: float = field(default=100.0, metadata=describe(
        'Rate of /clock between messages.', min=1.0, max=1000.0))
    delay_s: float = field(default=1.0, metadata=describe(
        'Wait before the first message (lets subscribers discover the publishers), s.',
        min=0.0, max=60.0))

    restamp: bool = field(default=False, metadata=describe(
        'Set each header stamp to the wall-clock time its recorded instant plays at, so the '
        'messages look live (stamps keep rising over a loop\'s passes).'))
    namespaced: bool = field(default=False, metadata=describe(
        'Play the bag\'s topics in the node\'s namespace (/imu/data on /robot_1/imu/data); '
        'topics then names the bag\'s topics.'))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics (messages published per topic, passes).', min=0.1, max=10.0))

    def required_paths(self) -> dict[str, Path]:
        return {'bag': Path(self.bag).expanduser()} if self.bag else {}


def parse_topic(spec: str) -> tuple[str, str, str]:
    """``/topic:pkg/msg/Type[:sensor_data|latched]`` as (topic, type, qos)."""
    topic, _, rest = spec.partition(':')
    type_name, _, qos = rest.partition(':')
    if not topic or not type_name:
        raise ValueError(f'{spec!r} is not like /topic:pkg/msg/Type[:sensor_data|latched]')
    return topic, type_name, qos or 'reliable'


def offered_qos(qos: str) -> Qos:
    """The QoS profile a bag records for a topic subscribed with ``qos``."""
    sensor, latched = qos == SENSOR_DATA, qos == LATCHED
    return Qos(QosHistory.KEEP_LAST, SENSOR_DEPTH if sensor else 1 if latched else RELIABLE_DEPTH,
               QosReliability.BEST_EFFORT if sensor else QosReliability.RELIABLE,
               QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               _UNSET, _UNSET, QosLiveliness.AUTOMATIC, _UNSET, False)


def qos_name(profiles: list[Qos]) -> str:
    """How to replay a topic the bag recorded with these offered QoS profiles."""
    if any(p.reliability == QosReliability.BEST_EFFORT for p in profiles):
        return SENSOR_DATA
    if any(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles):
        return LATCHED
    return 'reliable'
