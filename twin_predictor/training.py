"""Fitting the learned dynamics models on (q, qd, tau, qdd) samples; shared by the CLI and the node."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from twin_predictor.dynamics import DynamicsModel, Scales
from twin_predictor.joint_data import JointData

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass(frozen=True)
class Samples:
    """Training tuples (N, n): state, the torque applied until the next sample, the resulting
    acceleration, and the interval (N, 1) it was measured over.
    """

    q: torch.Tensor
    qd: torch.Tensor
    tau: torch.Tensor
    qdd: torch.Tensor
    dt: torch.Tensor

    def __len__(self) -> int:
        return len(self.q)

    def scales(self) -> Scales:
        """Per-joint RMS of torque, acceleration and velocity (the models' normalisation)."""
        rms = lambda x: x.pow(2).mean(0).sqrt().clamp_min(1e-3)  # noqa: E731
        return {'tau_scale': rms(self.tau), 'qdd_scale': rms(self.qdd), 'qd_scale': rms(self.qd)}


def samples_from(data: JointData) -> Samples:
    """Align the recording: the effort logged at t[k+1] is the torque that acted over [t[k], t[k+1]]."""
    as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return Samples(as_tensor(data.q[:-1]), as_tensor(data.qd[:-1]), as_tensor(data.tau[1:]),
                   as_tensor(data.acceleration()), as_tensor(np.diff(data.time)[:, None]))


def fit(model: DynamicsModel, samples: Samples, steps: int, batch: int = 512, learning_rate: float = 3e-3,
        seed: int = 0, time_limit: float = float('inf'), progress: tqdm | None = None) -> list[float]:
    """Adam, learning rate annealed (cosine) over whichever runs out first: steps or time.

    Every ensemble member draws its own minibatches. Returns the loss history. ``progress`` moves a
    step at a time with the loss; its total is the steps, or those the time limit allows once it binds.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history: list[float] = []
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        done = min(1.0, max(step / steps, (time.perf_counter() - start) / time_limit))
        if done >= 1.0:
            break
        if progress is not None and step:
            progress.total = min(steps, max(step + 1, round(step / done)))
        for group in optimiser.param_groups:
            group['lr'] = 0.5 * learning_rate * (1.0 + math.cos(math.pi * done))
        index = torch.randint(len(samples), (model.members, batch), generator=generator)
        loss = model.loss(samples.q[index], samples.qd[index], samples.tau[index], samples.qdd[index],
                          samples.dt[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(loss.item())
        if progress is not None:
            progress.set_postfix_str(f'loss={history[-1]:.3g}', refresh=False)
            progress.update()
    if progress is not None:
        progress.total = len(history)
    model.eval()
    return history


def validation_loss(model: DynamicsModel, samples: Samples, limit: int = 20000) -> float:
    """Normalised acceleration error on (at most ``limit`` evenly spaced) samples."""
    index = torch.as_tensor(np.linspace(0, len(samples) - 1, min(limit, len(samples))).astype(np.int64))
    expand = lambda x: x[index].expand(model.members, -1, -1)  # noqa: E731
    with torch.no_grad():
        predicted = model.acceleration(expand(samples.q), expand(samples.qd), expand(samples.tau),
                                       expand(samples.dt))
        return float((((predicted - expand(samples.qdd)) / model.qdd_scale) ** 2).mean())
