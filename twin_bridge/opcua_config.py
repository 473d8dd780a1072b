"""Parameters of the opcua_bridge node: the twin's OPC UA server, its security, the client of
the cell PLC and the twin topics it exposes.

Lists of mappings are parallel arrays (entry i of ``variables``, ``topics`` and ``kinds``),
because ROS parameters cannot hold lists of structures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe
from twin_core.network import check_opcua_endpoint, is_loopback
from twin_core.urdf import default_joint_names
from twin_sensors.opcua_client import OpcUaConfig

KINDS = ('float64', 'temperature')


@dataclass(frozen=True)
class SecurityConfig:
    """Basic256Sha256 Sign&Encrypt with the server certificate, user names and a client trust list."""

    enabled: bool = field(default=True, metadata=describe(
        'Offer only Basic256Sha256 Sign&Encrypt with user names; false: no security, anonymous '
        '(then only on a loopback endpoint, so that no other machine connects anonymously).'))
    certificate: str = field(default='~/.ros/twin_opcua/server_cert.der', metadata=describe(
        'Server application certificate (DER or PEM); its URI SAN is the application URI.'))
    private_key: str = field(default='~/.ros/twin_opcua/server_key.pem', metadata=describe(
        'Private key of the server certificate (PEM).'))
    trust_dir: str = field(default='~/.ros/twin_opcua/trusted', metadata=describe(
        'Directory of trusted client certificates (*.der, *.pem, or their CAs); others are rejected.'))
    users_file: str = field(default='~/.ros/twin_opcua/users', metadata=describe(
        'One "name:salt_hex:pbkdf2_sha256_hex" line per user (twin_bridge.opcua_server.password_entry).'))


@dataclass(frozen=True)
class ServerConfig:
    """The twin as an OPC UA server (Robotics companion specification naming)."""

    enabled: bool = field(default=True, metadata=describe('Serve the twin over OPC UA.'))
    endpoint: str = field(default='opc.tcp://127.0.0.1:4841/twin', metadata=describe(
        'Endpoint URL; the host is the bind address.'))
    application_uri: str = field(default='urn:ros2-digital-twin:opcua-bridge', metadata=describe(
        'Application URI (must match the URI SAN of the server certificate).'))
    namespace: str = field(default='urn:ros2-digital-twin:twin', metadata=describe(
        'Namespace URI of the twin variables.'))
    device: str = field(default='cell_1', metadata=describe('Name of the robot under Objects/DeviceSet.'))
    motion_device: str = field(default='arm', metadata=describe('Name of the motion device (the arm).'))
    controller: str = field(default='controller', metadata=describe('Name of the robot controller.'))
    joint_names: tuple[str, ...] = field(default_factory=default_joint_names, metadata=describe(
        'Axes (and power trains) of the motion device (default: the URDF\'s movable joints).'))
    write_rate_hz: float = field(default=50.0, metadata=describe(
        'Rate at which the latest twin values are written to the address space.', min=0.1, max=1000.0))
    security: SecurityConfig = SecurityConfig()

    def required_paths(self) -> dict[str, Path]:
        if not (self.enabled and self.security.enabled):
            return {}
        security = self.security
        return {f'security.{key}': Path(name).expanduser() for key, name in (
            ('certificate', security.certificate), ('private_key', security.private_key),
            ('trust_dir', security.trust_dir), ('users_file', security.users_file))}

    def __post_init__(self) -> None:
        host = check_opcua_endpoint(self.endpoint)
        if not self.security.enabled and not is_loopback(host):
            raise ValueError(f'security.enabled is false: an anonymous, unencrypted server may only listen on '
                             f'127.0.0.1, ::1 or localhost, not {host!r}; enable security to serve the network')
        if not self.joint_names:
            raise ValueError('joint_names must not be empty')


@dataclass(frozen=True)
class ClientConfig:
    """The bridge as a client of the cell PLC: subscribed variables to topics (read only).

    There is deliberately no topic-to-PLC write path: commands reach the cell only through the
    actuation node (its arbitration, limits and audit), over the cell's command channel.
    """

    enabled: bool = field(default=False, metadata=describe('Connect to the PLC.'))
    opcua: OpcUaConfig = OpcUaConfig()
    variables: tuple[str, ...] = field(default=(), metadata=describe(
        'Subscribed PLC variables (string NodeIds in opcua.namespace).'))
    topics: tuple[str, ...] = field(default=(), metadata=describe('Topic of each subscribed variable.'))
    kinds: tuple[str, ...] = field(default=(), metadata=describe(
        'Message of each topic: float64 (std_msgs/Float64) or temperature (sensor_msgs/Temperature, '
        'stamped, frame_id = variable).'))

    def __post_init__(self) -> None:
        if not len(self.variables) == len(self.topics) == len(self.kinds):
            raise ValueError('variables, topics and kinds must have the same length')
        for kind in self.kinds:
            if kind not in KINDS:
                raise ValueError(f'kinds: {kind!r} is not one of {list(KINDS)}')


@dataclass(frozen=True)
class TopicsConfig:
    """Twin topics exposed by the server; an empty name leaves that part of the address space unset."""

    state: str = field(default='twin/state', metadata=describe('twin_interfaces/TwinState.'))
    joint_states: str = field(default='twin/joint_states', metadata=describe('sensor_msgs/JointState.'))
    diagnostics: str = field(default='diagnostics_agg', metadata=describe('Aggregated diagnostics.'))
    anomalies: str = field(default='twin/anomalies', metadata=describe('twin_interfaces/AnomalyEvent.'))
    maintenance_schedule: str = field(default='twin/maintenance_schedule', metadata=describe(
        'twin_interfaces/MaintenanceSchedule (transient-local).'))
    speed_override: str = field(default='twin/commands/speed_override', metadata=describe(
        'std_msgs/Float64 (0..1) published for each accepted write of the controller\'s '
        'SpeedOverrideSetpoint (%): an operator request for the actuation node to arbitrate and ramp. '
        '"" leaves the setpoint out (a read-only server).'))


@dataclass(frozen=True)
class HistoryConfig:
    """HistoryRead of the axis variables, answered by the twin state node's history service."""

    enabled: bool = field(default=True, metadata=describe('Answer HistoryRead on axis variables.'))
    service: str = field(default='twin/get_history', metadata=describe('twin_interfaces/GetHistory service.'))
    timeout: float = field(default=2.0, metadata=describe('Service call timeout, s.', min=0.01, max=60.0))


@dataclass(frozen=True)
class OpcUaBridgeConfig:
    """Parameters of the ``opcua_bridge`` node."""

    server: ServerConfig = ServerConfig()
    client: ClientConfig = ClientConfig()
    topics: TopicsConfig = TopicsConfig()
    history: HistoryConfig = HistoryConfig()
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe(
        'Rate of /diagnostics.', min=0.1, max=10.0))
