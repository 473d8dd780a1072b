"""Learned arm dynamics: the physics-informed (Lagrangian) model and the plain MLP baseline.

Both map ``(q, qd, tau)`` to joint accelerations for K stacked ensemble members at once; tensors
are shaped (K, B, n_joints), units rad, rad/s, rad/s², N·m. ``dt`` (s) is the step of the
integrator the acceleration is for: the physics-informed model treats its dissipation implicitly
over that step (as MuJoCo does with joint damping), which keeps stiff friction stable.
"""
from __future__ import annotations

import math
from typing import Any, TypedDict

import torch
from torch import nn
from torch.nn.functional import softplus

from twin_predictor.networks import StackedMLP, angle_features, chain_angles

MASS_EPSILON = 1e-3  # kg·m², keeps M(q) positive-definite
ARMATURE_INIT = 0.5  # kg·m²
HUBER_BETA = 0.1  # normalised error where the loss turns linear: stick–slip outliers weigh less


class Scales(TypedDict):
    """Per-joint normalisation of a model's torque, acceleration and velocity (its constructor's arguments)."""

    tau_scale: torch.Tensor
    qdd_scale: torch.Tensor
    qd_scale: torch.Tensor


def robust(error: torch.Tensor) -> torch.Tensor:
    """Mean Huber loss of a normalised error."""
    return torch.nn.functional.smooth_l1_loss(error, torch.zeros_like(error), beta=HUBER_BETA)


