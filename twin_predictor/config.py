"""Parameters of the predictor node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twin_core.config import describe


@dataclass(frozen=True)
class RefineConfig:
    enabled: bool = field(default=True, metadata=describe('Fine-tune the model online in the background.'))
    period: float = field(default=30.0, metadata=describe('Seconds between refinements.', min=0.1, max=86400.0))
    steps: int = field(default=50, metadata=describe('Optimiser steps per refinement.', min=1, max=100_000))
    min_samples: int = field(default=500, metadata=describe(
        'Replay samples needed before refining.', min=1, max=10_000_000))
    buffer: int = field(default=20_000, metadata=describe('Replay buffer capacity (samples).', min=1,
                                                          max=10_000_000))
    learning_rate: float = field(default=1e-4, metadata=describe('Adam learning rate.', min=1e-8, max=1.0))
    max_gap: float = field(default=0.05, metadata=describe(
        'Longest interval between joint states used as a finite-difference sample (s).', min=1e-4, max=1.0))


@dataclass(frozen=True)
class PlanConfig:
    enabled: bool = field(default=True, metadata=describe(
        'Follow the controller\'s plan (plan/joint_trajectory) when one is known; else hold the torque.'))
    controller: str = field(default='', metadata=describe(
        'Controller model file (controller.json); empty = the one beside the model.'))
    horizon: float = field(default=1.0, metadata=describe('Prediction horizon with a plan (s).', min=0.001,
                                                          max=60.0))
    step: float = field(default=0.04, metadata=describe('Integration step of the rollout with a plan (s).',
                                                        min=1e-4, max=1.0))
    timeout: float = field(default=0.5, metadata=describe(
        'A plan older than this (s) at the joint state it is used with is not followed.', min=0.001, max=60.0))


@dataclass(frozen=True)
class AdaptConfig:
    enabled: bool = field(default=True, metadata=describe(
        'Refit the controller model online from recent joint states and plans (kept only when better).'))
    period: float = field(default=300.0, metadata=describe('Seconds between controller refits.', min=0.1,
                                                          max=86400.0))
    window: float = field(default=60.0, metadata=describe(
        'Recent joint states a refit (controller or dynamics) is fitted and judged on (s).', min=0.1, max=3600.0))
    holdout: float = field(default=0.25, metadata=describe(
        'Newest fraction of the window that no refit is fitted on: the candidate is judged there.',
        min=0.05, max=0.9))
    margin: float = field(default=0.05, metadata=describe(
        'A refit replaces the current model only when its held-out rollout error is lower by this fraction.',
        min=0.0, max=0.99))
    starts: int = field(default=40, metadata=describe('Prediction starts scored on the held-out part.',
                                                      min=1, max=10_000))


@dataclass(frozen=True)
class PredictorConfig:
    """Parameters of the predictor node."""

    model: str = field(default='', metadata=describe(
        'Saved model directory (model.pt + metadata.json); empty = config/models/predictor.'))
    horizon: float = field(default=1.0, metadata=describe('Prediction horizon (s).', min=0.001, max=60.0))
    step: float = field(default=0.02, metadata=describe('Integration step of the rollout (s).',
                                                        min=1e-4, max=1.0))
    rate_hz: float = field(default=10.0, metadata=describe('Predictions published per second.',
                                                           min=0.1, max=1000.0))
    diagnostics_rate_hz: float = field(default=1.0, metadata=describe('Diagnostics per second.',
                                                                      min=0.01, max=100.0))
    cache_size: int = field(default=256, metadata=describe('Cached predictions.', min=1, max=1_000_000))
    refine: RefineConfig = RefineConfig()
    plan: PlanConfig = PlanConfig()
    adapt: AdaptConfig = AdaptConfig()

    def required_paths(self) -> dict[str, Path]:
        paths = {'model': Path(self.model) / 'metadata.json'} if self.model else {}
        if self.plan.enabled and self.plan.controller:
            paths['plan.controller'] = Path(self.plan.controller)
        return paths
