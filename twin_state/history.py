"""Bounded history of state vectors laid out by signal, with tf2-like lookup semantics.

Samples live in a numpy ring buffer (stamps in s, float64; one row of float64 values per stamp).
A lookup bisects the ring's two sorted halves (O(log n)) and interpolates per signal as its
:class:`~twin_core.signals.Layout` says: linearly, by SLERP for quaternions (x, y, z, w) or by
holding the earlier sample (discrete signals). Times outside the stored span raise
:class:`ExtrapolationError`; a prediction beyond the newest sample is a separate call
(:meth:`History.predict`) that reports its uncertainty.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin_core.signals import Layout


class HistoryError(Exception):
    """Base of the history's typed errors."""


class ExtrapolationError(HistoryError):
    """The requested time lies outside the stored span (or nothing is stored)."""


class OldDataError(HistoryError):
    """A sample is older than everything the full buffer still holds."""


class InvalidSampleError(HistoryError):
    """A sample has the wrong shape, a non-finite value (optional signals aside) or a non-unit
    quaternion.
    """


@dataclass(frozen=True)
class Extrapolation:
    """Values extrapolated beyond the newest sample by a local polynomial model."""

    stamp: float
    values: np.ndarray
    sigma: np.ndarray  # 1-σ standard error of each value
    horizon: float  # s beyond the newest sample


