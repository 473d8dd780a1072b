"""What the twin receives from a simulated run, sampled for offline evaluation of predictions.

Every ``SAMPLE_PERIOD`` s: the encoder sample (quantised positions, noisy velocities and efforts),
the true joint positions, the controller's reference (desired position, velocity, acceleration)
and its plan as the plan channel sends it (the current reference and the next segment ends).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from twin_core.trajectory import JointPlan
from twin_core.urdf import urdf_file
from twin_sim.paths import scenario_path
from twin_sim.scenario import Scenario
from twin_sim.settings import SimSettings
from twin_sim.workcell import Workcell

SAMPLE_PERIOD = 0.01  # s
TARGETS = 6


@dataclass
class Recording:
    """Rows every SAMPLE_PERIOD: measured (q, qd, tau), true q, desired (q, qd, qdd), plans."""

    q: np.ndarray
    qd: np.ndarray
    tau: np.ndarray
    truth: np.ndarray
    desired: np.ndarray
    desired_velocity: np.ndarray
    desired_acceleration: np.ndarray
    plans: list[JointPlan]


def record(scenario: str, seconds: float, seed: int, bandwidth_hz: float | None = None) -> Recording:
    """``seconds`` of ``scenario``; ``bandwidth_hz`` retunes the cell's joint servos (default: the settings')."""
    settings = SimSettings() if bandwidth_hz is None else replace(SimSettings(), control_bandwidth_hz=bandwidth_hz)
    cell = Workcell(urdf_file(), Scenario.from_file(scenario_path(scenario)), settings, seed=seed)
    steps = round(SAMPLE_PERIOD / cell.settings.timestep)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in ('q', 'qd', 'tau', 'truth', 'desired',
                                                            'desired_velocity', 'desired_acceleration')}
    plans = []
    for _ in range(round(seconds / SAMPLE_PERIOD)):
        cell.step(steps)
        measured = cell.encoder_sample()
        plan = cell.plan_sample(TARGETS)
        assert measured is not None and plan is not None
        reference = cell.controller.reference
        for key, value in zip(rows, (*measured, cell.truth().q, reference.position, reference.velocity,
                                     reference.acceleration)):
            rows[key].append(np.asarray(value, dtype=float))
        plans.append(JointPlan(0, cell.joint_names, plan.times, plan.positions, plan.velocities,
                               plan.accelerations))
    return Recording(**{key: np.array(value) for key, value in rows.items()}, plans=plans)
