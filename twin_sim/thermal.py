"""First-order thermal model of each joint's servo motor.

    C dT/dt = I² R(T) + P_friction − g (T − T_ambient),   R(T) = R₂₀ (1 + α (T − 20 °C))

with ``g = cooling / R_th``. For inputs held over a step the equation is linear in T, so it is
integrated exactly (any step size is stable and exact).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_TEMPERATURE = 20.0  # °C, where the winding resistance is specified


@dataclass(frozen=True)
class MotorParameters:
    """A small AC servo motor (same type on every joint, behind different gearboxes)."""

    torque_constant: float = 0.10  # N·m/A at the motor shaft
    winding_resistance: float = 1.2  # Ω at 20 °C
    resistance_temperature_coefficient: float = 0.00393  # 1/K (copper)
    thermal_resistance: float = 2.0  # K/W, winding to ambient
    thermal_capacitance: float = 150.0  # J/K  (time constant R_th·C = 5 min)
    rotor_inertia: float = 5.0e-5  # kg·m²


class MotorThermalModel:
    """Winding temperatures of all joint motors."""

    def __init__(self, parameters: MotorParameters, gear_ratio: np.ndarray, ambient: float) -> None:
        self.parameters = parameters
        self.ambient = ambient
        self._gear_ratio = np.asarray(gear_ratio, dtype=float)
        self.temperatures = np.full(self._gear_ratio.shape, float(ambient))

    def motor_current(self, joint_torque: np.ndarray) -> np.ndarray:
        """Current (A) that produces ``joint_torque`` (N·m) through the gearbox."""
        return np.asarray(joint_torque) / (self._gear_ratio * self.parameters.torque_constant)

    def winding_resistance(self, temperature: np.ndarray | float) -> np.ndarray:
        p = self.parameters
        return p.winding_resistance * (1.0 + p.resistance_temperature_coefficient
                                       * (np.asarray(temperature) - REFERENCE_TEMPERATURE))

    def step(self, dt: float, mean_square_torque: np.ndarray, friction_power: np.ndarray,
             cooling_factor: np.ndarray | float = 1.0) -> None:
        """Advance ``dt`` s with the mean squared joint torque (N²·m²) and friction heat (W) held."""
        p = self.parameters
        current_squared = mean_square_torque / (self._gear_ratio * p.torque_constant) ** 2
        copper_slope = current_squared * p.winding_resistance * p.resistance_temperature_coefficient  # W/K
        copper_offset = current_squared * self.winding_resistance(0.0)  # W at 0 °C
        conductance = np.asarray(cooling_factor) / p.thermal_resistance  # W/K
        # dT/dt = a + b T
        a = (copper_offset + friction_power + conductance * self.ambient) / p.thermal_capacitance
        b = (copper_slope - conductance) / p.thermal_capacitance
        growth = np.expm1(b * dt)
        safe_b = np.where(np.abs(b) > 1e-12, b, 1.0)
        drive = np.where(np.abs(b) > 1e-12, growth / safe_b, dt)
        self.temperatures = self.temperatures * (1.0 + growth) + a * drive
