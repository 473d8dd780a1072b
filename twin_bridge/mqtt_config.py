"""Parameters of the mqtt_bridge node: broker, client session, outbox and topic mappings.

Mappings are parallel arrays (one entry per mapping at the same index in every array of a
direction), because ROS parameters cannot hold lists of structures.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe

PAYLOADS = ('json', 'cdr')
TYPE_NAME = re.compile(r'^[A-Za-z]\w*/msg/[A-Z]\w*$')
Limits = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker (server verification with a CA, optional client certificate)."""

    enabled: bool = field(default=False, metadata=describe('Connect over TLS.'))
    ca_file: str = field(default='', metadata=describe(
        'PEM CA bundle that signed the broker certificate; empty: the system CAs.'))
    cert_file: str = field(default='', metadata=describe('PEM client certificate; empty: none.'))
    key_file: str = field(default='', metadata=describe('PEM private key of cert_file.'))
    alpn: str = field(default='', metadata=describe(
        'ALPN protocol, e.g. x-amzn-mqtt-ca for AWS IoT Core on port 443; empty: none.'))

    def required_paths(self) -> dict[str, Path]:
        if not self.enabled:
            return {}
        files = {'ca_file': self.ca_file, 'cert_file': self.cert_file, 'key_file': self.key_file}
        return {key: Path(name) for key, name in files.items() if name}


@dataclass(frozen=True)
class BrokerConfig:
    """Where the broker is and how to authenticate."""

    host: str = field(default='127.0.0.1', metadata=describe('Broker host name or address.'))
    port: int = field(default=1883, metadata=describe('Broker port (8883 for TLS).', min=1, max=65535))
    username: str = field(default='', metadata=describe('User name; empty: anonymous.'))
    password_file: str = field(default='', metadata=describe(
        'File whose first line is the password (kept out of parameters and logs); empty: none.'))
    tls: TlsConfig = field(default_factory=TlsConfig)

    def required_paths(self) -> dict[str, Path]:
        return {'password_file': Path(self.password_file).expanduser()} if self.password_file else {}


@dataclass(frozen=True)
class ClientConfig:
    """The MQTT client and its session."""

    client_id: str = field(default='twin_mqtt_bridge', metadata=describe(
        'Client id; a persistent session is bound to it.'))
    protocol: str = field(default='v5', metadata=describe('MQTT version.', choices=('v5', 'v311')))
    clean_start: bool = field(default=False, metadata=describe(
        'Discard the broker-side session at connect (false: resume it, no loss).'))
    session_expiry: int = field(default=86400, metadata=describe(
        'MQTT 5 session expiry interval after a disconnect, s.', min=0, max=4294967295))
    keepalive: int = field(default=30, metadata=describe('Keep-alive interval, s.', min=5, max=3600))
    status_prefix: str = field(default='twin', metadata=describe(
        'Retained "online" / last-will "offline" are published on <status_prefix>/status.'))
    reconnect_min: float = field(default=0.5, metadata=describe(
        'First reconnect delay, s; doubles after each failure.', min=0.1, max=60.0))
    reconnect_max: float = field(default=30.0, metadata=describe(
        'Longest reconnect delay, s.', min=0.1, max=3600.0))
    max_inflight: int = field(default=20, metadata=describe(
        'QoS 1/2 messages sent but not yet acknowledged (the broker\'s receive maximum).',
        min=1, max=65535))


@dataclass(frozen=True)
class OutboxConfig:
    """The on-disk queue of QoS 1/2 messages the broker has not acknowledged."""

    directory: str = field(default='~/.ros/mqtt_bridge', metadata=describe(
        'Directory of the outbox database <client_id>.sqlite.'))
    capacity: int = field(default=100000, metadata=describe(
        'Pending messages kept; when full the oldest is dropped (counted, diagnostics ERROR).',
        min=1, max=100000000))
    dedup_window: int = field(default=100000, metadata=describe(
        'Inbound message ids remembered (persistently) to drop duplicates.', min=1, max=10000000))


@dataclass(frozen=True)
class RosToMqtt:
    """One outbound mapping."""

    ros_topic: str
    type_name: str
    mqtt_topic: str
    qos: int
    retain: bool
    payload: str


@dataclass(frozen=True)
class MqttToRos:
    """One inbound mapping; ``limits`` bound numeric fields (dotted paths) inclusively."""

    mqtt_topic: str
    ros_topic: str
    type_name: str
    qos: int
    payload: str
    limits: Limits


