"""Remaining useful life from run-to-failure data in long format (unit, time, features, wear).

The condition index is ``1 - ŵ``: ``ŵ`` is a ridge regression of the features onto the training
units' normalized wear state (0 new .. 1 failure threshold), so a new unit reads about 1 and a
failing one about 0 whatever the time scale of the training runs. The same indicator answers
differently on different components (a joint's speed sets how much of its gear-mesh vibration
the indicator sees), so each training unit also gets a linear recalibration of ``ŵ`` (shrunk
towards none); units not seen in training use the pooled regression. For a unit in service a line
is fitted to its recent index and extrapolated to 0 on the unit's own time: the spread of the
failure time comes from resampling the fit residuals (bootstrap) and from the index's error
(its residual spread on the training units, the uncertainty of where failure reads). While the
index shows no significant decline the RUL is beyond the horizon (infinite) and the risk
follows the index level alone.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from twin_core.levels import Risk

RATINGS = (Risk.CRITICAL, Risk.HIGH, Risk.MEDIUM)  # the risks above LOW, in the order of their horizons and levels


@dataclass(frozen=True)
class RulEstimate:
    """Remaining useful life (same unit as the time column) with a central 80 % interval;
    ``math.inf`` when no decline is measurable (beyond the horizon).
    """

    median: float
    low: float  # 10th percentile
    high: float  # 90th percentile
    condition: float  # latest condition index, 1 new .. 0 failed


def rmse(predicted: np.ndarray, true: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Root mean square error, optionally weighted per prediction."""
    return float(np.sqrt(np.average((np.asarray(predicted, float) - true) ** 2, weights=weights)))


def nasa_score(predicted: np.ndarray, true: np.ndarray) -> float:
    """PHM08 asymmetric score: late predictions (d > 0) cost more than early ones."""
    d = np.asarray(predicted, float) - np.asarray(true, float)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def trend_rul(time: np.ndarray, condition: np.ndarray, threshold_std: float = 0.0, samples: int = 200,
              seed: int = 0) -> RulEstimate | None:
    """Bootstrap a least-squares line through (time, condition) to a failure threshold drawn from
    N(0, ``threshold_std``); None without a significant decline.
    """
    time, condition = np.asarray(time, float), np.asarray(condition, float)
    if len(time) < 3:
        return None
    slope, intercept = np.polyfit(time, condition, 1)
    fitted = slope * time + intercept
    residuals = condition - fitted
    rng = np.random.default_rng(seed)
    resampled = fitted + rng.choice(residuals, (samples, len(time)))
    centred = time - time.mean()
    slopes = resampled @ centred / (centred @ centred)
    if np.quantile(slopes, 0.9) >= 0.0:
        return None
    level = resampled.mean(axis=1) + slopes * (time[-1] - time.mean())
    threshold = rng.normal(0.0, threshold_std, samples)
    with np.errstate(divide='ignore'):
        remaining = np.where(slopes < 0, np.maximum(level - threshold, 0.0) / -slopes, np.inf)
    current = float(np.clip(fitted[-1], 0.0, 1.0))
    median, low, high = (float(q) for q in np.quantile(remaining, (0.5, 0.1, 0.9)))
    return RulEstimate(median, low, high, current)


def two_point_rul(time: np.ndarray, condition: np.ndarray) -> float:
    """The naive baseline: the line through the first and last point of the window, to 0."""
    slope = (condition[-1] - condition[0]) / (time[-1] - time[0]) if time[-1] > time[0] else 0.0
    return float(max(condition[-1], 0.0) / -slope) if slope < 0 else math.inf


def risk_level(estimate: RulEstimate, horizons: tuple[float, float, float],
               levels: tuple[float, float, float]) -> Risk:
    """CRITICAL / HIGH / MEDIUM when the pessimistic RUL is below the horizon or the condition
    index at or below the level of that rating (the worse of both), else LOW.
    """
    for rating, horizon, level in zip(RATINGS, horizons, levels):
        if estimate.low <= horizon or estimate.condition <= level:
            return rating
    return Risk.LOW


