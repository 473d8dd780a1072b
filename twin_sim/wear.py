"""Gearbox and bearing degradation per joint.

Wear grows like Archard's law, with load × distance travelled (|τ|·|Δq|), as a gamma process
(monotone, random increments whose spread does not depend on the update rate) scaled by a
per-joint susceptibility drawn once from the seed. Wear raises Coulomb friction and viscous
damping (applied to the physics engine by the caller) and excites a gear-mesh vibration whose
frequency follows joint speed and whose amplitude follows wear.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin_core.urdf import ArmDescription


@dataclass(frozen=True)
class WearParameters:
    nominal_rate: float = 2.0e-9  # wear per N·m·rad of load × distance, at rate multiplier 1
    noise_scale: float = 2.0e-4  # gamma-process granularity, wear units
    susceptibility_spread: float = 0.25  # log-normal sigma of the per-joint wear rate
    friction_gain: float = 3.0  # Coulomb friction is (1 + gain·wear) times nominal
    damping_gain: float = 2.0  # viscous damping is (1 + gain·wear) times nominal
    vibration_amplitude: float = 0.04  # disturbance torque at full wear, fraction of the effort limit
    mesh_teeth: float = 60.0  # gear-mesh cycles per joint radian: ω_mesh = teeth·|qd|
    vibration_onset_speed: float = 0.3  # rad/s, the disturbance fades out below this joint speed
    rms_time_constant: float = 1.0  # s, averaging of the reported vibration RMS


class WearModel:
    """Wear state, friction and vibration of every joint."""

    def __init__(self, parameters: WearParameters, arm: ArmDescription, rate: float,
                 initial_wear: np.ndarray, rng: np.random.Generator) -> None:
        self.parameters = parameters
        self.rate = rate
        self.wear = np.clip(np.asarray(initial_wear, dtype=float), 0.0, 1.0)
        self._arm = arm
        self._rng = rng
        count = len(arm.joint_names)
        self._susceptibility = rng.lognormal(0.0, parameters.susceptibility_spread, count)
        self._pending_work = np.zeros(count)  # N·m·rad since the last update
        self._phase = np.zeros(count)
        self._mean_square_vibration = np.zeros(count)
        self._vibration_amplitude = parameters.vibration_amplitude * np.where(
            np.isfinite(arm.effort), arm.effort, 0.0)

    @property
    def health(self) -> np.ndarray:
        """1 for a new joint, 0 at the failure threshold."""
        return 1.0 - self.wear

    @property
    def coulomb_friction(self) -> np.ndarray:
        return self._arm.friction * (1.0 + self.parameters.friction_gain * self.wear)

    @property
    def viscous_damping(self) -> np.ndarray:
        return self._arm.damping * (1.0 + self.parameters.damping_gain * self.wear)

    @property
    def vibration_rms(self) -> np.ndarray:
        """RMS of the gear-mesh disturbance torque (N·m) over the last ~second."""
        return np.sqrt(self._mean_square_vibration)

    def accumulate(self, dt: float, torque: np.ndarray, velocity: np.ndarray) -> None:
        self._pending_work += np.abs(torque * velocity) * dt

    def update(self) -> None:
        """Turn the work accumulated since the last update into wear."""
        mean_increment = self.rate * self.parameters.nominal_rate * self._susceptibility * self._pending_work
        scale = self.parameters.noise_scale
        self.wear = np.minimum(self.wear + self._rng.gamma(mean_increment / scale, scale), 1.0)
        self._pending_work[:] = 0.0

    def vibration_torque(self, dt: float, velocity: np.ndarray) -> np.ndarray:
        """Advance the gear-mesh phase by ``dt`` and return the disturbance torque (N·m)."""
        p = self.parameters
        speed = np.abs(velocity)
        self._phase = np.mod(self._phase + p.mesh_teeth * speed * dt, 2.0 * math.pi)
        amplitude = self._vibration_amplitude * self.wear * np.minimum(speed / p.vibration_onset_speed, 1.0)
        torque = amplitude * np.sin(self._phase)
        blend = -math.expm1(-dt / p.rms_time_constant)
        self._mean_square_vibration += blend * (torque * torque - self._mean_square_vibration)
        return torque
