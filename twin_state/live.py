"""Live mirror: each joint measurement becomes the twin's joint state at once.

The aligned output (``twin/joint_states``) is resampled on the synchronizer's timeline, a fixed
delay behind the clock so that every input has arrived. The live output trades that alignment for
latency: every message of the joint measurement stream is checked and put in the twin's joint
order (the URDF's), and published as it comes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LiveJoints:
    """One joint measurement in the twin's joint order; empty arrays where it had none."""

    stamp_ns: int
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


class LiveMirror:
    """Maps joint measurements onto the twin's joints; refuses what the twin cannot show."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = tuple(joint_names)
        self._order: dict[tuple[str, ...], np.ndarray] = {}
        self._newest_ns: int | None = None

    def update(self, stamp_ns: int, names: Sequence[str], position: Sequence[float],
               velocity: Sequence[float], effort: Sequence[float]) -> LiveJoints:
        """The measurement in the twin's order; :class:`ValueError` says why one is refused
        (a twin joint missing, arrays of the wrong length, non-finite values, an older stamp).
        """
        columns = self.arrange(names, position, velocity, effort)
        if self._newest_ns is not None and stamp_ns < self._newest_ns:
            raise ValueError(f'stamp {stamp_ns} ns is older than the last one ({self._newest_ns} ns)')
        self._newest_ns = stamp_ns
        return LiveJoints(stamp_ns, *columns)

    def arrange(self, names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                effort: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, velocity and effort in the twin's joint order (velocity and effort may be
        empty); :class:`ValueError` for a joint missing, a wrong length or a non-finite value.
        """
        order = self._order_of(tuple(names))
        columns = []
        for label, values in (('position', position), ('velocity', velocity), ('effort', effort)):
            array = np.asarray(values, dtype=float)
            if array.size == 0 and label != 'position':
                columns.append(array)
                continue
            if array.shape != (len(names),):
                raise ValueError(f'{label} has {array.size} values for {len(names)} names')
            if not np.isfinite(array).all():
                raise ValueError(f'non-finite {label}')
            columns.append(array[order])
        return columns[0], columns[1], columns[2]

    def _order_of(self, names: tuple[str, ...]) -> np.ndarray:
        order = self._order.get(names)
        if order is None:
            index = {name: i for i, name in enumerate(names)}
            missing = [name for name in self.joint_names if name not in index]
            if missing:
                raise ValueError(f'no value for joint(s) {", ".join(missing)}')
            order = np.array([index[name] for name in self.joint_names], dtype=int)
            if len(self._order) < 16:  # a few name lists at most; a stream of new ones is not cached
                self._order[names] = order
        return order
