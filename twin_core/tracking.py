"""The controller's desired joint states as a stream to read at any instant.

Desired joint states (``plan/desired_joint_states``: position and velocity per joint) arrive at
the plan's rate, not at the instants a measurement or a twin state is taken. :class:`DesiredStates`
keeps the recent ones and gives the desired values at another stamp: interpolated between the
samples around it, or carried on from the newest for up to ``max_gap`` (along its desired
velocity where the stream has one, else held); never across a gap wider than that (the plan
stream stopped or is stale). The tracking deviation is measured − desired position
at one stamp.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from twin_core.stamps import to_seconds

DESIRED_KEPT = 256  # desired samples kept to interpolate between (2.5 s at 100 Hz)


@dataclass(frozen=True)
class Desired:
    """Desired position (rad) and velocity (rad/s) per joint at one stamp; velocity NaN when
    the stream carries none.
    """

    position: np.ndarray
    velocity: np.ndarray


class DesiredStates:
    """The recent desired joint states (joint arrays in one order), read at any stamp (ns)."""

    def __init__(self, max_gap: float, kept: int = DESIRED_KEPT) -> None:
        self.max_gap = max_gap  # s
        self._samples: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=kept)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def newest(self) -> int | None:
        """Stamp (ns) of the newest desired sample, None before the first."""
        return self._samples[-1][0] if self._samples else None

    def add(self, stamp: int, position: np.ndarray, velocity: np.ndarray | None = None) -> None:
        """One desired sample; a repeated or late stamp is ignored, one before everything kept
        (a replay restarted) starts over.
        """
        position = np.asarray(position, dtype=float)
        velocity = np.full(len(position), np.nan) if velocity is None or not len(velocity) else \
            np.asarray(velocity, dtype=float)
        if position.shape != velocity.shape:
            raise ValueError(f'{len(velocity)} desired velocities for {len(position)} positions')
        samples = self._samples
        if samples and stamp <= samples[-1][0]:
            if stamp >= samples[0][0]:
                return
            samples.clear()
        samples.append((stamp, position, velocity))

    def at(self, stamp: int) -> Desired | None:
        """The desired state at ``stamp`` (ns); None before the first sample, across a gap wider
        than ``max_gap`` or more than ``max_gap`` after the newest sample (up to that, the newest
        position advanced by its velocity, or held where the velocity is unknown).
        """
        samples = self._samples
        if not samples or stamp < samples[0][0]:
            return None
        for index in range(len(samples) - 1, -1, -1):
            t0, p0, v0 = samples[index]
            if t0 <= stamp:
                if index + 1 == len(samples):
                    ahead = to_seconds(stamp - t0)
                    if ahead > self.max_gap:
                        return None
                    return Desired(p0 + np.where(np.isfinite(v0), v0, 0.0) * ahead, v0)
                t1, p1, v1 = samples[index + 1]
                if to_seconds(t1 - t0) > self.max_gap:
                    return None
                fraction = (stamp - t0) / (t1 - t0)
                return Desired(p0 + (p1 - p0) * fraction, v0 + (v1 - v0) * fraction)
        return None


def deviation(measured: np.ndarray, desired: Desired) -> np.ndarray:
    """Tracking deviation per joint: measured − desired position (rad), both at one stamp."""
    return np.asarray(measured, dtype=float) - desired.position
