"""Recent joint states with the plan in force at each, and the rollout error a model makes on them.

The error scored is the one predictions are used for: from a start, the model rolled out over the
horizon (along the plan in force at the start with a controller model, else holding the measured
torque) against the joint positions measured afterwards; RMS over the joints, the rollout's steps
and the starts.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from twin_core.trajectory import JointPlan
from twin_predictor.dynamics import DynamicsModel, PhysicsInformedArm
from twin_predictor.plan import ControllerModel, plan_rollouts
from twin_predictor.rollout import rollout


@dataclass(frozen=True)
class Track:
    """Joint states in time order: ``time`` (N,) s, q, qd, tau (N, n), and per state the plan in
    force (None without one) and the seconds from that plan's stamp.
    """

    time: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    tau: np.ndarray
    plans: tuple[JointPlan | None, ...]
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @property
    def span(self) -> float:
        """Seconds from the first to the last state."""
        return float(self.time[-1] - self.time[0]) if len(self.time) else 0.0

    def part(self, rows: np.ndarray) -> Track:
        """The states selected by a boolean mask or index array."""
        chosen = np.arange(len(self))[rows]
        return Track(self.time[chosen], self.q[chosen], self.qd[chosen], self.tau[chosen],
                     tuple(self.plans[i] for i in chosen), self.offsets[chosen])

    def planned(self) -> np.ndarray:
        """Indices of the states with a plan."""
        return np.array([i for i, plan in enumerate(self.plans) if plan is not None], dtype=int)

    def desired(self, rows: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Desired positions, velocities and accelerations (B, T, n) ``after`` (T,) s after each state in ``rows``."""
        samples = [self.plans[i].sample(self.offsets[i] + after) for i in rows]
        return (np.stack([s.position for s in samples]), np.stack([s.velocity for s in samples]),
                np.stack([s.acceleration for s in samples]))


class TrackingWindow:
    """The last ``seconds`` of joint states (thread-safe): what online refits fit and are judged on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rows: deque[tuple[float, np.ndarray, np.ndarray, np.ndarray, JointPlan | None, float]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, stamp: float, q: np.ndarray, qd: np.ndarray, tau: np.ndarray, plan: JointPlan | None = None,
            offset: float = math.nan) -> None:
        """A joint state at ``stamp`` (s); a repeated stamp is ignored, an earlier one starts afresh."""
        with self._lock:
            if self._rows and stamp <= self._rows[-1][0]:
                if stamp == self._rows[-1][0]:
                    return
                self._rows.clear()  # time went back: a replay restarted
            self._rows.append((stamp, np.asarray(q, float), np.asarray(qd, float), np.asarray(tau, float), plan,
                               offset))
            while self._rows[0][0] < stamp - self.seconds:
                self._rows.popleft()

    def snapshot(self) -> Track:
        with self._lock:
            rows = list(self._rows)
        if not rows:
            empty = np.zeros((0, 0))
            return Track(np.zeros(0), empty, empty, empty, (), np.zeros(0))
        time, q, qd, tau, plans, offsets = zip(*rows)
        return Track(np.array(time), np.array(q), np.array(qd), np.array(tau), plans, np.array(offsets))


def rollout_error(model: DynamicsModel, controller: ControllerModel | None, track: Track, horizon: float,
                  step: float, starts: int) -> float:
    """RMS (rad) of predicted minus measured joint positions over ``horizon`` s from up to ``starts``
    states of ``track`` spread evenly (those with a plan when a ``controller`` drives the rollout);
    NaN when no state has the horizon measured after it, inf when the rollout diverges.
    """
    after = step * np.arange(1, max(1, round(horizon / step)) + 1)
    usable = np.zeros(len(track), dtype=bool)
    if len(track):
        usable = track.time <= track.time[-1] - after[-1]
    if controller is not None:
        usable &= np.array([plan is not None for plan in track.plans], dtype=bool)
    rows = np.flatnonzero(usable)
    if not len(rows):
        return math.nan
    rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(starts, len(rows))).round().astype(int))]
    times = (track.time[rows, None] + after).ravel()
    truth = np.stack([np.interp(times, track.time, track.q[:, j]) for j in range(track.q.shape[1])], -1)
    if controller is not None:
        if not isinstance(model, PhysicsInformedArm):
            raise TypeError(f'a {model.kind} model has no mass matrix to follow a plan with')
        positions = plan_rollouts(model, controller, track.q[rows], track.qd[rows], *track.desired(rows, after), step)
    else:
        state = lambda x: torch.as_tensor(x, dtype=torch.float32).expand(model.members, -1, -1)  # noqa: E731
        torques = state(track.tau[rows]).unsqueeze(-2).expand(-1, -1, len(after), -1)
        positions = rollout(model.acceleration, state(track.q[rows]), state(track.qd[rows]), torques, step)[0].numpy()
    predicted = positions.mean(0)[:, 1:].reshape(truth.shape)
    error = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    return error if math.isfinite(error) else math.inf
