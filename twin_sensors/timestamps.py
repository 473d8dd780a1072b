"""Message stamps: receipt time, or the device's clock mapped onto ROS time by an online estimator.

The estimator models ``receive = offset + (1 + drift) * device + delay`` with a one-sided,
positive transport delay. It keeps the lower envelope of ``receive - device`` (the minimum per
``bin`` seconds of device time) over a sliding ``window``, fits a Theil–Sen line to it, rejects
envelope points far from that line (MAD test) and refines the line by least squares on the rest.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from twin_core.config import describe
from twin_core.stamps import from_seconds, to_seconds

MAD_TO_SIGMA = 1.4826
INLIER_SIGMAS = 3.0
INLIER_FLOOR = 20e-6  # s; envelope points this close to the line are never outliers
MIN_FIT_POINTS = 3
STEP_BINS = 4  # this many newest envelope points all off the line on one side: the clock stepped
MAX_DRIFT = 1e-3  # a slope beyond 1000 ppm is no oscillator's drift: the window holds a step


@dataclass(frozen=True)
class TimestampConfig:
    """How a driver stamps its messages."""

    mode: str = field(default='receipt', metadata=describe(
        "'receipt': ROS receive time; 'device': the device's clock mapped to ROS time.",
        choices=('receipt', 'device')))
    latency_compensation: float = field(default=0.0, metadata=describe(
        'Seconds subtracted from every stamp (known transport delay).', min=0.0, max=1.0))
    window: float = field(default=20.0, metadata=describe(
        'Seconds of device time the clock estimator fits over.', min=1.0, max=3600.0))
    bin: float = field(default=0.25, metadata=describe(
        'Seconds of device time per lower-envelope point.', min=0.001, max=60.0))
    reset_threshold: float = field(default=1.0, metadata=describe(
        'A device clock going back by more than this (s) restarts the estimator.', min=0.0, max=1e6))
    step_threshold: float = field(default=0.02, metadata=describe(
        'A lasting offset change larger than this (s) is a clock step: the fit restarts from it.',
        min=0.001, max=10.0))

    def __post_init__(self) -> None:
        if self.window < MIN_FIT_POINTS * self.bin:
            raise ValueError(f'window must hold at least {MIN_FIT_POINTS} bins')


@dataclass(frozen=True, slots=True)
class ClockFit:
    """A fitted line ``ros - device = intercept + slope * x``, x being device time since the estimator's origin."""

    intercept: float  # s
    slope: float  # ros seconds per device second, minus one
    residual: float  # RMS distance of the inlier envelope points from the line, s
    points: int
    outliers: int

    @property
    def drift_ppm(self) -> float:
        """Rate error of the device clock against ROS time (positive: the device clock runs fast)."""
        return (1.0 / (1.0 + self.slope) - 1.0) * 1e6


class ClockEstimator:
    """Online offset + drift estimate from (device time, receive time) pairs, both in seconds."""

    def __init__(self, window: float, bin_width: float, reset_threshold: float = 1.0,
                 step_threshold: float = 0.02) -> None:
        self.window = window
        self.bin_width = bin_width
        self.reset_threshold = reset_threshold
        self.step_threshold = step_threshold
        self.resets = 0
        self.steps = 0
        self.out_of_order = 0
        self.fit: ClockFit | None = None
        self._envelope: deque[tuple[float, float]] = deque()
        self._origin: float | None = None
        self._last_device = -math.inf
        self._bin = 0
        self._bin_min: tuple[float, float] | None = None

    def add(self, device_time: float, receive_time: float) -> None:
        """Feed one pair; a device clock that jumps back restarts the estimate.

        Both times must be finite (the decoders reject anything else): ``ValueError`` otherwise.
        """
        if not (math.isfinite(device_time) and math.isfinite(receive_time)):
            raise ValueError(f'non-finite clock pair ({device_time}, {receive_time})')
        if device_time < self._last_device:
            if self._last_device - device_time <= self.reset_threshold:
                self.out_of_order += 1
                return
            self.resets += 1
            self._restart()
        self._last_device = device_time
        if self._origin is None:
            self._origin = device_time
        index = math.floor((device_time - self._origin) / self.bin_width)
        if index != self._bin and self._bin_min is not None:
            self._close_bin()
        self._bin = index
        lag = receive_time - device_time
        if self._bin_min is None or lag < self._bin_min[1]:
            self._bin_min = (device_time - self._origin, lag)

    @property
    def newest(self) -> float:
        """The latest device time taken into the estimate."""
        return self._last_device

    def offset(self, device_time: float) -> float | None:
        """``ros - device`` at ``device_time``: the fitted line, or the smallest lag seen until a fit exists."""
        if self.fit is not None and self._origin is not None:
            return self.fit.intercept + self.fit.slope * (device_time - self._origin)
        lags = [lag for _, lag in self._envelope] + ([self._bin_min[1]] if self._bin_min else [])
        return min(lags) if lags else None

    def _restart(self) -> None:
        self._envelope.clear()
        self._origin, self._bin_min, self.fit = None, None, None
        self._last_device = -math.inf

    def _close_bin(self) -> None:
        assert self._bin_min is not None
        self._envelope.append(self._bin_min)
        self._bin_min = None
        newest = self._envelope[-1][0]
        while newest - self._envelope[0][0] > self.window:
            self._envelope.popleft()
        if len(self._envelope) < MIN_FIT_POINTS:
            return
        fit = fit_envelope(np.array(self._envelope))
        if self._stepped(fit):
            # The device clock (or the path delay) changed for good: forget what came before.
            self.steps += 1
            self._envelope = deque(list(self._envelope)[-STEP_BINS:])
            fit = fit_envelope(np.array(self._envelope))
        self.fit = fit

    def _stepped(self, fit: ClockFit) -> bool:
        if len(self._envelope) <= STEP_BINS:
            return False
        if abs(fit.slope) > MAX_DRIFT:
            return True
        recent = np.array(list(self._envelope)[-STEP_BINS:])
        residuals = recent[:, 1] - (fit.intercept + fit.slope * recent[:, 0])
        return bool(np.all(residuals > self.step_threshold) or np.all(residuals < -self.step_threshold))