@dataclass(frozen=True)
class RosToMqttConfig:
    """ROS topics published to MQTT (index i of every array is mapping i)."""

    enabled: bool = field(default=True, metadata=describe('Forward ROS topics to MQTT.'))
    ros_topics: tuple[str, ...] = field(default=('diagnostics', 'twin/state'), metadata=describe(
        'ROS topics to subscribe.'))
    types: tuple[str, ...] = field(default=(
        'diagnostic_msgs/msg/DiagnosticArray', 'twin_interfaces/msg/TwinState'), metadata=describe(
        'Message type of each ROS topic, pkg/msg/Name.'))
    mqtt_topics: tuple[str, ...] = field(default=('twin/diagnostics', 'twin/state'), metadata=describe(
        'MQTT topic of each mapping.'))
    qos: tuple[int, ...] = field(default=(1, 1), metadata=describe('MQTT QoS (0, 1, 2) of each mapping.'))
    retain: tuple[bool, ...] = field(default=(False, True), metadata=describe(
        'Publish retained (the latest value is kept by the broker for new subscribers).'))
    payloads: tuple[str, ...] = field(default=('json', 'json'), metadata=describe(
        'json (readable by any consumer) or cdr (the serialized ROS message) per mapping.'))

    def __post_init__(self) -> None:
        _check_parallel(self, ('ros_topics', 'types', 'mqtt_topics', 'qos', 'retain', 'payloads'))

    def mappings(self) -> list[RosToMqtt]:
        if not self.enabled:
            return []
        return [RosToMqtt(*row) for row in zip(
            self.ros_topics, self.types, self.mqtt_topics, self.qos, self.retain, self.payloads)]


@dataclass(frozen=True)
class MqttToRosConfig:
    """MQTT topics published to ROS after validation (index i of every array is mapping i)."""

    enabled: bool = field(default=True, metadata=describe('Forward MQTT topics to ROS.'))
    mqtt_topics: tuple[str, ...] = field(default=(
        'plant/commands/speed_override', 'plant/commands/stop'), metadata=describe(
        'MQTT topics (filters with + and # allowed) to subscribe.'))
    ros_topics: tuple[str, ...] = field(default=(
        'twin/commands/speed_override', 'twin/commands/stop'), metadata=describe(
        'ROS topic each mapping publishes.'))
    types: tuple[str, ...] = field(default=('std_msgs/msg/Float64', 'std_msgs/msg/Empty'), metadata=describe(
        'Message type of each ROS topic, pkg/msg/Name.'))
    qos: tuple[int, ...] = field(default=(1, 1), metadata=describe('Subscription QoS (0, 1, 2).'))
    payloads: tuple[str, ...] = field(default=('json', 'json'), metadata=describe(
        'json or cdr per mapping.'))
    limits: tuple[str, ...] = field(default=('data=0.0..1.0', ''), metadata=describe(
        'Allowed ranges per mapping, "field=min..max;nested.field=min..max"; empty: types only.'))

    def __post_init__(self) -> None:
        _check_parallel(self, ('mqtt_topics', 'ros_topics', 'types', 'qos', 'payloads', 'limits'))
        for text in self.limits:
            parse_limits(text)

    def mappings(self) -> list[MqttToRos]:
        if not self.enabled:
            return []
        return [MqttToRos(topic, ros_topic, type_name, qos, payload, parse_limits(limits))
                for topic, ros_topic, type_name, qos, payload, limits in zip(
                    self.mqtt_topics, self.ros_topics, self.types, self.qos, self.payloads, self.limits)]


@dataclass(frozen=True)
class MqttBridgeConfig:
    """Parameters of the mqtt_bridge node."""

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    ros_to_mqtt: RosToMqttConfig = field(default_factory=RosToMqttConfig)
    mqtt_to_ros: MqttToRosConfig = field(default_factory=MqttToRosConfig)
    ros_queue_depth: int = field(default=1000, metadata=describe(
        'Depth of the reliable ROS subscriptions and publishers.', min=1, max=100000))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of the diagnostics status.', min=0.1, max=10.0))

    def __post_init__(self) -> None:
        if self.client.reconnect_min > self.client.reconnect_max:
            raise ValueError('client.reconnect_min must not exceed client.reconnect_max')


def parse_limits(text: str) -> Limits:
    """``'data=0.0..1.0;linear.x=-1..1'`` to ``{'data': (0.0, 1.0), 'linear.x': (-1.0, 1.0)}``."""
    limits: Limits = {}
    for item in filter(None, (part.strip() for part in text.split(';'))):
        name, _, span = item.partition('=')
        low, _, high = span.partition('..')
        try:
            bounds = float(low), float(high)
        except ValueError:
            raise ValueError(f'limit {item!r}: expected field=min..max') from None
        if not name.strip() or not all(map(math.isfinite, bounds)) or bounds[0] > bounds[1]:
            raise ValueError(f'limit {item!r}: expected field=min..max with finite min <= max')
        limits[name.strip()] = bounds
    return limits


def _check_parallel(section: object, names: tuple[str, ...]) -> None:
    lengths = {name: len(getattr(section, name)) for name in names}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'mapping arrays must have equal lengths, got {lengths}')
    for name in ('qos', 'payloads', 'types'):
        for value in getattr(section, name):
            if name == 'qos' and value not in (0, 1, 2):
                raise ValueError(f'qos: {value} is not 0, 1 or 2')
            if name == 'payloads' and value not in PAYLOADS:
                raise ValueError(f'payloads: {value!r} is not one of {list(PAYLOADS)}')
            if name == 'types' and not TYPE_NAME.match(value):
                raise ValueError(f'types: {value!r} is not pkg/msg/Name')
