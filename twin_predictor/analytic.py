"""Analytic arm dynamics from the URDF through MuJoCo: the reference models of the evaluation.

``AnalyticArm()`` is the exact model of the simulated arm (inertias, reflected rotor inertia,
joint damping, Coulomb friction as a constraint, and MuJoCo's implicit integration of the servo's
velocity term): one engine step from (q, qd) with the motor force pinned to ``tau``.
``AnalyticArm(mass_errors={'link_2': 0.05})`` is the same model with a 5 % wrong link mass
(mass and inertia tensor scaled together).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import mujoco
import numpy as np
import torch

from twin_core.urdf import read_arm_description, urdf_file
from twin_sim.model import build_model
from twin_sim.thermal import MotorParameters


class AnalyticArm:
    """Discrete-time accelerations ``(qd⁺ − qd) / dt`` of one engine step, on (K, B, n) tensors."""

    members = 1

    def __init__(self, timestep: float, urdf: str | Path | None = None,
                 mass_errors: Mapping[str, float] | None = None) -> None:
        path = urdf_file(urdf or '')
        arm = read_arm_description(path)
        self.model, gains = build_model(path, arm, timestep=timestep,
                                        rotor_inertia=MotorParameters().rotor_inertia)
        self.model.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
        for link, error in (mass_errors or {}).items():
            body = self.model.body(link).id
            self.model.body_mass[body] *= 1.0 + error
            self.model.body_inertia[body] *= 1.0 + error
        self.data = mujoco.MjData(self.model)
        self.joint_names = arm.joint_names
        self.timestep = timestep
        self._kp, self._kd = gains.kp, gains.kd
        self._qpos = np.array([self.model.joint(name).qposadr[0] for name in arm.joint_names])
        self._dofs = np.array([self.model.joint(name).dofadr[0] for name in arm.joint_names])

    def _set_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.data.qpos[self._qpos] = q
        self.data.qvel[self._dofs] = qd

    def acceleration(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor, dt: float = 0.0) -> torch.Tensor:
        """``dt`` is ignored: the step is the model's own timestep."""
        shape = q.shape
        qs, qds, taus = (x.reshape(-1, shape[-1]).double().numpy() for x in (q, qd, tau))
        out = np.empty_like(qs)
        for row, (position, velocity, torque) in enumerate(zip(qs, qds, taus)):
            self._set_state(position, velocity)
            # the servo computes kp·ctrl − kp·q − kd·qd: choose ctrl so that it applies ``torque``
            self.data.ctrl[:] = (torque + self._kp * position + self._kd * velocity) / self._kp
            mujoco.mj_step(self.model, self.data)
            out[row] = (self.data.qvel[self._dofs] - velocity) / self.timestep
        return torch.from_numpy(out).to(q.dtype).reshape(shape)

    def energy(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Kinetic + potential energy (J) of states (…, n) under this model."""
        flat_q, flat_qd = q.reshape(-1, q.shape[-1]), qd.reshape(-1, qd.shape[-1])
        out = np.empty(len(flat_q))
        for row, (position, velocity) in enumerate(zip(flat_q, flat_qd)):
            self._set_state(position, velocity)
            mujoco.mj_fwdPosition(self.model, self.data)
            mujoco.mj_energyPos(self.model, self.data)
            mujoco.mj_energyVel(self.model, self.data)
            out[row] = self.data.energy.sum()
        return out.reshape(q.shape[:-1])
