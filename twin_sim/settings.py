"""Physics and device settings of the simulated workcell (the ``physics`` config section)."""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SimSettings:
    timestep: float = 0.001  # s, physics step
    control_period_steps: int = 1  # physics steps per controller update
    slow_update_period: float = 0.05  # s, thermal and wear integration period
    control_bandwidth_hz: float = 6.0  # joint servo bandwidth used to tune the PD gains
    ambient_temperature: float = 25.0  # °C
    imu_accel_noise: float = 0.02  # m/s², white noise std per sample
    imu_gyro_noise: float = 0.002  # rad/s
    imu_accel_bias: float = 0.02  # m/s², std of the per-device constant bias
    imu_gyro_bias: float = 0.001  # rad/s
    encoder_counts_per_rev: int = 2 ** 20
    encoder_velocity_noise: float = 0.002  # rad/s
    effort_noise: float = 0.05  # N·m, motor-current based torque estimate
    lidar_n_beams: int = 360
    lidar_range_min: float = 0.05  # m
    lidar_range_max: float = 10.0  # m
    lidar_angle_min: float = -math.pi  # rad
    lidar_angle_max: float = math.pi - 2.0 * math.pi / 360  # rad (1° steps, no duplicate beam)
    lidar_range_noise: float = 0.01  # m
    device_clock_offset: float = 0.0  # s, device clock minus simulated time at start
    device_clock_drift_ppm: float = 0.0

    def __post_init__(self) -> None:
        if not (self.timestep > 0 and self.control_period_steps >= 1 and self.slow_update_period > 0):
            raise ValueError("timestep and slow_update_period must be > 0, control_period_steps >= 1")
        if self.lidar_n_beams < 1 or not 0 <= self.lidar_range_min < self.lidar_range_max:
            raise ValueError("need lidar_n_beams >= 1 and 0 <= lidar_range_min < lidar_range_max")
        if self.encoder_counts_per_rev < 1:
            raise ValueError("encoder_counts_per_rev must be >= 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "SimSettings":
        """Build from a config mapping; unknown keys raise ``ValueError``."""
        fields = {field.name: field.type for field in dataclasses.fields(cls)}
        for key in values:
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"physics.{key}: unknown key{hint}")
        converted = {key: int(value) if fields[key] == "int" else float(value) for key, value in values.items()}
        return cls(**converted)
