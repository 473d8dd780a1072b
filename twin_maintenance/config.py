"""Parameters of the maintenance planner node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe
from twin_core.paths import config_dir
from twin_core.urdf import default_joint_names
from twin_maintenance.scheduler import Calendar


@dataclass(frozen=True)
class RiskConfig:
    critical: float = field(default=900.0, metadata=describe(
        'CRITICAL when the pessimistic (10 %) RUL is below this many s.', min=0.0))
    high: float = field(default=1800.0, metadata=describe('HIGH below this RUL (s).', min=0.0))
    medium: float = field(default=3600.0, metadata=describe('MEDIUM below this RUL (s).', min=0.0))
    critical_health: float = field(default=0.1, metadata=describe(
        'CRITICAL also when the health index (1 new .. 0 failed) is at or below this.', min=0.0, max=1.0))
    high_health: float = field(default=0.25, metadata=describe('HIGH at or below this health index.', min=0.0, max=1.0))
    medium_health: float = field(default=0.4, metadata=describe('MEDIUM at or below this health index.',
                                                                min=0.0, max=1.0))


@dataclass(frozen=True)
class MaintenanceConfig:
    """Parameters of the ``maintenance_planner`` node."""

    rul_model: str = field(default='models/rul.json', metadata=describe(
        'RUL model written by `twin_rul train` (relative paths: in config/).'))
    urdf: str = field(default='', metadata=describe('Robot description for effort limits; empty = config/arm.urdf.'))
    joints: tuple[str, ...] = field(default_factory=default_joint_names, metadata=describe(
        'Joints whose gearbox and motor are tracked (default: the URDF\'s movable joints).'))
    sensors: tuple[str, ...] = field(default=(
        'imu:imu.linear_acceleration.x', 'encoders:joint_1.position', 'lidar:scan.min',
        'plc:joint_1.temperature'), metadata=describe(
        'Tracked sensors as name:channel (the channel goes missing when the sensor drops out).'))
    window: float = field(default=60.0, metadata=describe(
        'Seconds of frames per condition-indicator window.', min=1.0, max=86400.0))
    history: int = field(default=240, metadata=describe('Windows kept per component.', min=3, max=100000))
    batch_frames: int = field(default=50, metadata=describe('Frames accumulated per update.', min=1, max=10000))
    ambient_temperature: float = field(default=25.0, metadata=describe('Ambient (degC).', min=-40.0, max=80.0))
    temperature_limit: float = field(default=100.0, metadata=describe(
        'Winding temperature at which a motor counts as failed (degC).', min=0.0, max=250.0))
    sensor_missing_limit: float = field(default=0.05, metadata=describe(
        'Missing fraction of a window above which a sensor needs service.', min=0.0, max=1.0))
    risk: RiskConfig = RiskConfig()
    safety_margin: float = field(default=600.0, metadata=describe(
        'Seconds before the pessimistic failure time by which maintenance must end.', min=0.0))
    gearbox_duration: float = field(default=7200.0, metadata=describe('Gearbox replacement (s).', min=1.0))
    motor_duration: float = field(default=3600.0, metadata=describe('Motor service (s).', min=1.0))
    sensor_duration: float = field(default=1800.0, metadata=describe('Sensor service (s).', min=1.0))
    resources: tuple[str, ...] = field(default=('mechanic', 'electrician'), metadata=describe(
        'Maintenance resources (people, tools).'))
    mechanical_resources: tuple[str, ...] = field(default=('mechanic',), metadata=describe(
        'Resources a gearbox or motor task needs.'))
    sensor_resources: tuple[str, ...] = field(default=('electrician',), metadata=describe(
        'Resources a sensor task needs.'))
    calendar: Calendar = Calendar()
    horizon_days: float = field(default=30.0, metadata=describe('Planning horizon (days).', min=1.0, max=365.0))
    replan_change: float = field(default=0.2, metadata=describe(
        'Relative change of a deadline that triggers replanning.', min=0.0, max=10.0))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe('Rate of /diagnostics.', min=0.1, max=10.0))

    def required_paths(self) -> dict[str, Path]:
        paths = {'rul_model': config_dir() / self.rul_model}
        if self.urdf:
            paths['urdf'] = Path(self.urdf)
        return paths
