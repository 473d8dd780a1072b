"""Online adaptation with a guard: the controller model and the dynamics refit from live data in
the background, each refit kept only when it predicts the newest joint states better.

A refit is fitted on the older part of a recent window (``heldout.TrackingWindow``); the current
and the candidate models are then rolled out over the horizon from starts in the window's newest
``holdout`` fraction, which no fit saw (``heldout.rollout_error``: along the plan with a controller
model, holding the torque without one). The candidate replaces the current model
(``Predictor.swap``: a new model version) only when its held-out error is at least ``margin`` (a
fraction) below the current one; otherwise it is rejected. Refits run in supervised workers at the
lowest CPU priority, never on the thread that predicts.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from twin_core.priority import lower_priority
from twin_core.workers import Workers
from twin_predictor.dynamics import DynamicsModel, PhysicsInformedArm
from twin_predictor.heldout import Track, TrackingWindow, rollout_error
from twin_predictor.plan import ControllerModel, identify
from twin_predictor.predictor import Predictor, ReplayBuffer
from twin_predictor.training import fit

FULL = 0.9  # refits wait until the window spans this fraction of its length
ROWS_PER_GAIN = 25  # planned states per fitted controller coefficient needed for a refit


@dataclass(frozen=True)
class GuardSettings:
    """Window (s), held-out fraction, relative margin, plan horizon and step (s), starts scored."""

    window: float
    holdout: float
    margin: float
    horizon: float
    step: float
    starts: int


@dataclass
class Verdicts:
    """The refits of one part: accepted, rejected, the last held-out errors (rad) and the last outcome."""

    accepted: int = 0
    rejected: int = 0
    current_error: float = math.nan
    candidate_error: float = math.nan
    last: str = 'no refit yet'


class Guard:
    """Splits the window into fit and held-out parts, scores candidates and swaps in the better ones."""

    def __init__(self, predictor: Predictor, window: TrackingWindow, settings: GuardSettings) -> None:
        self.predictor, self.window, self.settings = predictor, window, settings
        self.verdicts = {'controller': Verdicts(), 'dynamics': Verdicts()}

    def split(self) -> tuple[Track, Track] | None:
        """The window's older (fit) and newest (held-out) parts; None until the window is nearly full."""
        track = self.window.snapshot()
        if track.span < FULL * self.settings.window:
            return None
        older = track.time < track.time[-1] - self.settings.holdout * track.span
        return track.part(older), track.part(~older)

    def error(self, held: Track, model: DynamicsModel, controller: ControllerModel | None) -> float:
        """Held-out rollout error (rad): along the plan over the plan horizon, else holding the torque."""
        if controller is None:
            step = self.predictor.step
            return rollout_error(model, None, held, step * self.predictor.horizon_steps, step, self.settings.starts)
        return rollout_error(model, controller, held, self.settings.horizon, self.settings.step, self.settings.starts)

    def judge(self, part: str, held: Track, model: DynamicsModel | None = None,
              controller: ControllerModel | None = None) -> bool:
        """Score the current models and the candidate (``model`` and/or ``controller`` in place of the
        current ones) on ``held``; swap the candidate in when it is better by the margin.
        """
        current_model, current_controller = self.predictor.model, self.predictor.controller
        current = self.error(held, current_model, current_controller)
        candidate = self.error(held, model or current_model, controller or current_controller)
        verdict = self.verdicts[part]
        verdict.current_error, verdict.candidate_error = current, candidate
        errors = (f'held-out error {1e3 * candidate:.2f} mrad against {1e3 * current:.2f}' if not math.isnan(current)
                  else 'no held-out start has the horizon measured after it')
        if candidate < (1.0 - self.settings.margin) * current:
            version = self.predictor.swap(model, controller)
            verdict.accepted += 1
            verdict.last = f'accepted as version {version}: {errors}'
            return True
        verdict.rejected += 1
        verdict.last = f'rejected: {errors} (margin {self.settings.margin:g})'
        return False


class Periodic:
    """Calls ``once`` every ``period`` s in a supervised worker at the lowest CPU priority until stopped."""

    name = ''

    def __init__(self, period: float, workers: Workers | None = None) -> None:
        self.period = period
        self._workers = workers or Workers()

    def once(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self._workers.spawn(self.name, self._run)

    def stop(self) -> None:
        """Stop the workers this runs in (the node's, when it was given them)."""
        self._workers.stop()

    def _run(self) -> None:
        lower_priority()  # refits must not slow the predictions down
        while not self._workers.wait(self.period):
            self.once()


class ControllerRefit(Periodic):
    """Refits the controller model by least squares on the window's older part; the guard judges it."""

    name = 'predictor controller refit'

    def __init__(self, guard: Guard, period: float, workers: Workers | None = None) -> None:
        super().__init__(period, workers)
        self.guard = guard

    def once(self) -> bool:
        """True when a refit was accepted; False when rejected or when there was too little data."""
        parts, current = self.guard.split(), self.guard.predictor.controller
        model = self.guard.predictor.model
        if parts is None or current is None or not isinstance(model, PhysicsInformedArm):
            return False
        fit_part, held = parts
        rows = fit_part.planned()
        if len(rows) < 4 * ROWS_PER_GAIN:
            return False
        desired = (values[:, 0] for values in fit_part.desired(rows, np.zeros(1)))
        candidate = identify(model, current.joint_names, fit_part.q[rows], fit_part.qd[rows], fit_part.tau[rows],
                             *desired)
        return self.guard.judge('controller', held, controller=candidate)


class Refiner(Periodic):
    """Fine-tunes a copy of the dynamics model on the replay buffer; with a guard, only on samples
    before the held-out part and swapped in only when the guard accepts it.
    """

    name = 'predictor refiner'

    def __init__(self, predictor: Predictor, buffer: ReplayBuffer, period: float, steps: int,
                 min_samples: int, learning_rate: float, workers: Workers | None = None,
                 guard: Guard | None = None) -> None:
        super().__init__(period, workers)
        self.predictor, self.buffer, self.guard = predictor, buffer, guard
        self.steps, self.min_samples, self.learning_rate = steps, min_samples, learning_rate
        self.last_loss = math.nan
        self.refinements = 0

    def once(self) -> bool:
        """True when a refinement was swapped in."""
        held = None
        if self.guard is not None:
            parts = self.guard.split()
            if parts is None:
                return False
            held = parts[1]
        samples = self.buffer.samples(held.time[0] if held is not None else math.inf)
        if len(samples) < self.min_samples:
            return False
        candidate = copy.deepcopy(self.predictor.model)
        history = fit(candidate, samples, self.steps, batch=min(256, len(samples)),
                      learning_rate=self.learning_rate, seed=self.refinements)
        self.last_loss = float(np.mean(history[-max(1, len(history) // 5):]))
        self.refinements += 1
        if held is None or self.guard is None:
            self.predictor.swap(candidate)
            return True
        return self.guard.judge('dynamics', held, model=candidate)
