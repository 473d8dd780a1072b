"""Parameters of the actuation node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe
from twin_core.levels import Level
from twin_core.network import check_host


@dataclass(frozen=True)
class LinkConfig:
    host: str = field(default='127.0.0.1', metadata=describe(
        "The cell's command channel: IPv4 address or host name."))
    port: int = field(default=7600, metadata=describe("The cell's command channel UDP port.", min=1, max=65535))
    ack_timeout: float = field(default=0.1, metadata=describe(
        'Seconds to wait for an ack before sending the same datagram again.', min=0.001, max=10.0))
    attempts: int = field(default=4, metadata=describe('Sends of one command before it counts as lost.',
                                                       min=1, max=100))

    def __post_init__(self) -> None:
        check_host(self.host, ipv4_only=True)


@dataclass(frozen=True)
class LimitsConfig:
    urdf: str = field(default='', metadata=describe('Robot description; empty = config/arm.urdf.'))
    acceleration: tuple[float, ...] = field(default=(4.0, 3.0, 5.0, 8.0), metadata=describe(
        'Acceleration limit per joint in URDF order (rad/s^2); URDF has none.'))
    position_margin: float = field(default=0.05, metadata=describe(
        'Joint position commands stay this far (rad) inside the URDF limits.', min=0.0, max=1.0))
    max_commands_per_s: float = field(default=20.0, metadata=describe(
        'Commands sent per second at most (stops are never delayed).', min=0.1, max=1000.0))
    max_speed_step: float = field(default=0.25, metadata=describe(
        'Largest speed override increase per command (reductions apply at once).', min=0.01, max=1.0))

    def required_paths(self) -> dict[str, Path]:
        return {'urdf': Path(self.urdf)} if self.urdf else {}


@dataclass(frozen=True)
class WatchdogConfig:
    timeout: float = field(default=1.0, metadata=describe(
        'Stop the cell when twin/state, or a required input in it, is older than this (s).',
        min=0.05, max=60.0))
    required_inputs: tuple[str, ...] = field(default=('encoders/joint_states',), metadata=describe(
        'Inputs of twin/state whose age the watchdog checks.'))


@dataclass(frozen=True)
class ProtectionConfig:
    overload: float = field(default=0.8, metadata=describe(
        'Protective stop when a joint load (|effort| / URDF effort limit) in twin/state exceeds this.',
        min=0.05, max=1.0))
    stop_on_anomaly: bool = field(default=True, metadata=describe(
        'Protective stop on severe anomaly events (false: they are only reported).'))
    anomaly_severity: int = field(default=int(Level.ERROR), metadata=describe(
        'Protective stop on an active anomaly at least this severe (1 WARN, 2 ERROR).',
        min=int(Level.WARN), max=int(Level.ERROR)))
    derate_high: float = field(default=0.8, metadata=describe(
        'Speed override cap while maintenance is planned at HIGH risk.', min=0.0, max=1.0))
    derate_critical: float = field(default=0.5, metadata=describe(
        'Speed override cap while maintenance is planned at CRITICAL risk.', min=0.0, max=1.0))


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = field(default=True, metadata=describe(
        'Protective stop when the measured joints leave the desired path (plan/desired_joint_states).'))
    measured: str = field(default='encoders/joint_states', metadata=describe(
        'Measured joint states compared with the desired ones (sensor_msgs/JointState).'))
    bound: float = field(default=0.03, metadata=describe(
        'Tracking deviation (rad) any joint may have; beyond it for `duration` the cell is stopped.',
        min=1e-4, max=3.2))
    duration: float = field(default=0.02, metadata=describe(
        'Seconds the deviation must stay beyond the bound before the stop.', min=0.0, max=10.0))
    max_gap: float = field(default=0.05, metadata=describe(
        'Longest interval (s) between desired states to interpolate across; beyond it no deviation is judged.',
        min=0.001, max=5.0))
    settle: float = field(default=1.0, metadata=describe(
        'Seconds both streams must have run (from the start or a gap) before deviations are judged: '
        'the time the drivers\' clock estimators take to map device time, meanwhile the stamps of two '
        'devices can disagree by their transport delays.', min=0.0, max=60.0))


@dataclass(frozen=True)
class ActuationConfig:
    """Parameters of the actuation node."""

    link: LinkConfig = LinkConfig()
    limits: LimitsConfig = LimitsConfig()
    watchdog: WatchdogConfig = WatchdogConfig()
    protection: ProtectionConfig = ProtectionConfig()
    tracking: TrackingConfig = TrackingConfig()
    tick_rate_hz: float = field(default=50.0, metadata=describe(
        'Rate of arbitration, watchdog and ack polling.', min=1.0, max=1000.0))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe('Rate of /diagnostics.', min=0.1, max=50.0))
