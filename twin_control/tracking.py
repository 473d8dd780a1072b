"""Tracking deviation: measured joint positions against the controller's desired ones at the same instant.

The desired joint states (``plan/desired_joint_states``) arrive at the plan's rate; each measured
sample (the encoders') is compared with the desired positions interpolated at its stamp. A
deviation beyond ``bound`` on any joint for ``duration`` seconds is a tracking fault: a collision
pushing the arm off its path, a stuck or slipping encoder, a brake or gearbox that does not follow.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from twin_core.stamps import to_seconds
from twin_core.tracking import Desired, DesiredStates, deviation


@dataclass(frozen=True)
class Deviation:
    """Measured minus desired position (rad) per joint at ``stamp`` (ns), and whether it is a fault."""

    stamp: int
    deviation: np.ndarray
    exceeded: bool
    description: str

    @property
    def paired(self) -> bool:
        """False when no desired state was known at the stamp (the deviation is NaN)."""
        return bool(np.isfinite(self.deviation).all())


class TrackingMonitor:
    """Pairs measured with desired positions (joint arrays in one order) and judges the deviation.

    A measured sample is judged once the desired stream has passed its stamp, against the desired
    positions interpolated there, never extrapolated: the plan arriving later than the encoders
    must not read as the arm leaving its path. A sample the desired stream has not reached while
    ``max_gap`` of later measurements came in, or one inside a gap of the desired stream, is
    unpaired: its judgement says so and ends a deviation in progress (a tracking fault cannot
    outlive the plan stream; the stop it caused stays latched). Pairs are judged only ``settle``
    seconds after both streams (re)started: until the drivers' clock estimates have converged the
    stamps of two devices can disagree by their transport delays, which on a moving arm reads as a
    deviation; those samples count as unpaired.
    """

    def __init__(self, joint_names: tuple[str, ...], bound: float, duration: float, max_gap: float,
                 settle: float = 0.0) -> None:
        self.joint_names, self.bound, self.duration, self.max_gap = joint_names, bound, duration, max_gap
        self.settle = settle
        self._paired_since: int | None = None  # stamp of the first pair since a start or a gap
        self._last_pair: int | None = None
        self.latest: Deviation | None = None
        self.peak = np.zeros(len(joint_names))  # largest |deviation| seen per joint, rad
        self.unpaired = 0  # measured samples without desired states around them
        self._desired = DesiredStates(max_gap)
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._over_since: int | None = None

    def desired(self, stamp: int, positions: np.ndarray) -> list[Deviation]:
        """Add a desired sample; the measured samples it lets be judged, oldest first."""
        self._desired.add(stamp, positions)
        return self._judge()

    def measured(self, stamp: int, positions: np.ndarray) -> list[Deviation]:
        """Add a measured sample; the measured samples that can be judged now, oldest first.
        A stamp before the waiting ones (a replay restarted) drops them.
        """
        if self._pending and stamp < self._pending[-1][0]:
            self._pending.clear()
        self._pending.append((stamp, np.asarray(positions, dtype=float)))
        return self._judge()

    def _judge(self) -> list[Deviation]:
        judged = []
        newest = self._desired.newest
        while self._pending:
            stamp, positions = self._pending[0]
            if newest is not None and stamp <= newest:
                desired = self._desired.at(stamp)
                if desired is None:
                    judged.append(self._unpaired(stamp, 'no desired state at this instant'))
                elif self._settled(stamp):
                    judged.append(self._compare(stamp, positions, desired))
                else:
                    judged.append(self._unpaired(stamp, 'settling: the streams just (re)started', gap=False))
            elif to_seconds(self._pending[-1][0] - stamp) > self.max_gap:
                judged.append(self._unpaired(stamp, 'no desired state at this instant'))
            else:
                break
            self._pending.popleft()
        return judged

    def _settled(self, stamp: int) -> bool:
        """Whether the pairs have run for ``settle`` s; a gap of either stream restarts the count."""
        last, self._last_pair = self._last_pair, stamp
        if self._paired_since is None or last is None or not 0 <= to_seconds(stamp - last) <= self.max_gap:
            self._paired_since = stamp
        return to_seconds(stamp - self._paired_since) >= self.settle

    def _unpaired(self, stamp: int, reason: str, gap: bool = True) -> Deviation:
        self.unpaired += 1
        self._over_since = None
        if gap:
            self._paired_since = None
        self.latest = Deviation(stamp, np.full(len(self.joint_names), math.nan), False, reason)
        return self.latest

    def _compare(self, stamp: int, positions: np.ndarray, desired: Desired) -> Deviation:
        off = deviation(positions, desired)
        self.peak = np.maximum(self.peak, np.abs(off))
        over = np.flatnonzero(np.abs(off) > self.bound)
        if len(over) == 0:
            self._over_since = None
        elif self._over_since is None or stamp < self._over_since:
            self._over_since = stamp
        exceeded = self._over_since is not None and to_seconds(stamp - self._over_since) >= self.duration
        description = ', '.join(f'{self.joint_names[i]} off its path by {off[i]:+.3f} rad '
                                f'(> {self.bound:g})' for i in over)
        self.latest = Deviation(stamp, off, exceeded, description)
        return self.latest

    def values(self) -> dict[str, float | int]:
        """Diagnostic key/values: the latest deviation and the peak per joint (rad)."""
        latest = self.latest.deviation if self.latest is not None else np.full(len(self.joint_names), math.nan)
        return {**{f'deviation.{name}': float(value) for name, value in zip(self.joint_names, latest)},
                **{f'peak_deviation.{name}': float(value) for name, value in zip(self.joint_names, self.peak)},
                'unpaired_samples': self.unpaired}
