"""IMU driver core: CSV lines from a serial byte stream to calibrated REP 103 readings."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from twin_core.config import describe
from twin_sensors.readers import SerialConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig
from twin_sensors.wire import LineDecoder, WireError, parse_imu_line

IDENTITY_6 = tuple(float(v) for v in np.eye(6).ravel())


@dataclass(frozen=True)
class CalibrationConfig:
    """``calibrated = matrix @ (raw - bias)`` over ``ax, ay, az, gx, gy, gz``."""

    bias: tuple[float, ...] = field(default=(0.0,) * 6, metadata=describe(
        'Raw offsets of ax, ay, az (m/s^2), gx, gy, gz (rad/s), subtracted first.'))
    matrix: tuple[float, ...] = field(default=IDENTITY_6, metadata=describe(
        '6x6 matrix, row-major (36 values): scale, misalignment and g-sensitivity.'))

    def __post_init__(self) -> None:
        if len(self.bias) != 6 or len(self.matrix) != 36:
            raise ValueError(f'bias needs 6 values (got {len(self.bias)}), matrix 36 (got {len(self.matrix)})')
        if not all(map(math.isfinite, self.bias + self.matrix)):
            raise ValueError('calibration values must be finite')


@dataclass(frozen=True)
class NoiseConfig:
    """White-noise densities, turned into per-sample variances at ``rate_hz``."""

    accel_density: float = field(default=0.002, metadata=describe(
        'Accelerometer noise density, m/s^2/sqrt(Hz).', min=0.0, max=10.0))
    gyro_density: float = field(default=0.0002, metadata=describe(
        'Gyroscope noise density, rad/s/sqrt(Hz).', min=0.0, max=10.0))
    rate_hz: float = field(default=1000.0, metadata=describe(
        'Output data rate the densities are converted at.', min=1.0, max=100000.0))


@dataclass(frozen=True)
class ImuConfig:
    """Parameters of the imu_driver node."""

    serial: SerialConfig = field(default_factory=lambda: SerialConfig(port='/tmp/twin_sim/imu'))
    frame_id: str = field(default='imu_link', metadata=describe('frame_id of the published messages.'))
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)
    max_line_length: int = field(default=256, metadata=describe(
        'Longer lines are dropped as overflow.', min=16, max=65536))


@dataclass(frozen=True, slots=True)
class ImuReading:
    """A calibrated reading: ``values`` = ax, ay, az (m/s^2), gx, gy, gz (rad/s)."""

    values: np.ndarray
    device_time: float | None


class ImuStream:
    """Splits chunks into lines, parses and calibrates them; bad lines are counted in ``stats``."""

    def __init__(self, config: ImuConfig, stats: DriverStats) -> None:
        self.stats = stats
        self.decoder = LineDecoder(config.max_line_length)
        self.decoder.discard_partial()  # a stream is joined mid-line
        self.bias = np.array(config.calibration.bias)
        self.matrix = np.array(config.calibration.matrix).reshape(6, 6)
        raw_std = np.repeat([config.noise.accel_density, config.noise.gyro_density], 3) * math.sqrt(
            config.noise.rate_hz)
        covariance = self.matrix @ np.diag(raw_std ** 2) @ self.matrix.T
        self.accel_covariance = tuple(float(v) for v in covariance[:3, :3].ravel())
        self.gyro_covariance = tuple(float(v) for v in covariance[3:, 3:].ravel())

    def restart(self) -> None:
        """The source was reopened: whatever is pending belongs to a cut line."""
        self.decoder.discard_partial()

    def feed(self, chunk: bytes) -> list[ImuReading]:
        overflows_before = self.decoder.overflows
        readings = []
        for line in self.decoder.feed(chunk):
            try:
                sample = parse_imu_line(line)
            except WireError as error:
                self.stats.error(error.reason, str(error), payload=line)
                continue
            raw = np.array(sample.accel + sample.gyro)
            readings.append(ImuReading(self.matrix @ (raw - self.bias), sample.device_time))
        overflows = self.decoder.overflows - overflows_before
        if overflows:
            self.stats.error('overflow', f'line longer than {self.decoder.max_line_length} bytes', overflows)
        self.stats.messages += len(readings)
        return readings