class DynamicsModel(nn.Module):
    """Common interface: normalisation buffers, forward dynamics and a training loss."""

    kind = ''
    # buffers (register_buffer), typed here: nn.Module's attribute lookup is untyped
    tau_scale: torch.Tensor
    qdd_scale: torch.Tensor
    qd_scale: torch.Tensor

    def __init__(self, joints: int, members: int, tau_scale: torch.Tensor, qdd_scale: torch.Tensor,
                 qd_scale: torch.Tensor) -> None:
        super().__init__()
        self.joints, self.members = joints, members
        self.register_buffer('tau_scale', torch.as_tensor(tau_scale, dtype=torch.float32).clone())
        self.register_buffer('qdd_scale', torch.as_tensor(qdd_scale, dtype=torch.float32).clone())
        self.register_buffer('qd_scale', torch.as_tensor(qd_scale, dtype=torch.float32).clone())

    def hyperparameters(self) -> dict[str, Any]:
        return {'joints': self.joints, 'members': self.members}

    def acceleration(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
                     dt: torch.Tensor | float = 0.0) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor, qdd: torch.Tensor,
             dt: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Robust acceleration error, normalised per joint."""
        return robust((self.acceleration(q, qd, tau, dt) - qdd) / self.qdd_scale)


class PhysicsInformedArm(DynamicsModel):
    """Euler–Lagrange dynamics ``M(q) qdd + C(q, qd) qd + g(q) + f(qd) = tau`` with learned parts.

    * ``M = s·L Lᵀ + diag(armature) + εI``, L lower-triangular with a softplus diagonal from a
      network of sin/cos of the sums of consecutive joint angles: positive-definite by
      construction; ``invariant_joints`` (e.g. a base yaw about the gravity axis) do not enter M, V;
    * ``g = ∂V/∂q`` from a learned potential V(q) (same network, last output);
    * Coriolis/centrifugal forces from the Christoffel symbols of ∂M/∂q;
    * dissipation ``f = b·qd + c·tanh(qd / v_s)`` with b, c ≥ 0 (viscous + smooth Coulomb), so
      the model can only remove energy.
    """

    kind = 'physics_informed'
    angles: torch.Tensor
    diagonal: torch.Tensor
    unpack: torch.Tensor

    def __init__(self, joints: int, members: int, tau_scale: torch.Tensor, qdd_scale: torch.Tensor,
                 qd_scale: torch.Tensor, hidden: tuple[int, ...] = (64, 64),
                 coulomb_velocity: float = 0.005, residual_weight: float = 1.0,
                 invariant_joints: tuple[int, ...] = ()) -> None:
        super().__init__(joints, members, tau_scale, qdd_scale, qd_scale)
        self.hidden, self.coulomb_velocity, self.residual_weight = tuple(hidden), coulomb_velocity, residual_weight
        self.invariant_joints = tuple(invariant_joints)
        configuration = tuple(joint for joint in range(joints) if joint not in self.invariant_joints)
        self.register_buffer('angles', chain_angles(joints, configuration))
        rows, cols = torch.tril_indices(joints, joints)
        self.register_buffer('diagonal', rows == cols)
        # scatters the packed lower-triangular entries into a row-major n×n matrix
        self.register_buffer('unpack', torch.nn.functional.one_hot(rows * joints + cols, joints * joints).float())
        self.net = StackedMLP(members, 2 * len(self.angles), self.hidden, len(rows) + 1, skip=True)
        self.armature = nn.Parameter(torch.full((members, 1, joints), math.log(math.expm1(ARMATURE_INIT))))
        self.viscous = nn.Parameter(torch.full((members, 1, joints), -2.0))
        self.coulomb = nn.Parameter(torch.full((members, 1, joints), -2.0))

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), 'hidden': list(self.hidden),
                'coulomb_velocity': self.coulomb_velocity, 'residual_weight': self.residual_weight,
                'invariant_joints': list(self.invariant_joints)}

    @property
    def energy_scale(self) -> torch.Tensor:
        return self.tau_scale.mean()

    @property
    def mass_scale(self) -> torch.Tensor:
        return (self.tau_scale / self.qdd_scale).mean()

    def terms(self, q: torch.Tensor, qd: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mass matrix (K, B, n, n), Coriolis c (K, B, n), gravity g, friction f, potential V (K, B)."""
        n, batch = self.joints, q.shape[:-1]
        features, dfeatures = angle_features(q, self.angles)
        out, jac = self.net.with_jacobian(features, dfeatures)
        raw, draw = out[..., :-1], jac[..., :-1]
        entries = torch.where(self.diagonal, softplus(raw), raw)
        dentries = torch.where(self.diagonal, torch.sigmoid(raw).unsqueeze(-2) * draw, draw)
        lower = (entries @ self.unpack).view(*batch, n, n)
        dlower = (dentries @ self.unpack).view(*batch, n, n, n)  # [z, i, j] = ∂L_ij/∂q_z
        scale = self.mass_scale
        mass = scale * lower @ lower.transpose(-1, -2) + torch.diag_embed(
            softplus(self.armature).expand_as(q) + MASS_EPSILON)
        half = dlower @ lower.unsqueeze(-3).transpose(-1, -2)
        dmass = scale * (half + half.transpose(-1, -2))  # [z, i, j] = ∂M_ij/∂q_z
        # Christoffel form: c = Ṁ qd − ½ ∂(qdᵀ M qd)/∂q with Ṁ = Σ_z qd_z ∂M/∂q_z
        m_dot = (qd.unsqueeze(-2) @ dmass.flatten(-2)).view(*batch, n, n)
        quadratic = (qd[..., None, None, :] @ dmass @ qd[..., None, :, None]).view(*batch, n)
        coriolis = (m_dot @ qd.unsqueeze(-1)).squeeze(-1) - 0.5 * quadratic
        potential = self.energy_scale * out[..., -1]
        gravity = self.energy_scale * jac[..., -1]
        return mass, coriolis, gravity, self.dissipation(qd)[0], potential

    def dissipation(self, qd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Friction torque f(qd) and its slope ∂f/∂qd (diagonal, ≥ 0)."""
        viscous, coulomb = softplus(self.viscous), softplus(self.coulomb)
        sticking = torch.tanh(qd / self.coulomb_velocity)
        return (viscous * qd + coulomb * sticking,
                viscous + coulomb / self.coulomb_velocity * (1.0 - sticking * sticking))

    def _implicit(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
                  dt: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """``M + dt·∂f/∂qd`` and the net generalised force ``tau − c − g − f``."""
        mass, coriolis, gravity, _, _ = self.terms(q, qd)
        friction, slope = self.dissipation(qd)
        return mass + torch.diag_embed(dt * slope), tau - coriolis - gravity - friction

    def acceleration(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
                     dt: torch.Tensor | float = 0.0) -> torch.Tensor:
        mass, force = self._implicit(q, qd, tau, dt)
        return torch.linalg.solve(mass, force.unsqueeze(-1)).squeeze(-1)

    def loss(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor, qdd: torch.Tensor,
             dt: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Forward (acceleration) error plus the inverse-dynamics residual of the Euler–Lagrange equation."""
        mass, rhs = self._implicit(q, qd, tau, dt)
        forward = torch.linalg.solve(mass, rhs.unsqueeze(-1)).squeeze(-1)
        residual = (mass @ qdd.unsqueeze(-1)).squeeze(-1) - rhs
        return robust((forward - qdd) / self.qdd_scale) + self.residual_weight * robust(residual / self.tau_scale)

    def energy(self, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """The model's own mechanical energy ½ qdᵀ M qd + V (J, up to a constant)."""
        mass, _, _, _, potential = self.terms(q, qd)
        return 0.5 * torch.einsum('mbi,mbij,mbj->mb', qd, mass, qd) + potential


class MlpArm(DynamicsModel):
    """Black-box baseline: qdd = MLP([sin q, cos q, qd, tau]) with normalised inputs and outputs."""

    kind = 'mlp'

    def __init__(self, joints: int, members: int, tau_scale: torch.Tensor, qdd_scale: torch.Tensor,
                 qd_scale: torch.Tensor, hidden: tuple[int, ...] = (128, 128)) -> None:
        super().__init__(joints, members, tau_scale, qdd_scale, qd_scale)
        self.hidden = tuple(hidden)
        self.net = StackedMLP(members, 4 * joints, self.hidden, joints)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), 'hidden': list(self.hidden)}

    def acceleration(self, q: torch.Tensor, qd: torch.Tensor, tau: torch.Tensor,
                     dt: torch.Tensor | float = 0.0) -> torch.Tensor:
        features = torch.cat((torch.sin(q), torch.cos(q), qd / self.qd_scale, tau / self.tau_scale), -1)
        return self.qdd_scale * self.net(features)
