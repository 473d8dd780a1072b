"""Per-channel streaming features of a multivariate series, computed block by block.

A batch is one block, a live stream a sequence of small blocks: both give identical values
because every feature carries its state across blocks. Features are indexed by frame, never
by wall-clock time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def run_lengths(mask: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """Consecutive True rows ending at each row of ``mask`` (n, k), as floats; ``carry`` continues
    a run (it started ``carry`` rows before the first).
    """
    index = np.arange(1.0, len(mask) + 1)[:, None]
    last_false = np.empty((len(mask) + 1, mask.shape[1]))  # row of the last False; row 0 = −carry
    last_false[0] = -np.asarray(carry)
    np.copyto(last_false[1:], index)
    np.copyto(last_false[1:], -np.inf, where=mask)
    np.maximum.accumulate(last_false, axis=0, out=last_false)
    return index - last_false[1:]


def prediction_weights(window: int, gap: int = 0) -> np.ndarray:
    """Weights of the least-squares line through ``window`` samples ending ``gap + 1`` steps
    before the predicted one (a step then shows in the residual for ``gap + 1`` frames).
    """
    k = np.arange(-window - gap, -gap, dtype=float)
    design = np.column_stack((np.ones(window), k))
    return np.linalg.pinv(design)[0]  # intercept at k = 0


@dataclass(frozen=True)
class Features:
    """Per frame and channel: prediction residual, flat-run and missing-run lengths (frames, as floats).

    A channel's missing run starts counting once it has delivered a value: an input that has
    not started yet is not a dropout.
    """

    residual: np.ndarray
    flat: np.ndarray
    missing: np.ndarray


class FeatureStream:
    """Residual of a local linear prediction, runs of repeated values and runs of NaN."""

    def __init__(self, n_channels: int, window: int, gap: int = 0) -> None:
        self.window = window
        self._weights = prediction_weights(window, gap)
        self._history = np.full((window + gap, n_channels), np.nan)
        self._flat = np.zeros(n_channels)
        self._missing = np.zeros(n_channels)
        self._seen = np.zeros(n_channels, dtype=bool)

    def update(self, values: np.ndarray) -> Features:
        values = np.asarray(values, dtype=float)
        joined = np.vstack((self._history, values))
        windows = sliding_window_view(joined[:len(values) - 1 + self.window], self.window, axis=0)  # (n, k, w)
        residual = values - windows @ self._weights
        flat = run_lengths(values == joined[len(self._history) - 1:-1], self._flat)
        absent = np.isnan(values)
        seen = np.logical_or.accumulate(~absent, axis=0) | self._seen
        missing = run_lengths(absent & seen, self._missing)
        self._history = joined[len(values):]
        self._flat, self._missing, self._seen = flat[-1].copy(), missing[-1].copy(), seen[-1].copy()
        return Features(residual, flat, missing)


def stretches(time: np.ndarray, gap_steps: float) -> list[tuple[int, int]]:
    """Index ranges ``[start, end)`` of the contiguous stretches of ``time``: a new one starts where
    time goes back or jumps ahead by more than ``gap_steps`` median steps (another file, experiment
    or recording).
    """
    time = np.asarray(time, dtype=float)
    if len(time) < 2:
        return [(0, len(time))] if len(time) else []
    steps = np.diff(time)
    forward = steps[steps > 0]
    limit = gap_steps * float(np.median(forward)) if forward.size else np.inf
    breaks = np.flatnonzero((steps <= 0) | (steps > limit)) + 1
    edges = [0, *breaks.tolist(), len(time)]
    return list(zip(edges[:-1], edges[1:]))
