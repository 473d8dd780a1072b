"""Physics and device settings of the simulated workcell (the ``physics`` config section)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from twin_core.config import describe

POSITIVE = 1e-9


def _setting(default: float | int, description: str, **bounds: float) -> Any:
    return field(default=default, metadata=describe(description, **bounds))


@dataclass(frozen=True)
class SimSettings:
    """Physics step, controller, thermal ambient and the devices' noise and geometry."""

    timestep: float = _setting(0.001, 'physics step (s)', min=1e-5, max=0.01)
    control_period_steps: int = _setting(1, 'physics steps per controller update', min=1, max=100)
    slow_update_period: float = _setting(0.05, 'thermal and wear integration period (s)', min=POSITIVE)
    control_bandwidth_hz: float = _setting(6.0, 'joint servo bandwidth used to tune the PD gains (Hz)',
                                           min=0.1, max=100.0)
    ambient_temperature: float = _setting(25.0, 'ambient temperature (degC)', min=-40.0, max=80.0)
    imu_accel_noise: float = _setting(0.02, 'accelerometer white noise std per sample (m/s^2)', min=0.0)
    imu_gyro_noise: float = _setting(0.002, 'gyro white noise std per sample (rad/s)', min=0.0)
    imu_accel_bias: float = _setting(0.02, 'std of the per-device constant accelerometer bias (m/s^2)',
                                     min=0.0)
    imu_gyro_bias: float = _setting(0.001, 'std of the per-device constant gyro bias (rad/s)', min=0.0)
    encoder_counts_per_rev: int = _setting(2 ** 20, 'encoder resolution (counts per revolution)',
                                           min=1, max=2 ** 31 - 1)
    encoder_velocity_noise: float = _setting(0.002, 'encoder velocity noise std (rad/s)', min=0.0)
    effort_noise: float = _setting(0.05, 'motor-current torque estimate noise std (N m)', min=0.0)
    lidar_n_beams: int = _setting(360, 'beams per scan', min=1, max=10000)
    lidar_range_min: float = _setting(0.05, 'minimum range (m)', min=0.0)
    lidar_range_max: float = _setting(10.0, 'maximum range (m)', min=POSITIVE, max=65.0)
    lidar_angle_min: float = _setting(-math.pi, 'first beam angle (rad)', min=-math.pi, max=math.pi)
    lidar_angle_max: float = _setting(math.pi - 2.0 * math.pi / 360, 'last beam angle (rad)',
                                      min=-math.pi, max=math.pi)
    lidar_range_noise: float = _setting(0.01, 'range noise std (m)', min=0.0)
    device_clock_offset: float = _setting(0.0, 'device clock minus simulated time at start (s)')
    device_clock_drift_ppm: float = _setting(0.0, 'device clock drift (ppm)', min=-1000.0, max=1000.0)

    def __post_init__(self) -> None:
        if not self.lidar_range_min < self.lidar_range_max:
            raise ValueError('lidar_range_min must be below lidar_range_max')
        if not self.lidar_angle_min < self.lidar_angle_max:
            raise ValueError('lidar_angle_min must be below lidar_angle_max')
