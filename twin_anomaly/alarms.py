"""Online alarms of the detector node: micro-batches, suppression while the cell rests or the
twin's inputs are late, counts and latency.

The models describe a cell in production: in a commanded standstill repeated encoder values and
zero velocities look like faults, so while the cell rests only dropouts (``missing``) raise
alarms; alarms still clear. Likewise when the synchronizer could only hold an input it normally
interpolates (its samples came late: a loaded machine, a stalled process), the frame mixes old and
new values; alarms rising in such frames, or before the detector's window has refilled after them,
describe the twin's data path, not the cell, and are suppressed too (counted, and dropouts still
raise).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from twin_anomaly.anomaly import AnomalyEvent, AnomalyModel, OnlineDetector
from twin_core.channels import stack_rows
from twin_core.levels import Level, Quality
from twin_core.status import Status

MIN_SPEED_OVERRIDE = 0.05  # below this the cell is all but still
LATENCY_HISTORY = 1000  # decisions the latency statistics cover
ALWAYS_RAISED = 'missing'  # the method whose alarms rise at rest too


def at_rest(cell: Mapping[str, float]) -> bool:
    """True while the cell status (value name → value) reports a stop or a speed override near zero."""
    return cell.get('stopped', 0.0) > 0.5 or cell.get('speed_override', 1.0) < MIN_SPEED_OVERRIDE


class LateInputs:
    """Which inputs of a frame came too late to be aligned: those the synchronizer has been seen to
    interpolate (learned from the frames) and could only hold in this one.
    """

    def __init__(self) -> None:
        self.aligned: set[str] = set()

    def check(self, samples: Iterable[tuple[str, int]]) -> list[str]:
        """The late inputs among a frame's (topic, quality) samples."""
        late = []
        for topic, quality in samples:
            if quality == Quality.INTERPOLATED:
                self.aligned.add(topic)
            elif quality == Quality.HELD and topic in self.aligned:
                late.append(topic)
        return late


class AlarmStream:
    """Scores frames every ``batch_frames`` and passes on the events that are not suppressed."""

    def __init__(self, model: AnomalyModel, batch_frames: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.model, self._batch, self._clock = model, batch_frames, clock
        self.detector = OnlineDetector(model)
        self.frames = self.alarms = self.suppressed = self.late_frames = self.suppressed_late = 0
        self.latest: dict[str, AnomalyEvent] = {}  # the last raised alarm per sensor
        # frames after a late one whose scores still see it: prediction window, gap and debounce
        self._late_shadow = model.settings.window + model.settings.gap + model.settings.debounce
        self._since_late = self._late_shadow + 1
        self._pending: list[tuple[float, Mapping[str, float], float, bool, bool]] = []
        self._latency: deque[float] = deque(maxlen=LATENCY_HISTORY)

    def add(self, stamp: float, values: Mapping[str, float], resting: bool, late: bool = False) -> list[AnomalyEvent]:
        """Queue a frame (s, channel → value, cell at rest, an input late); the events to publish
        once a batch is full.
        """
        self.late_frames += late
        self._since_late = 0 if late else self._since_late + 1
        self._pending.append((stamp, values, self._clock(), resting, self._since_late <= self._late_shadow))
        if len(self._pending) < self._batch:
            return []
        pending, self._pending = self._pending, []
        times = np.array([p[0] for p in pending])
        _, events = self.detector.process(times, stack_rows(self.model.names, (p[1] for p in pending)))
        done = self._clock()
        self._latency.extend(done - p[2] for p in pending)
        self.frames += len(pending)
        resting_stamps = {p[0] for p in pending if p[3]}
        late_stamps = {p[0] for p in pending if p[4]}
        passed = []
        for event in events:
            if event.active and event.method != ALWAYS_RAISED:
                if event.stamp in resting_stamps:
                    self.suppressed += 1
                    continue
                if event.stamp in late_stamps:
                    self.suppressed_late += 1
                    continue
            if event.active:
                self.alarms += 1
                self.latest[event.sensor] = event
            passed.append(event)
        return passed

    def latency(self) -> tuple[float, float]:
        """Median and worst time (s) from a frame's arrival to its decision, over the recent frames."""
        latency = np.array(self._latency) if self._latency else np.zeros(1)
        return float(np.median(latency)), float(latency.max())

    def alarmed(self) -> set[str]:
        """The sensors with an alarm active now."""
        return {self.model.score_names[j].rsplit('/', 1)[0] for j in np.flatnonzero(self.detector.active)}

    def report(self) -> list[Status]:
        """The detector's counts and latency; per sensor that raised an alarm, its last one while active."""
        p50, worst = self.latency()
        reports = [Status('detector', Level.OK, f'{self.frames} frames, {self.alarms} alarms', {
            'frames': self.frames, 'alarms': self.alarms, 'suppressed_at_rest': self.suppressed,
            'frames_with_late_input': self.late_frames, 'suppressed_late_input': self.suppressed_late,
            'decision_latency_ms_p50': p50 * 1e3, 'decision_latency_ms_max': worst * 1e3})]
        alarmed = self.alarmed()
        for sensor, event in sorted(self.latest.items()):
            active = sensor in alarmed
            reports.append(Status(sensor, event.severity if active else Level.OK,
                                  event.description if active else 'normal',
                                  {'score': float(event.score), 'threshold': event.threshold}))
        return reports
