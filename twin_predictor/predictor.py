"""Online joint-trajectory prediction: swappable models, prediction cache, replay buffer.

No ROS here: ``predictor_node`` feeds joint states in and publishes what ``Predictor.predict``
returns. Without a plan the future torque is unknown, so the last measured torque is held
(mode ``torque_hold``); with the controller's plan and a controller model, ``predict_with_plan``
drives the model along the commanded trajectory (mode ``plan``, ``twin_predictor.plan``).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from twin_core.trajectory import JointPlan
from twin_predictor.dynamics import DynamicsModel, PhysicsInformedArm
from twin_predictor.plan import ControllerModel, plan_rollout
from twin_predictor.registry import PredictionCache
from twin_predictor.rollout import rollout
from twin_predictor.training import Samples


@dataclass(frozen=True)
class Prediction:
    """Ensemble mean and std of the joint positions (H + 1, n) at ``times`` (s from now); ``mode``
    says what drove the rollout: ``plan`` or ``torque_hold``.
    """

    times: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    version: int
    cached: bool
    mode: str = 'torque_hold'


class Predictor:
    """Rolls the current model out over the horizon; ``swap`` replaces the model or the controller
    model atomically (a new version either way).
    """

    def __init__(self, model: DynamicsModel, version: int, step: float, horizon_steps: int,
                 cache: PredictionCache | None = None, controller: ControllerModel | None = None) -> None:
        self.step, self.horizon_steps = step, horizon_steps
        self.cache = cache or PredictionCache()
        self.micros_per_step = float('nan')  # of the last computed (not cached) prediction
        self._current = (model, controller, version)
        self._lock = threading.Lock()

    @property
    def model(self) -> DynamicsModel:
        return self._current[0]

    @property
    def controller(self) -> ControllerModel | None:
        """The controller model plans are followed with; None when plans are not followed."""
        return self._current[1]

    @property
    def version(self) -> int:
        return self._current[2]

    def swap(self, model: DynamicsModel | None = None, controller: ControllerModel | None = None) -> int:
        """Install ``model`` and/or ``controller`` (the other one kept) as the next version; returns it."""
        with self._lock:
            current_model, current_controller, version = self._current
            self._current = (model or current_model, controller or current_controller, version + 1)
            return version + 1

    def predict(self, q: np.ndarray, qd: np.ndarray, tau: np.ndarray) -> Prediction:
        model, _, version = self._current
        key = self.cache.key(np.concatenate((q, qd, tau)), self.horizon_steps, version)
        hit = self.cache.get(key)
        if hit is not None:
            times, mean, std, hit_version = hit
            return Prediction(times, mean, std, hit_version, True)
        start = time.perf_counter()
        members = model.members
        as_state = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32)).expand(members, 1, -1)  # noqa: E731
        torques = as_state(tau).unsqueeze(-2).expand(members, 1, self.horizon_steps, -1)
        rolled, _ = rollout(model.acceleration, as_state(q), as_state(qd), torques, self.step)
        positions = rolled[:, 0].numpy().astype(float)
        self.micros_per_step = (time.perf_counter() - start) * 1e6 / self.horizon_steps
        times = self.step * np.arange(self.horizon_steps + 1)
        result = (times, positions.mean(0), positions.std(0), version)
        self.cache.put(key, result)
        return Prediction(*result, False)

    def predict_with_plan(self, q: np.ndarray, qd: np.ndarray, plan: JointPlan, offset: float, step: float,
                          horizon_steps: int) -> Prediction:
        """Roll out along ``plan`` sampled from ``offset`` s after its stamp (the state's instant)."""
        model, controller, version = self._current
        if not isinstance(model, PhysicsInformedArm):
            raise TypeError(f'a {model.kind} model has no mass matrix to follow a plan with')
        if controller is None:
            raise TypeError('no controller model to follow a plan with')
        start = time.perf_counter()
        times = step * np.arange(horizon_steps + 1)
        desired = plan.sample(offset + times[1:])
        positions = plan_rollout(model, controller, q, qd, desired.position, desired.velocity, desired.acceleration,
                                 step)
        self.micros_per_step = (time.perf_counter() - start) * 1e6 / horizon_steps
        return Prediction(times, positions.mean(0), positions.std(0), version, False, 'plan')


class ReplayBuffer:
    """Recent (q, qd, tau, qdd) tuples from consecutive joint states, acceleration by finite difference."""

    def __init__(self, capacity: int, max_gap: float = 0.05) -> None:
        self._rows: deque[np.ndarray] = deque(maxlen=capacity)
        self._last: tuple[float, np.ndarray, np.ndarray] | None = None
        self._max_gap = max_gap
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, stamp: float, q: np.ndarray, qd: np.ndarray, tau: np.ndarray) -> None:
        """Like ``training.samples_from``: the torque measured at the later state acted over the interval."""
        last, self._last = self._last, (stamp, np.asarray(q, float), np.asarray(qd, float))
        if last is None or not 0.0 < stamp - last[0] <= self._max_gap:
            return
        with self._lock:
            dt = stamp - last[0]
            self._rows.append(np.concatenate((last[1], last[2], tau, (qd - last[2]) / dt, [dt, stamp])))

    def samples(self, before: float = math.inf) -> Samples:
        """The samples whose later state is stamped before ``before`` (s)."""
        with self._lock:
            rows = [row for row in self._rows if row[-1] < before]
        n = (len(rows[0]) - 2) // 4 if rows else 0
        table = torch.as_tensor(np.array(rows).reshape(len(rows), 4 * n + 2), dtype=torch.float32)
        return Samples(*table[:, :-1].split([n, n, n, n, 1], dim=1))
