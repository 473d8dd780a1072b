"""The predictor's input: joint states in the model's joint order, and the health of the feed."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twin_core.levels import Level


def joint_vectors(names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                  effort: Sequence[float], joints: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, qd, tau) of a joint state in ``joints`` order; ValueError when a joint or a field is missing."""
    names = list(names)
    try:
        order = [names.index(name) for name in joints]
    except ValueError:
        raise ValueError(f'joint states lack some of {list(joints)}') from None
    if not (len(position) == len(velocity) == len(effort) == len(names)):
        raise ValueError('joint states need position, velocity and effort for every joint')
    q, qd, tau = (np.asarray(values, dtype=float)[order] for values in (position, velocity, effort))
    return q, qd, tau


def feed_health(error: str, predicting: bool) -> tuple[Level, str]:
    """WARN with the last input ``error``, or while no prediction was made yet; else OK."""
    if error:
        return Level.WARN, error
    return (Level.OK, 'predicting') if predicting else (Level.WARN, 'waiting for twin/joint_states')