def polyfit_at(times: np.ndarray, values: np.ndarray, at: float, degree: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares polynomial fit of ``values`` (n × k) over ``times``, evaluated at ``at``.

    Returns the coefficients of the Taylor expansion around ``at`` (row d = d-th derivative / d!,
    shape (degree + 1) × k), the residual standard deviation per column and the unscaled
    coefficient covariance ((VᵀV)⁻¹). With ``at`` = the newest time this is a causal
    Savitzky–Golay filter that also handles irregular sampling.
    """
    vandermonde, scale = _scaled_vandermonde(times, at, degree)
    coefficients, *_ = np.linalg.lstsq(vandermonde, values, rcond=None)
    dof = max(len(times) - degree - 1, 1)
    residual = values - vandermonde @ coefficients
    sigma = np.sqrt(np.sum(residual ** 2, axis=0) / dof)
    powers = scale ** np.arange(degree + 1)
    covariance = np.linalg.inv(vandermonde.T @ vandermonde) / np.outer(powers, powers)
    return coefficients / powers[:, None], sigma, covariance


def slope_weights(times: np.ndarray, degree: int = 2) -> np.ndarray:
    """Weights ``w`` such that ``w @ values`` is the slope at ``times[-1]`` of the least-squares
    polynomial (of ``degree``, fewer with fewer samples) through ``values`` over ``times``: the
    first derivative of :func:`polyfit_at`, for any number of value columns at the cost of one
    small solve. Times must be distinct; one sample gives zero slope.
    """
    degree = min(degree, len(times) - 1)
    if degree < 1:
        return np.zeros(len(times))
    vandermonde, scale = _scaled_vandermonde(times, times[-1], degree)
    return np.linalg.solve(vandermonde.T @ vandermonde, vandermonde.T)[1] / scale


def _scaled_vandermonde(times: np.ndarray, at: float, degree: int) -> tuple[np.ndarray, float]:
    """Powers 0..``degree`` of (times - at) / scale, and the scale (the largest distance from
    ``at``): entries within [-1, 1], so the fits stay well conditioned at epoch-scale stamps.
    """
    tau = times - at
    scale = max(float(np.max(np.abs(tau))), 1e-12)
    return np.vander(tau / scale, degree + 1, increasing=True), scale


class History:
    """Ring buffer of (stamp, state vector) with typed errors, window and time-jump handling.

    ``capacity`` bounds the window in samples. Stamps are seconds. A sample older than the newest
    by more than ``jump_back`` s means the timeline restarted (a looped bag): the buffer is cleared
    and the jump counted. A late sample within that tolerance is inserted in order; if the full
    buffer has already dropped older samples it raises :class:`OldDataError`.
    """

    def __init__(self, layout: Layout, capacity: int = 60_000, jump_back: float = 1.0) -> None:
        if capacity < 2:
            raise ValueError('capacity must be at least 2')
        self.layout = layout
        self.capacity = capacity
        self.jump_back = jump_back
        self._t = np.zeros(capacity)
        self._v = np.zeros((capacity, len(layout)))
        self._end = 0  # next physical write index
        self._count = 0
        self.jumps = 0  # timeline restarts seen
        self.inserted = 0

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        self._end = self._count = 0

    @property
    def oldest(self) -> float:
        self._require_data()
        return float(self._t[(self._end - self._count) % self.capacity])

    @property
    def newest(self) -> float:
        self._require_data()
        return float(self._t[self._end - 1])

    def append(self, stamp: float, values: Sequence[float] | np.ndarray) -> None:
        """Add one sample (see the class docstring for late and restarted timelines)."""
        row = np.asarray(values, float)
        self._validate(np.array([stamp], float), row.reshape(1, -1))
        self._restart_on_jump(stamp)
        if self._count and stamp <= self._t[self._end - 1]:
            self._insert_late(stamp, row)
            return
        self._t[self._end] = stamp
        self._v[self._end] = row
        self._advance(1)

    def extend(self, stamps: Sequence[float] | np.ndarray, values: np.ndarray) -> None:
        """Add many samples; strictly increasing stamps after the newest take the fast path."""
        stamps = np.asarray(stamps, float)
        values = np.asarray(values, float)
        if values.ndim != 2 or len(stamps) != len(values):
            raise InvalidSampleError(f'expected {len(stamps)} rows of {len(self.layout)} values, '
                                     f'got shape {values.shape}')
        self._validate(stamps, values)
        if not len(stamps):
            return
        self._restart_on_jump(float(stamps[0]))
        in_order = bool(np.all(np.diff(stamps) > 0.0))
        if not in_order or (self._count and stamps[0] <= self._t[self._end - 1]):
            for stamp, row in zip(stamps, values):
                self.append(float(stamp), row)
            return
        stamps, values = stamps[-self.capacity:], values[-self.capacity:]
        first = min(len(stamps), self.capacity - self._end)
        self._t[self._end:self._end + first] = stamps[:first]
        self._v[self._end:self._end + first] = values[:first]
        rest = len(stamps) - first
        self._t[:rest] = stamps[first:]
        self._v[:rest] = values[first:]
        self._advance(len(stamps))

    def state_at(self, stamp: float = 0.0) -> np.ndarray:
        """The state vector at ``stamp`` (0 = the newest sample), interpolated per signal."""
        if stamp == 0.0:
            self._require_data()
            return self._v[self._end - 1].copy()
        before = self._index_at_or_before(stamp)
        t0 = self._t[before]
        if t0 == stamp:
            return self._v[before].copy()
        after = (before + 1) % self.capacity
        return self.layout.interpolate(self._v[before], self._v[after],
                                       (stamp - t0) / (self._t[after] - t0))

    def window(self, paths: Sequence[str], start: float, end: float, max_samples: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """Stamps and values (rows × len(columns of paths)) of the samples in [start, end].

        ``max_samples`` > 0 decimates evenly to at most that many rows (keeping the last one).
        """
        columns = self.layout.columns_of(paths)
        if not self._count:
            return np.zeros(0), np.zeros((0, len(columns)))
        rows = np.arange(self._search(start, 'left'), self._search(end, 'right'))
        if 0 < max_samples < len(rows):
            rows = rows[np.round(np.linspace(0, len(rows) - 1, max_samples)).astype(int)]
        rows = (self._end - self._count + rows) % self.capacity
        return self._t[rows], self._v[np.ix_(rows, np.asarray(columns))]

    def derivatives(self, paths: Sequence[str], stamp: float = 0.0, points: int = 25,
                    degree: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """First and second time derivatives of ``paths`` at ``stamp`` (0 = newest).

        A causal local polynomial fit (degree ≥ 2) over the ``points`` samples up to ``stamp``.
        """
        if degree < 2:
            raise ValueError('degree must be at least 2 for a second derivative')
        coefficients, _, _ = self._fit(paths, stamp, points, degree, at=None)
        return coefficients[1], 2.0 * coefficients[2]

    def predict(self, paths: Sequence[str], stamp: float, points: int = 15, degree: int = 2
                ) -> Extrapolation:
        """Extrapolate continuous ``paths`` to ``stamp`` ≥ the newest sample, with std. errors."""
        newest = self.newest
        if stamp < newest:
            raise ExtrapolationError(f'{stamp:.6f} is not after the newest sample {newest:.6f}: '
                                     'use state_at')
        coefficients, sigma, covariance = self._fit(paths, 0.0, points, degree, at=stamp)
        return Extrapolation(stamp, coefficients[0], sigma * math.sqrt(covariance[0, 0]),
                             stamp - newest)

    def _fit(self, paths: Sequence[str], stamp: float, points: int, degree: int,
             at: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if points <= degree + 1:
            raise ValueError('points must exceed degree + 1')
        self._require_data()
        columns = self.layout.columns_of(paths)
        last = self._end - 1 if stamp == 0.0 else self._index_at_or_before(stamp)
        age = (last - (self._end - self._count)) % self.capacity + 1  # samples up to `last`
        if age < points:
            raise ExtrapolationError(f'{age} samples stored up to that time, {points} needed')
        rows = np.arange(last - points + 1, last + 1) % self.capacity
        times = self._t[rows]
        return polyfit_at(times, self._v[np.ix_(rows, np.asarray(columns))], times[-1] if at is None else at,
                          degree)

    def _index_at_or_before(self, stamp: float) -> int:
        """Physical index of the last sample with t ≤ stamp; raises outside the stored span."""
        self._require_data()
        start = (self._end - self._count) % self.capacity
        oldest, newest = self._t[start], self._t[self._end - 1]
        if not oldest <= stamp <= newest:
            raise ExtrapolationError(
                f'lookup at {stamp:.6f} outside the stored span [{oldest:.6f}, {newest:.6f}] '
                f'({"before the oldest" if stamp < oldest else "after the newest"} sample)')
        return (start + self._search(stamp, 'right') - 1) % self.capacity

    def _search(self, stamp: float, side: Literal['left', 'right']) -> int:
        """Logical position of ``stamp`` (np.searchsorted semantics) over the two sorted halves."""
        start = (self._end - self._count) % self.capacity
        older = min(self._count, self.capacity - start)  # [start, start + older) then [0, rest)
        position = int(self._t[start:start + older].searchsorted(stamp, side))
        if position < older or older == self._count:
            return position
        return older + int(self._t[:self._count - older].searchsorted(stamp, side))

    def _validate(self, stamps: np.ndarray, values: np.ndarray) -> None:
        if values.ndim != 2 or values.shape[1] != len(self.layout):
            raise InvalidSampleError(f'expected {len(self.layout)} values per sample, '
                                     f'got shape {values.shape[1:]}')
        if not math.isfinite(float(stamps.sum()) + float(values.sum())):  # fast path: all finite
            required = self.layout.required
            bad = [self.layout.columns[i] for i in required[~np.isfinite(values[:, required]).all(axis=0)]]
            if bad or not np.isfinite(stamps).all():
                raise InvalidSampleError(f'non-finite stamp or values in {bad or ["stamp"]}')
        for column in self.layout.quaternions:
            quaternions = values[:, column:column + 4]
            if np.any(np.abs(np.einsum('ij,ij->i', quaternions, quaternions) - 1.0) > 2e-3):
                raise InvalidSampleError(f'{self.layout.columns[column][:-2]}: '
                                         'quaternion not normalized')

    def _restart_on_jump(self, stamp: float) -> None:
        if self._count and stamp < self._t[self._end - 1] - self.jump_back:
            self.clear()
            self.jumps += 1

    def _insert_late(self, stamp: float, row: np.ndarray) -> None:
        start = (self._end - self._count) % self.capacity
        if stamp < self._t[start]:
            if self._count == self.capacity:
                raise OldDataError(f'sample at {stamp:.6f} is older than the window '
                                   f'(oldest kept: {self._t[start]:.6f})')
            position = start
        else:
            position = self._index_at_or_before(stamp)
            if self._t[position] == stamp:
                self._v[position] = row  # same stamp: the newer report wins
                return
            position = (position + 1) % self.capacity
        capacity = self.capacity
        shifted = np.arange(position, position + (self._end - position) % capacity) % capacity
        if self._count == self.capacity:  # full: drop the oldest by shifting the front back
            shifted = np.arange(start + 1, start + (position - start) % capacity) % capacity
            self._t[shifted - 1] = self._t[shifted]
            self._v[shifted - 1] = self._v[shifted]
            position = (position - 1) % self.capacity
        else:
            self._t[(shifted + 1) % self.capacity] = self._t[shifted]
            self._v[(shifted + 1) % self.capacity] = self._v[shifted]
            self._advance(1)
        self._t[position] = stamp
        self._v[position] = row
        self.inserted += 1

    def _advance(self, count: int) -> None:
        self._end = (self._end + count) % self.capacity
        self._count = min(self._count + count, self.capacity)

    def _require_data(self) -> None:
        if not self._count:
            raise ExtrapolationError('the history is empty')
