"""Device models: IMU, joint encoders and the safety laser scanner, with noise and faults."""
from __future__ import annotations

import math

import mujoco
import numpy as np

from twin_sim.model import ACCELEROMETER, GYRO, LASER_SITE, OBSTACLE_GEOM_GROUP
from twin_sim.settings import SimSettings


class Imu:
    """6-axis IMU: specific force (m/s²) and angular rate (rad/s) in the imu_link frame."""

    def __init__(self, model: mujoco.MjModel, settings: SimSettings, rng: np.random.Generator) -> None:
        self._rng = rng
        self._accel = slice(model.sensor(ACCELEROMETER).adr[0], model.sensor(ACCELEROMETER).adr[0] + 3)
        self._gyro = slice(model.sensor(GYRO).adr[0], model.sensor(GYRO).adr[0] + 3)
        self.device_bias = np.concatenate((rng.normal(0.0, settings.imu_accel_bias, 3),
                                           rng.normal(0.0, settings.imu_gyro_bias, 3)))
        self._noise_std = np.repeat([settings.imu_accel_noise, settings.imu_gyro_noise], 3)

    def sample(self, data: mujoco.MjData, fault_bias: np.ndarray) -> np.ndarray:
        truth = np.concatenate((data.sensordata[self._accel], data.sensordata[self._gyro]))
        return truth + self.device_bias + fault_bias + self._rng.normal(0.0, 1.0, 6) * self._noise_std


class Encoders:
    """Absolute joint encoders (quantised), velocity estimates and motor-current torque estimates."""

    def __init__(self, settings: SimSettings, rng: np.random.Generator) -> None:
        self._settings = settings
        self._rng = rng
        self._count = 2.0 * math.pi / settings.encoder_counts_per_rev  # rad per count

    def quantise(self, positions: np.ndarray) -> np.ndarray:
        return np.round(positions / self._count) * self._count

    def sample(self, positions: np.ndarray, velocities: np.ndarray, efforts: np.ndarray,
               stuck: dict[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        measured_positions = self.quantise(positions)
        measured_velocities = velocities + self._rng.normal(0.0, self._settings.encoder_velocity_noise,
                                                            velocities.shape)
        for joint, held in stuck.items():
            measured_positions[joint] = held
            measured_velocities[joint] = 0.0
        measured_efforts = efforts + self._rng.normal(0.0, self._settings.effort_noise, efforts.shape)
        return measured_positions, measured_velocities, measured_efforts


class LaserScanner:
    """Planar scanner in the laser frame's x-y plane; sees only the cell's obstacles.

    Ranges follow REP 117: +inf when nothing is within range_max, -inf when closer than range_min.
    """

    def __init__(self, model: mujoco.MjModel, settings: SimSettings, rng: np.random.Generator) -> None:
        self._model = model
        self._settings = settings
        self._rng = rng
        self._site = model.site(LASER_SITE).id
        count = settings.lidar_n_beams
        self.angles = np.linspace(settings.lidar_angle_min, settings.lidar_angle_max, count)
        self._local_directions = np.stack((np.cos(self.angles), np.sin(self.angles), np.zeros(count)), axis=1)
        self._geomgroup = np.zeros(6, dtype=np.uint8)
        self._geomgroup[OBSTACLE_GEOM_GROUP] = 1
        self._geom_ids = np.zeros(count, dtype=np.int32)
        self._distances = np.zeros(count)

    def scan(self, data: mujoco.MjData) -> np.ndarray:
        rotation = data.site_xmat[self._site].reshape(3, 3)
        directions = self._local_directions @ rotation.T
        settings = self._settings
        mujoco.mj_multiRay(self._model, data, data.site_xpos[self._site], directions.ravel(), self._geomgroup,
                           1, -1, self._geom_ids, self._distances, settings.lidar_n_beams,
                           settings.lidar_range_max)
        hit = self._geom_ids >= 0
        ranges = np.where(hit, self._distances + self._rng.normal(0.0, settings.lidar_range_noise,
                                                                  self._distances.shape), np.inf)
        ranges[hit & (ranges > settings.lidar_range_max)] = np.inf
        ranges[hit & (ranges < settings.lidar_range_min)] = -np.inf
        return ranges.astype(np.float32)
