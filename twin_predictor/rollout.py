"""Fixed-step rollouts of any model exposing ``acceleration(q, qd, tau, dt)`` on (K, B, n) tensors."""
from __future__ import annotations

from collections.abc import Callable

import torch

Acceleration = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def euler_step(acceleration: Acceleration, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
               dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Semi-implicit Euler (MuJoCo's scheme: velocity first, then position with the new velocity)."""
    qd = qd + dt * acceleration(q, qd, tau, dt)
    return q + dt * qd, qd


def rk4_step(acceleration: Acceleration, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
             dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical (explicit) Runge–Kutta with the torque held over the step."""
    a1 = acceleration(q, qd, tau, 0.0)
    v2 = qd + 0.5 * dt * a1
    a2 = acceleration(q + 0.5 * dt * qd, v2, tau, 0.0)
    v3 = qd + 0.5 * dt * a2
    a3 = acceleration(q + 0.5 * dt * v2, v3, tau, 0.0)
    v4 = qd + dt * a3
    a4 = acceleration(q + dt * v3, v4, tau, 0.0)
    return (q + dt / 6.0 * (qd + 2.0 * v2 + 2.0 * v3 + v4),
            qd + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4))


INTEGRATORS = {'euler': euler_step, 'rk4': rk4_step}


def rollout(acceleration: Acceleration, q0: torch.Tensor, qd0: torch.Tensor, torques: torch.Tensor,
            dt: float, integrator: str = 'euler') -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate from (q0, qd0) (K, B, n) under ``torques`` (K or 1, B, H, n), one step per torque sample.

    Returns positions and velocities (K, B, H + 1, n), the initial state first.
    """
    step_function = INTEGRATORS[integrator]
    q, qd = q0, qd0
    positions, velocities = [q], [qd]
    with torch.no_grad():
        for step in range(torques.shape[-2]):
            q, qd = step_function(acceleration, q, qd, torques[..., step, :].expand_as(q), dt)
            positions.append(q)
            velocities.append(qd)
    return torch.stack(positions, -2), torch.stack(velocities, -2)
