"""Open-loop rollout evaluation of arm dynamics models against recorded (held-out) data.

From evenly spaced start states, every model is integrated with the recorded torques and
compared with the recorded positions: joint RMSE at 0.1 s and 1 s, valid prediction time (until
any joint is off by more than 0.1 rad; capped at the horizon) and energy drift (|E(pred) − E(true)|
at 1 s, both energies under the exact model, J).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from twin_predictor.analytic import AnalyticArm
from twin_predictor.joint_data import JointData
from twin_predictor.rollout import rollout

VALID_ERROR = 0.1  # rad
CHECKPOINTS = (0.1, 1.0)  # s


class Model(Protocol):
    members: int

    def acceleration(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor, dt: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class Scores:
    rmse_100ms: float  # rad
    rmse_1s: float  # rad
    valid_time: float  # s
    energy_drift: float  # J
    micros_per_step: float  # µs per integration step of the batch of windows


@dataclass(frozen=True)
class Windows:
    """Start states (1, B, n), recorded torques (1, B, H, n) and true states (B, H + 1, n)."""

    q0: torch.Tensor
    qd0: torch.Tensor
    torques: torch.Tensor
    q: np.ndarray
    qd: np.ndarray
    dt: float


def windows(data: JointData, count: int, horizon: float) -> Windows:
    steps = int(round(horizon / data.dt))
    starts = np.linspace(0, len(data.time) - steps - 2, count).astype(int)
    span = lambda x, extra: np.stack([x[s:s + steps + extra] for s in starts])  # noqa: E731
    as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32)[None]  # noqa: E731
    return Windows(as_tensor(data.q[starts]), as_tensor(data.qd[starts]), as_tensor(span(data.tau[1:], 0)),
                   span(data.q, 1), span(data.qd, 1), data.dt)


def score(model: Model, cases: Windows, exact: AnalyticArm, integrator: str = 'euler') -> Scores:
    start = time.perf_counter()
    expand = lambda x: x.expand(model.members, -1, -1)  # noqa: E731
    positions, velocities = rollout(model.acceleration, expand(cases.q0), expand(cases.qd0), cases.torques,
                                    cases.dt, integrator)
    micros = (time.perf_counter() - start) * 1e6 / cases.torques.shape[-2]
    q, qd = positions.double().mean(0).numpy(), velocities.double().mean(0).numpy()
    error = q - cases.q
    at = lambda seconds: min(int(round(seconds / cases.dt)), error.shape[1] - 1)  # noqa: E731
    rmse = [float(np.sqrt(np.mean(error[:, at(s)] ** 2))) for s in CHECKPOINTS]
    exceeded = np.abs(error).max(-1) > VALID_ERROR
    first = np.where(exceeded.any(1), exceeded.argmax(1), error.shape[1] - 1)
    one_second = at(1.0)
    drift = np.abs(exact.energy(q[:, one_second], qd[:, one_second])
                   - exact.energy(cases.q[:, one_second], cases.qd[:, one_second]))
    return Scores(rmse[0], rmse[1], float(np.mean(first) * cases.dt), float(np.mean(drift)), micros)


def evaluate(models: Mapping[str, Model], data: JointData, count: int = 40, horizon: float = 2.0,
             integrator: str = 'euler') -> dict[str, Scores]:
    """Scores of every model on the same windows of ``data``."""
    cases = windows(data, count, horizon)
    exact = AnalyticArm(cases.dt)
    return {name: score(model, cases, exact, integrator) for name, model in models.items()}


def table(results: Mapping[str, Scores]) -> str:
    lines = [f'{"model":<28} {"RMSE@0.1s (rad)":>16} {"RMSE@1s (rad)":>14} {"valid time (s)":>15} '
             f'{"energy drift (J)":>17} {"µs/step":>9}']
    for name, s in results.items():
        lines.append(f'{name:<28} {s.rmse_100ms:>16.2e} {s.rmse_1s:>14.2e} {s.valid_time:>15.2f} '
                     f'{s.energy_drift:>17.3f} {s.micros_per_step:>9.0f}')
    return '\n'.join(lines)
