"""Remaining useful life from run-to-failure data in long format (unit, time, features).

A health index is a ridge regression of the features onto the normalized remaining life
``min(RUL, cap) / cap`` of the training units (1 while healthy, 0 at failure). For a unit in
service, a line is fitted to its recent health index and extrapolated to 0; resampling the
fit residuals (bootstrap) gives the spread of the failure time. While the index shows no
significant decline the direct estimate ``index × cap`` is used.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

RISK_LEVELS = ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')


@dataclass(frozen=True)
class RulEstimate:
    """Remaining useful life (same unit as the time column) with a central 80 % interval."""

    median: float
    low: float  # 10th percentile
    high: float  # 90th percentile
    health: float  # latest health index, 1 healthy .. 0 failed


def nasa_score(predicted: np.ndarray, true: np.ndarray) -> float:
    """PHM08 asymmetric score: late predictions (d > 0) cost more than early ones."""
    d = np.asarray(predicted, float) - np.asarray(true, float)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def trend_rul(time: np.ndarray, health: np.ndarray, samples: int = 200, seed: int = 0) -> RulEstimate | None:
    """Bootstrap a least-squares line through (time, health) to health 0; None without decline."""
    time, health = np.asarray(time, float), np.asarray(health, float)
    if len(time) < 3:
        return None
    slope, intercept = np.polyfit(time, health, 1)
    fitted = slope * time + intercept
    residuals = health - fitted
    rng = np.random.default_rng(seed)
    resampled = fitted + rng.choice(residuals, (samples, len(time)))
    centred = time - time.mean()
    slopes = resampled @ centred / (centred @ centred)
    if np.quantile(slopes, 0.9) >= 0.0:
        return None
    level = resampled.mean(axis=1) + slopes * (time[-1] - time.mean())
    with np.errstate(divide='ignore'):
        remaining = np.where(slopes < 0, np.maximum(level, 0.0) / -slopes, np.inf)
    current = float(np.clip(fitted[-1], 0.0, 1.0))
    return RulEstimate(*(float(q) for q in np.quantile(remaining, (0.5, 0.1, 0.9))), current)


def two_point_rul(time: np.ndarray, health: np.ndarray) -> float:
    """The naive baseline: the line through the first and last point of the window, to 0."""
    slope = (health[-1] - health[0]) / (time[-1] - time[0]) if time[-1] > time[0] else 0.0
    return float(max(health[-1], 0.0) / -slope) if slope < 0 else math.inf


def risk_level(estimate: RulEstimate, horizons: tuple[float, float, float]) -> str:
    """CRITICAL / HIGH / MEDIUM when the pessimistic RUL is below each horizon, else LOW."""
    for level, horizon in zip(('CRITICAL', 'HIGH', 'MEDIUM'), horizons):
        if estimate.low <= horizon:
            return level
    return 'LOW'


@dataclass
class RulModel:
    """Health-index regression plus the trend settings used to turn it into RUL."""

    features: tuple[str, ...]
    cap: float  # remaining life above which a unit counts as healthy
    window: float  # time span of the trend fit
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # intercept first
    ridge: float = 1e-3

    @classmethod
    def fit(cls, features: tuple[str, ...], units: np.ndarray, values: np.ndarray, rul: np.ndarray,
            cap: float | None = None, window: float | None = None, ridge: float = 1e-3) -> RulModel:
        """Fit on rows of training units with known ``rul``; cap defaults to the longest life, window to cap / 4."""
        lives = np.array([rul[units == u].max() for u in np.unique(units)])
        cap = float(lives.max()) if cap is None else cap
        window = cap / 4.0 if window is None else window
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        design = np.column_stack((np.ones(len(values)), np.nan_to_num((values - mean) / std)))
        target = np.minimum(rul, cap) / cap
        penalty = ridge * len(values) * np.diag([0.0] + [1.0] * len(features))
        weights = np.linalg.solve(design.T @ design + penalty, design.T @ target)
        return cls(tuple(features), cap, window, mean, std, weights, ridge)

    def health(self, values: np.ndarray) -> np.ndarray:
        """Health index per row (1 healthy .. 0 failure; not clipped)."""
        return self.weights[0] + np.nan_to_num((values - self.mean) / self.std) @ self.weights[1:]

    def estimate(self, time: np.ndarray, health: np.ndarray) -> RulEstimate:
        """RUL at ``time[-1]`` from the health index history of one unit."""
        recent = time >= time[-1] - self.window
        trend = trend_rul(time[recent], health[recent])
        if trend is not None:
            return RulEstimate(min(trend.median, self.cap), min(trend.low, self.cap),
                               min(trend.high, self.cap), trend.health)
        current = float(np.clip(np.median(health[recent][-5:]), 0.0, 1.0))
        return RulEstimate(current * self.cap, current * self.cap * 0.5, self.cap, current)

    def save(self, path: str | Path) -> None:
        document = asdict(self)
        document.update({k: getattr(self, k).tolist() for k in ('mean', 'std', 'weights')})
        Path(path).write_text(json.dumps(document, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RulModel:
        document = json.loads(Path(path).read_text())
        document['features'] = tuple(document['features'])
        for key in ('mean', 'std', 'weights'):
            document[key] = np.array(document[key])
        return cls(**document)