@dataclass
class RulModel:
    """Condition-index regression plus the trend settings used to turn it into RUL."""

    features: tuple[str, ...]
    window: float  # time span of the trend fit
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # intercept first; they predict the wear state
    calibration: dict[str, list[float]]  # unit -> (offset, gain) applied to the pooled wear estimate
    index_std: float  # RMS error of the calibrated condition index on the training rows
    ridge: float = 1e-3

    @classmethod
    def fit(cls, features: tuple[str, ...], units: np.ndarray, values: np.ndarray, wear: np.ndarray,
            window: float = math.inf, ridge: float = 1e-3) -> RulModel:
        """Fit on rows of training units with a known wear state (0 new .. 1 failure threshold);
        the index error is the RMS residual of the calibrated index (where failure reads).
        """
        units, values, wear = np.asarray(units).astype(str), np.asarray(values, float), np.asarray(wear, float)
        if not len(values) or not len(units) == len(values) == len(wear):
            raise ValueError(f'{len(units)} units, {len(values)} rows of features, {len(wear)} wear values')
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        design = np.column_stack((np.ones(len(values)), np.nan_to_num((values - mean) / std)))
        penalty = ridge * len(values) * np.diag([0.0] + [1.0] * len(features))
        weights = np.linalg.solve(design.T @ design + penalty, design.T @ wear)
        pooled, calibration, residual = design @ weights, {}, []
        for unit in np.unique(units):
            rows = units == unit
            local = np.column_stack((np.ones(rows.sum()), pooled[rows]))
            shrink = ridge * rows.sum() * np.eye(2)
            offset, gain = np.linalg.solve(local.T @ local + shrink, local.T @ wear[rows] + shrink @ [0.0, 1.0])
            calibration[str(unit)] = [float(offset), float(gain)]
            residual.append(local @ [offset, gain] - wear[rows])
        return cls(tuple(features), float(window), mean, std, weights, calibration,
                   float(np.sqrt(np.mean(np.square(np.concatenate(residual))))), ridge)

    def condition(self, values: np.ndarray, unit: str | None = None) -> np.ndarray:
        """Condition index per row of ``unit`` (1 new .. 0 failure; not clipped); NaN where a
        feature is missing. Units not seen in training get the pooled index.
        """
        offset, gain = self.calibration.get(unit, (0.0, 1.0)) if unit is not None else (0.0, 1.0)
        return 1.0 - offset - gain * (self.weights[0] + ((values - self.mean) / self.std) @ self.weights[1:])

    def estimate(self, time: np.ndarray, condition: np.ndarray) -> RulEstimate:
        """RUL at the last finite index of one unit's history (time, condition)."""
        finite = np.isfinite(condition)
        if not finite.any():
            raise ValueError('no finite condition index to estimate from')
        time, condition = np.asarray(time, float)[finite], np.asarray(condition, float)[finite]
        recent = time >= time[-1] - self.window
        trend = trend_rul(time[recent], condition[recent], self.index_std)
        if trend is not None:
            return trend
        current = float(np.clip(np.median(condition[recent][-5:]), 0.0, 1.0))
        return RulEstimate(math.inf, math.inf, math.inf, current)

    def save(self, path: str | Path) -> None:
        document = asdict(self)
        document.update({k: getattr(self, k).tolist() for k in ('mean', 'std', 'weights')})
        Path(path).write_text(json.dumps(document, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RulModel:
        document = json.loads(Path(path).read_text())
        expected = {f.name for f in fields(cls)}
        if not isinstance(document, dict) or not {f.name for f in fields(cls) if f.name != 'ridge'} <= set(document) \
                or not set(document) <= expected:
            keys = sorted(document) if isinstance(document, dict) else type(document).__name__
            raise ValueError(f'{path}: not a RUL model of this version (keys {keys}, expected {sorted(expected)}); '
                             'retrain it with `twin_rul train`')
        document['features'] = tuple(document['features'])
        for key in ('mean', 'std', 'weights'):
            document[key] = np.array(document[key], float)
        return cls(**document)
