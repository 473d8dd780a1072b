"""Prediction conditioned on the plan: the learned arm driven by a controller model along the commanded trajectory.

The cell's joint servo is modelled per joint as PD feedback on the tracking error plus a scaled
inverse-dynamics feed-forward of the learned arm and a constant offset:

    tau = kp (q_d − q) + kd (qd_d − qd) + a (M̂(q) qdd_d + ĉ(q, qd) + ĝ(q)) + b

fitted by least squares (kp, kd ≥ 0) on recorded desired and measured joint states (``identify``). The
rollout integrates the learned dynamics under that torque with the desired state sampled from
the plan; the servo's stiffness and damping and the model's friction slope are taken implicitly
over each step (semi-implicit Euler, linearly implicit in the feedback), so a stiff servo is
stable at the rollout's step. Ensemble members are rolled out together (mean and spread).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import lsq_linear

from twin_predictor.dynamics import DynamicsModel, PhysicsInformedArm

CONTROLLER_FILE = 'controller.json'
LOWER = np.array([0.0, 0.0, -np.inf, -np.inf])  # kp, kd ≥ 0: a servo pulls towards its reference


@dataclass(frozen=True)
class ControllerModel:
    """Per-joint gains: kp N·m/rad, kd N·m·s/rad, feed-forward gain a (1), offset b N·m; fit RMS N·m."""

    joint_names: tuple[str, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    feedforward: tuple[float, ...]
    offset: tuple[float, ...]
    residual_rms: tuple[float, ...] = ()
    samples: int = 0

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONTROLLER_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + '\n')
        return path

    @classmethod
    def load(cls, path: str | Path) -> ControllerModel:
        """From a file ``save`` wrote; ValueError when it is not one."""
        try:
            fields = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f'{path}: not JSON: {error}') from None
        if not isinstance(fields, dict) or not {'joint_names', 'kp', 'kd', 'feedforward', 'offset'} <= fields.keys():
            raise ValueError(f'{path}: not a controller model')
        vectors = {key: tuple(fields.get(key, ())) for key in ('joint_names', 'kp', 'kd', 'feedforward', 'offset',
                                                               'residual_rms')}
        return cls(**vectors, samples=int(fields.get('samples', 0)))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.tensor(values, dtype=torch.float32) for values in
                     (self.kp, self.kd, self.feedforward, self.offset))


def supports_plan(model: DynamicsModel) -> bool:
    """Plan-conditioned rollouts need the model's mass matrix and bias forces (the physics-informed arm)."""
    return isinstance(model, PhysicsInformedArm)


def inverse_dynamics(model: PhysicsInformedArm, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> np.ndarray:
    """``M̂(q) qdd + ĉ(q, qd) + ĝ(q)`` (N, n), the ensemble's mean, without friction."""
    as_tensor = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32)).expand(model.members, -1, -1)  # noqa: E731
    with torch.no_grad():
        mass, coriolis, gravity, _, _ = model.terms(as_tensor(q), as_tensor(qd))
        torque = (mass @ as_tensor(qdd).unsqueeze(-1)).squeeze(-1) + coriolis + gravity
    return torque.mean(0).numpy().astype(float)


def identify(model: PhysicsInformedArm, joint_names: tuple[str, ...], q: np.ndarray, qd: np.ndarray,
             tau: np.ndarray, q_desired: np.ndarray, qd_desired: np.ndarray,
             qdd_desired: np.ndarray) -> ControllerModel:
    """Least-squares fit of the controller model on (N, n) measured and desired samples, kp and kd ≥ 0."""
    feedforward = inverse_dynamics(model, q, qd, qdd_desired)
    kp: list[float] = []
    kd: list[float] = []
    gain: list[float] = []
    offset: list[float] = []
    residual: list[float] = []
    for joint in range(q.shape[1]):
        regressors = np.column_stack((q_desired[:, joint] - q[:, joint], qd_desired[:, joint] - qd[:, joint],
                                      feedforward[:, joint], np.ones(len(q))))
        coefficients = lsq_linear(regressors, tau[:, joint], bounds=(LOWER, np.inf)).x
        for values, coefficient in zip((kp, kd, gain, offset), coefficients):
            values.append(float(coefficient))
        residual.append(float(np.sqrt(np.mean((regressors @ coefficients - tau[:, joint]) ** 2))))
    return ControllerModel(tuple(joint_names), tuple(kp), tuple(kd), tuple(gain), tuple(offset), tuple(residual),
                           len(q))


def plan_rollout(model: PhysicsInformedArm, controller: ControllerModel, q0: np.ndarray, qd0: np.ndarray,
                 q_desired: np.ndarray, qd_desired: np.ndarray, qdd_desired: np.ndarray,
                 dt: float) -> np.ndarray:
    """Joint positions (K, H + 1, n) from (q0, qd0) under the controller tracking the desired (H, n)
    states, sample k being the desired state at the end of step k (one step of ``dt`` s each).
    """
    batch = (q0[None], qd0[None], q_desired[None], qd_desired[None], qdd_desired[None])
    return plan_rollouts(model, controller, *batch, dt)[:, 0]


def plan_rollouts(model: PhysicsInformedArm, controller: ControllerModel, q0: np.ndarray, qd0: np.ndarray,
                  q_desired: np.ndarray, qd_desired: np.ndarray, qdd_desired: np.ndarray,
                  dt: float) -> np.ndarray:
    """``plan_rollout`` for B starts at once: states (B, n), desired (B, H, n); positions (K, B, H + 1, n)."""
    kp, kd, gain, offset = controller.tensors()
    members = model.members
    state = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32)).expand(members, -1, -1)  # noqa: E731
    q, qd = state(q0), state(qd0)
    desired = [torch.as_tensor(np.asarray(x, dtype=np.float32)) for x in (q_desired, qd_desired, qdd_desired)]
    stiffness = torch.diag_embed(dt * kd + dt * dt * kp)
    positions = [q]
    with torch.no_grad():
        for step in range(desired[0].shape[1]):
            target, target_velocity, target_acceleration = (d[:, step] for d in desired)
            mass, coriolis, gravity, _, _ = model.terms(q, qd)
            friction, slope = model.dissipation(qd)
            bias = coriolis + gravity
            feedforward = (mass @ target_acceleration.expand_as(q).unsqueeze(-1)).squeeze(-1) + bias
            # PD at the end of the step, linearised in the step's acceleration (moved to the left)
            torque = kp * (target - q - dt * qd) + kd * (target_velocity - qd) + gain * feedforward + offset
            matrix = mass + stiffness + torch.diag_embed(dt * slope)
            qdd = torch.linalg.solve(matrix, (torque - bias - friction).unsqueeze(-1)).squeeze(-1)
            qd = qd + dt * qdd
            q = q + dt * qd
            positions.append(q)
    return torch.stack(positions, -2).numpy().astype(float)
