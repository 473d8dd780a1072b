"""Health of the synchronizer between two diagnostics reports: per input its rate, age, quality and
rejected samples; the output's rate and stamp skew (no ROS types).
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from twin_core.levels import Level, Quality
from twin_core.stamps import from_seconds, to_seconds
from twin_core.status import Status
from twin_sync.approximate import ApproximateStats
from twin_sync.frame import Frame
from twin_sync.sync_config import APPROXIMATE, SyncConfig
from twin_sync.timeline import InputCounters, Timeline

SKEW_HISTORY = 1000  # frames the skew percentiles cover


class SyncMonitor:
    """Counts samples received and frames published; judges inputs and output when a report is made."""

    def __init__(self, config: SyncConfig) -> None:
        self._config = config
        self._received = [0] * len(config.topics)
        self._reported = list(self._received)  # received at the last report
        self.frames = self._frames_reported = 0
        self._skews: deque[float] = deque(maxlen=SKEW_HISTORY)

    def received(self, index: int) -> None:
        self._received[index] += 1

    def published(self, frame: Frame) -> None:
        self.frames += 1
        self._skews.append(frame.max_skew)

    def report(self, timeline: Timeline, approximate: ApproximateStats, now_ns: int) -> list[Status]:
        """One status per input and one of the output; rates count since the last report.

        Inputs are judged at ``now - delay``: in timeline mode by the timeline's frame there,
        in approximate mode (no timeline kept) by each input's newest stamp: HELD while within
        the input's timeout, then STALE, MISSING before any; counters from the policy.
        """
        config = self._config
        judged = now_ns - from_seconds(config.delay)
        if config.mode == APPROXIMATE:
            newest_stamps = list(approximate.newest) or [None] * len(config.topics)
            all_counters = [InputCounters(out_of_order=o, duplicates=d) for o, d in zip(
                approximate.out_of_order, approximate.duplicate_stamps)]
            qualities = [Quality.MISSING if newest is None else Quality.HELD
                         if judged - newest <= from_seconds(timeout) else Quality.STALE
                         for newest, timeout in zip(newest_stamps, config.timeouts)]
        else:
            newest_stamps = [timeline.newest_stamp(index) for index in range(len(config.topics))]
            all_counters = list(timeline.counters)
            qualities = [sample.quality for sample in timeline.frame(judged).samples]
        reports = []
        for index, topic in enumerate(config.topics):
            counters, newest, quality = all_counters[index], newest_stamps[index], qualities[index]
            values: dict[str, Any] = {
                'rate_hz': self._received[index] - self._reported[index],
                'age_s': 'never' if newest is None else to_seconds(now_ns - newest),
                'quality': quality.name, 'out_of_order': counters.out_of_order, 'too_old': counters.too_old,
                'duplicates': counters.duplicates, 'future': counters.future}
            if config.mode == APPROXIMATE:
                values.update(unmatched_dropped=approximate.dropped[index],
                              bound_violations=approximate.bound_violations[index])
            reports.append(Status(topic, Level.OK if quality.fresh else Level.WARN,
                                  'fresh' if quality.fresh else quality.name.lower(), values, topic))
        self._reported = list(self._received)
        p50, p99 = np.percentile(self._skews, [50, 99]) if self._skews else (0.0, 0.0)
        reports.append(Status('output', Level.OK if self.frames > self._frames_reported else Level.WARN, config.mode, {
            'rate_hz': self.frames - self._frames_reported, 'max_skew_p50_s': float(p50),
            'max_skew_p99_s': float(p99), 'sets': approximate.sets, 'frames': self.frames}))
        self._frames_reported = self.frames
        return reports
