"""Tracking alarms: a joint off the controller's path, from the twin state's tracking error.

The twin state carries, per joint, the tracking error (measured − desired position at the state's
stamp, :mod:`twin_core.tracking`). An alarm rises on a joint when ``|error|`` stays above
``bound`` for ``duration`` s and clears, with hysteresis, once it stays below
``clear_ratio × bound`` for ``clear_duration`` s. A stuck or slipping encoder, a collision, a
brake or gearbox that does not follow show this way while the anomaly models may see nothing
unusual in any single signal. Without a plan (empty tracking error) the alarms clear: there is
no path to be off.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin_anomaly.anomaly import AnomalyEvent
from twin_anomaly.config import TrackingAlarmConfig
from twin_anomaly.hysteresis import HeldAlarm
from twin_core.levels import Level
from twin_core.status import Status

METHOD = 'tracking'


def sensor(joint: str) -> str:
    """The alarm's sensor: the joint's tracking-error signal (``joint_2.tracking_error``)."""
    return f'{joint}.tracking_error'


@dataclass
class _Joint:
    alarm: HeldAlarm
    latest: float = float('nan')  # rad
    peak: float = 0.0  # largest |error| seen, rad


class TrackingAlarms:
    """Per-joint tracking alarms with hysteresis over a stream of twin states."""

    def __init__(self, config: TrackingAlarmConfig) -> None:
        self.config = config
        self.joints: dict[str, _Joint] = {}
        self.alarms = self.states = self.rejected = 0
        self.rejection = ''  # why the last refused state was refused
        self._newest: float | None = None

    def update(self, stamp: float, joint_names: Sequence[str], error: Sequence[float]) -> list[AnomalyEvent]:
        """The alarm events of one twin state (s, its joint names, tracking error in rad: empty
        without a plan). A state that cannot be judged is counted and refused (``rejection``).
        """
        values = np.asarray(error, dtype=float)
        if len(values) and (len(values) != len(joint_names) or not np.isfinite(values).all()):
            self.rejected += 1
            self.rejection = (f'{len(values)} tracking errors for {len(joint_names)} joints'
                              if len(values) != len(joint_names) else 'non-finite tracking error')
            return []
        if self._newest is not None and stamp < self._newest:
            for joint in self.joints.values():  # time went back (a replay restarted)
                joint.alarm.restart_timers()
        self._newest = stamp
        self.states += 1
        if not len(values):
            return [self._clear(stamp, name, joint, 'no plan: tracking not judged')
                    for name, joint in self.joints.items() if joint.alarm.active]
        events = []
        for name, value in zip(joint_names, values.tolist()):
            if name not in self.joints:
                config = self.config
                self.joints[name] = _Joint(HeldAlarm(config.bound, config.duration, config.clear_ratio,
                                                     config.clear_duration))
            event = self._judge(stamp, name, self.joints[name], value)
            if event is not None:
                events.append(event)
        return events

    def _judge(self, stamp: float, name: str, joint: _Joint, value: float) -> AnomalyEvent | None:
        config, size = self.config, abs(value)
        joint.latest, joint.peak = value, max(joint.peak, size)
        change = joint.alarm.update(stamp, size)
        if change:
            self.alarms += 1
            return AnomalyEvent(stamp, sensor(name), METHOD, size, config.bound, Level.WARN,
                                f'{name} off its path by {value:+.4f} rad (> {config.bound:g} for '
                                f'{config.duration:g} s)', True)
        if change is False:
            return self._clear(stamp, name, joint, f'{name} back on its path ({value:+.4f} rad)')
        return None

    def _clear(self, stamp: float, name: str, joint: _Joint, description: str) -> AnomalyEvent:
        joint.alarm.clear()
        return AnomalyEvent(stamp, sensor(name), METHOD, abs(joint.latest), self.config.bound, Level.OK,
                            description, False)

    def report(self) -> Status:
        """The alarms' diagnostic status: active joints, latest and peak error per joint, counts."""
        active = [name for name, joint in self.joints.items() if joint.alarm.active]
        level = Level.WARN if active or self.rejection else Level.OK
        message = '; '.join(filter(None, (
            f'off the path: {", ".join(active)}' if active else '',
            f'refused: {self.rejection}' if self.rejection else ''))) or \
            (f'within {self.config.bound:g} rad of the plan' if self.joints else 'no plan seen')
        self.rejection = ''
        return Status('tracking', level, message, {
            'states': self.states, 'alarms': self.alarms, 'rejected': self.rejected,
            **{f'error.{name}': joint.latest for name, joint in self.joints.items()},
            **{f'peak_error.{name}': joint.peak for name, joint in self.joints.items()}})
