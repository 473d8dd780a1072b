"""Online refits of the predictor's controller model and dynamics, judged on held-out recent data."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from twin_core.paths import config_dir
from twin_predictor.adaptation import ControllerRefit, Guard, GuardSettings, Refiner
from twin_predictor.heldout import TrackingWindow, rollout_error
from twin_predictor.plan import CONTROLLER_FILE, ControllerModel
from twin_predictor.predictor import Predictor, ReplayBuffer
from twin_predictor.registry import create, load
from twin_sim.recording import SAMPLE_PERIOD, Recording, record

WINDOW, LATER = 40.0, 12.0  # s: the refit's window, then data no refit saw


@pytest.fixture(scope='module')
def cell() -> Recording:
    """The nominal cycle as the twin receives it (encoders, plans) from the simulator."""
    torch.set_num_threads(1)
    return record('nominal', WINDOW + LATER, seed=5)


@pytest.fixture(scope='module')
def shipped() -> tuple[torch.nn.Module, ControllerModel]:
    model, _ = load(config_dir() / 'models' / 'predictor')
    return model, ControllerModel.load(config_dir() / 'models' / 'predictor' / CONTROLLER_FILE)


def windowed(data: Recording, rows: range, q: np.ndarray | None = None) -> TrackingWindow:
    window = TrackingWindow(WINDOW)
    positions = data.q if q is None else q
    for i in rows:
        window.add(i * SAMPLE_PERIOD, positions[i], data.qd[i], data.tau[i], data.plans[i], 0.0)
    return window


def guarded(model: torch.nn.Module, controller: ControllerModel, window: TrackingWindow) -> tuple[Predictor, Guard]:
    predictor = Predictor(model, 7, 0.02, 12, controller=controller)  # type: ignore[arg-type]
    return predictor, Guard(predictor, window, GuardSettings(WINDOW, 0.25, 0.05, 1.0, 0.02, 30))


def test_a_refit_after_the_cells_gains_changed_is_accepted_and_predicts_better(cell, shipped) -> None:
    model, identified = shipped
    # the cell's servo now runs at twice the gains the controller model knows (retuned after identification)
    stale = replace(identified, kp=tuple(0.5 * np.array(identified.kp)), kd=tuple(0.5 * np.array(identified.kd)))
    window = windowed(cell, range(round(WINDOW / SAMPLE_PERIOD)))
    predictor, guard = guarded(model, stale, window)
    assert ControllerRefit(guard, period=30.0).once()
    verdict = guard.verdicts['controller']
    assert (verdict.accepted, verdict.rejected, predictor.version) == (1, 0, 8)
    assert verdict.candidate_error < 0.95 * verdict.current_error and verdict.last.startswith('accepted as version 8')
    assert predictor.controller is not stale and min(predictor.controller.kp) > 0.0
    later = windowed(cell, range(round(WINDOW / SAMPLE_PERIOD), len(cell.q))).snapshot()
    before, after = (rollout_error(model, c, later, 1.0, 0.02, 30) for c in (stale, predictor.controller))
    assert after < 0.8 * before, (before, after)  # also on data after the window


def test_the_guard_rejects_a_refit_on_a_stuck_encoder(cell, shipped) -> None:
    model, identified = shipped
    q = cell.q.copy()
    stuck = slice(round(5.0 / SAMPLE_PERIOD), round(20.0 / SAMPLE_PERIOD))  # joint_2 reads one value for 15 s
    q[stuck, 1] = q[stuck.start, 1]
    window = windowed(cell, range(round(WINDOW / SAMPLE_PERIOD)), q)
    predictor, guard = guarded(model, identified, window)
    assert not ControllerRefit(guard, period=30.0).once()
    verdict = guard.verdicts['controller']
    assert (verdict.accepted, verdict.rejected, predictor.version) == (0, 1, 7)
    assert predictor.controller is identified and verdict.last.startswith('rejected')
    assert verdict.candidate_error > verdict.current_error > 0.0


def test_tracking_window_keeps_its_seconds_and_restarts_when_time_goes_back() -> None:
    window, zero = TrackingWindow(1.0), np.zeros(2)
    for k in range(30):
        window.add(0.125 * k, zero + k, zero, zero)
    window.add(0.125 * 29, zero, zero, zero)  # the same stamp again
    track = window.snapshot()
    assert len(track) == 9 and track.span == pytest.approx(1.0) and track.q[-1, 0] == 29.0
    assert track.planned().size == 0 and math.isnan(rollout_error(
        create('ensemble', 2, {'tau_scale': torch.ones(2), 'qdd_scale': torch.ones(2), 'qd_scale': torch.ones(2)},
               members=1, hidden=(4,)), None, track, 2.0, 0.1, 5))  # no start has 2 s measured after it
    window.add(1.0, zero, zero, zero)
    assert len(window) == 1


def test_a_guarded_refinement_trains_before_the_held_out_part_and_can_be_rejected() -> None:
    torch.manual_seed(0)
    ones = torch.ones(2)
    model = create('ensemble', 2, {'tau_scale': ones, 'qdd_scale': ones, 'qd_scale': ones}, members=1, hidden=(4,))
    predictor = Predictor(model, 1, 0.01, 5)
    buffer, window = ReplayBuffer(1000), TrackingWindow(2.0)
    for k in range(201):
        q, qd, tau = np.full(2, np.sin(0.01 * k)), np.full(2, np.cos(0.01 * k)), np.ones(2)
        buffer.add(0.01 * k, q, qd, tau)
        window.add(0.01 * k, q, qd, tau)
    assert len(buffer.samples()) == 200 and len(buffer.samples(before=1.5)) == 149
    guard = Guard(predictor, window, GuardSettings(2.0, 0.25, 0.99, 1.0, 0.01, 10))  # needs a 99 % lower error
    refiner = Refiner(predictor, buffer, period=60.0, steps=2, min_samples=50, learning_rate=1e-3, guard=guard)
    assert not refiner.once()
    verdict = guard.verdicts['dynamics']
    assert (refiner.refinements, verdict.rejected, predictor.version) == (1, 1, 1) and predictor.model is model
    assert np.isfinite(verdict.current_error) and np.isfinite(verdict.candidate_error)
