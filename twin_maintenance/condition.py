"""Condition indicators per component from the twin's sensor channels, one row per time window.

Per joint (gearbox and motor): ``vibration`` — RMS of the effort's local-prediction residual
while the joint moves (gear-mesh disturbance grows with wear), ``friction_power`` — mean
mechanical power τ·q̇ (over whole task cycles it is the power lost to friction), both divided
by the joint's effort limit so that joints compare, and ``temperature`` — mean winding
temperature. Per sensor input: the fraction of frames in which it was missing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin_anomaly.features import FeatureStream
from twin_core.signals import joint_signal


@dataclass(frozen=True)
class JointChannels:
    """The channels of one joint and its effort limit (N·m)."""

    joint: str
    velocity: str
    effort: str
    temperature: str
    effort_limit: float


def joint_channels(joint: str, effort_limit: float) -> JointChannels:
    """The joint's velocity, effort and temperature signals."""
    velocity, effort, temperature = (joint_signal(joint, q).name for q in ('velocity', 'effort', 'temperature'))
    return JointChannels(joint, velocity, effort, temperature, effort_limit)


@dataclass(frozen=True)
class ConditionRow:
    """One window of one component: its end time and indicator values."""

    time: float
    component: str
    values: dict[str, float]


class ConditionWindows:
    """Accumulates frames and closes a window of indicators every ``window`` s of frame time."""

    def __init__(self, names: tuple[str, ...], joints: list[JointChannels], sensors: dict[str, str],
                 window: float = 60.0, onset_speed: float = 0.3, prediction_window: int = 10) -> None:
        """``sensors`` maps a sensor name to a channel that goes missing when it drops out; its
        missing fraction counts from its first value (a sensor still starting up has not dropped
        out), and is 1 for a window in which it never delivered one.
        """
        index = {name: j for j, name in enumerate(names)}
        self.joints, self.window, self.onset_speed = joints, window, onset_speed
        self.sensors = sensors
        self._velocity = [index[j.velocity] for j in joints]
        self._effort = [index[j.effort] for j in joints]
        self._temperature = [index[j.temperature] for j in joints]
        self._sensor = [index[channel] for channel in sensors.values()]
        self._limits = np.array([j.effort_limit for j in joints])
        self._stream = FeatureStream(len(joints), prediction_window)
        self._end: float | None = None
        self._sums = np.zeros((6, len(joints)))  # Σr², n moving, Στq̇, n, ΣT, n(T)
        self._missing = np.zeros(len(sensors))
        self._counted = np.zeros(len(sensors))  # frames since each sensor's first value
        self._seen = np.zeros(len(sensors), dtype=bool)
        self._frames = 0

    def update(self, time: np.ndarray, values: np.ndarray) -> list[ConditionRow]:
        """Add frames; returns the rows of every window that closed."""
        rows: list[ConditionRow] = []
        if self._end is None and len(time):
            self._end = float(time[0]) + self.window
        while len(time):
            end = self._end
            assert end is not None  # set above from the first frame
            edge = int(np.searchsorted(time, end))
            self._add(values[:edge])
            if edge == len(time):
                break
            rows += self._close(end)
            self._end = end + self.window
            time, values = time[edge:], values[edge:]
        return rows

    def _add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        velocity, effort, temperature = (values[:, self._velocity], values[:, self._effort],
                                         values[:, self._temperature])
        residual = self._stream.update(effort).residual
        moving = (np.abs(velocity) > self.onset_speed) & np.isfinite(residual)
        power = effort * velocity
        self._sums += [np.where(moving, residual ** 2, 0.0).sum(0), moving.sum(0),
                       np.nansum(power, 0), np.isfinite(power).sum(0),
                       np.nansum(temperature, 0), np.isfinite(temperature).sum(0)]
        absent = np.isnan(values[:, self._sensor])
        seen = np.logical_or.accumulate(~absent, axis=0) | self._seen
        self._missing += (absent & seen).sum(0)
        self._counted += seen.sum(0)
        self._seen = seen[-1].copy()
        self._frames += len(values)

    def _close(self, end: float) -> list[ConditionRow]:
        s = self._sums
        with np.errstate(invalid='ignore', divide='ignore'):
            vibration = np.sqrt(s[0] / s[1]) / self._limits
            friction = s[2] / s[3] / self._limits
            temperature = s[4] / s[5]
        rows = [ConditionRow(end, j.joint, {'vibration': float(vibration[i]), 'friction_power': float(friction[i]),
                                         'temperature': float(temperature[i])})
                for i, j in enumerate(self.joints)]
        with np.errstate(invalid='ignore', divide='ignore'):
            missing = np.where(self._counted > 0, self._missing / self._counted, 1.0)
        rows += [ConditionRow(end, sensor, {'missing_fraction': float(missing[i])})
                 for i, sensor in enumerate(self.sensors)]
        self._sums[:] = 0.0
        self._missing[:] = 0.0
        self._counted[:] = 0.0
        self._frames = 0
        return rows


def motor_condition(temperature: float, ambient: float, limit: float) -> float:
    """1 at ambient temperature, 0 at the winding limit."""
    return float(np.clip((limit - temperature) / (limit - ambient), 0.0, 1.0))