def fit_envelope(points: np.ndarray) -> ClockFit:
    """Robust line through (x, y) envelope points: Theil–Sen, MAD outlier test, least squares on inliers."""
    x, y = points[:, 0], points[:, 1]
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    usable = dx > 0
    slope = float(np.median((y[j] - y[i])[usable] / dx[usable]))
    intercept = float(np.median(y - slope * x))
    residuals = y - (intercept + slope * x)
    spread = MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals))))
    inliers = np.abs(residuals) <= max(INLIER_SIGMAS * spread, INLIER_FLOOR)
    if inliers.sum() >= MIN_FIT_POINTS and np.ptp(x[inliers]) > 0:
        slope, intercept = (float(v) for v in np.polyfit(x[inliers], y[inliers], 1))
        residuals = y - (intercept + slope * x)
    rms = float(np.sqrt(np.mean(residuals[inliers] ** 2)))
    return ClockFit(intercept, slope, rms, int(inliers.sum()), int((~inliers).sum()))


class Stamper:
    """Turns a receive time (ns) and an optional device time (s) into a monotonic stamp (ns)."""

    def __init__(self, config: TimestampConfig) -> None:
        self.config = config
        self.estimator = ClockEstimator(config.window, config.bin, config.reset_threshold,
                                        config.step_threshold)
        self.without_device_time = 0
        self._latency_ns = from_seconds(config.latency_compensation)
        self._reference_ns: int | None = None
        self._last_ns = -1

    def stamp(self, receive_ns: int, device_time: float | None = None) -> int:
        """The stamp for a message received at ``receive_ns``; never earlier than the previous one + 1 ns."""
        stamp = receive_ns
        if self.config.mode == 'device':
            if device_time is None:
                self.without_device_time += 1
            else:
                stamp = self._map(receive_ns, device_time)
        stamp = max(stamp - self._latency_ns, self._last_ns + 1)
        self._last_ns = stamp
        return stamp

    def _map(self, receive_ns: int, device_time: float) -> int:
        if self._reference_ns is None:
            self._reference_ns = receive_ns
        self.estimator.add(device_time, to_seconds(receive_ns - self._reference_ns))
        offset = self.estimator.offset(device_time)
        assert offset is not None  # a pair was just added
        return self._reference_ns + from_seconds(device_time + offset)

    def values(self) -> dict[str, float | int | str]:
        """Diagnostic key/values of the clock mapping (offset = ROS minus device time, s)."""
        values: dict[str, float | int | str] = {'time_mode': self.config.mode}
        if self.config.mode != 'device':
            return values
        fit, estimator = self.estimator.fit, self.estimator
        if fit is not None and self._reference_ns is not None:
            offset = to_seconds(self._reference_ns) + (estimator.offset(estimator.newest) or 0.0)
            values |= {'clock_offset_s': f'{offset:.6f}', 'clock_drift_ppm': fit.drift_ppm,
                       'clock_residual_s': fit.residual, 'clock_outliers': fit.outliers}
        return values | {'clock_resets': estimator.resets, 'clock_steps': estimator.steps,
                         'clock_out_of_order': estimator.out_of_order,
                         'no_device_time': self.without_device_time}
