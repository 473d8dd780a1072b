"""Physics-informed motor temperature model: a first-order heat balance per joint motor.

    C dT/dt = k1·tau² + k2·|tau·qd| − (T − T_amb) / R

Only the ratios are identifiable from temperatures, so the model keeps, per joint,
``copper = k1/C`` (K/(s·N²·m²)), ``mechanical = k2/C`` (K/J) and ``cooling = 1/(R·C)`` (1/s), all
fitted non-negative (non-negative least squares on window-averaged data). With the inputs held,
the equation is integrated exactly.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from twin_predictor.joint_data import JointData
from twin_predictor.registry import write_metadata


@dataclass(frozen=True)
class ThermalModel:
    """Per-joint heat-balance coefficients (arrays of n_joints)."""

    copper: np.ndarray
    mechanical: np.ndarray
    cooling: np.ndarray
    ambient: float  # °C

    @property
    def time_constant(self) -> np.ndarray:
        """R·C (s)."""
        return 1.0 / np.maximum(self.cooling, 1e-12)

    def steady_state(self, tau_squared: np.ndarray, power: np.ndarray) -> np.ndarray:
        """Equilibrium temperature (°C) for mean tau² (N²·m²) and mean |tau·qd| (W) held."""
        return self.ambient + (self.copper * tau_squared + self.mechanical * power) / np.maximum(self.cooling, 1e-12)

    def predict(self, temperature: np.ndarray, tau_squared: np.ndarray, power: np.ndarray,
                times: np.ndarray) -> np.ndarray:
        """Temperatures (len(times), n) from ``temperature`` now with the inputs held."""
        final = self.steady_state(tau_squared, power)
        decay = np.exp(-np.outer(times, self.cooling))
        return final + (np.asarray(temperature) - final) * decay

    def to_json(self) -> dict[str, Any]:
        return {key: np.asarray(value).tolist() for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ThermalModel:
        return cls(np.array(values['copper']), np.array(values['mechanical']), np.array(values['cooling']),
                   float(values['ambient']))


def window_means(data: JointData, window: float) -> tuple[np.ndarray, ...]:
    """Per window: dT/dt, mean tau², mean |tau·qd| and mean T (each (W, n))."""
    per_window = max(2, int(round(window / data.dt)))
    count = len(data.time) // per_window
    if count < 3:
        raise ValueError(f'need at least {3 * window:g} s of data for {window:g} s windows')
    cut = lambda x: x[:count * per_window].reshape(count, per_window, -1)  # noqa: E731
    temperature = cut(data.temperature)
    slope = (temperature[:, -1] - temperature[:, 0]) / (data.time[per_window - 1] - data.time[0])
    return (slope, cut(data.tau ** 2).mean(1), cut(np.abs(data.tau * data.qd)).mean(1), temperature.mean(1))


def fit_thermal(data: JointData, ambient: float, window: float = 1.0) -> ThermalModel:
    """Non-negative least squares of dT/dt on [tau², |tau·qd|, −(T − T_amb)] per joint."""
    slope, tau_squared, power, temperature = window_means(data, window)
    coefficients = np.array([
        nnls(np.column_stack((tau_squared[:, j], power[:, j], ambient - temperature[:, j])), slope[:, j])[0]
        for j in range(slope.shape[1])])
    return ThermalModel(coefficients[:, 0], coefficients[:, 1], coefficients[:, 2], ambient)


def temperature_rmse(model: ThermalModel, data: JointData, horizon: float, window: float = 1.0) -> float:
    """RMSE (K) of ``horizon``-ahead predictions from each window, with that window's inputs held (NaN if too short)."""
    _, tau_squared, power, temperature = window_means(data, window)
    steps = max(1, int(round(horizon / window)))
    if len(temperature) <= steps:
        return float('nan')
    predicted = np.array([model.predict(temperature[i], tau_squared[i], power[i], np.array([horizon]))[0]
                          for i in range(len(temperature) - steps)])
    return float(np.sqrt(np.mean((predicted - temperature[steps:]) ** 2)))


def save_thermal(model: ThermalModel, directory: str | Path, joint_names: tuple[str, ...],
                 training: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    return write_metadata(directory, {
        'name': 'thermal', 'kind': 'thermal', 'parameters': model.to_json(), 'joint_names': list(joint_names),
        'inputs': {'temperature': 'degC', 'tau': 'N*m', 'qd': 'rad/s'}, 'outputs': {'temperature': 'degC'},
        'training': training, 'metrics': metrics})


def load_thermal(directory: str | Path) -> ThermalModel:
    return ThermalModel.from_json(json.loads((Path(directory) / 'metadata.json').read_text())['parameters'])

