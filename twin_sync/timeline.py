"""Resampling of N inputs onto a common, fixed-rate timeline that never waits for a late input.

Each input keeps a bounded, time-sorted buffer. A frame at time t takes, per input, the sample
stamped t (EXACT), interpolates between the samples around t (INTERPOLATED, per signal as the
sample's :class:`~twin_core.signals.Layout` says), or holds the last sample before t (HELD) until it is older than
the input's timeout (STALE). Frames run ``delay_ns`` behind the clock so slower inputs arrive.
"""
from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from twin_core.levels import Quality
from twin_core.stamps import to_seconds
from twin_sync.frame import Frame, FrameSample, Sample

INTERPOLATE = 'interpolate'
HOLD = 'hold'
MODES = (INTERPOLATE, HOLD)


@dataclass(frozen=True)
class TimelineInput:
    """How one input is resampled: ``mode`` is INTERPOLATE or HOLD."""

    mode: str
    timeout_ns: int


@dataclass
class InputCounters:
    """Per-input arrivals; ``out_of_order`` were older than the newest and still inserted."""

    accepted: int = 0
    out_of_order: int = 0
    too_old: int = 0
    duplicates: int = 0
    future: int = 0


class _Buffer:
    """Time-sorted samples of one input, bounded in count and in time behind the newest."""

    def __init__(self, window_ns: int, capacity: int) -> None:
        self._window = window_ns
        self._capacity = capacity
        self.stamps: deque[int] = deque()
        self.samples: deque[Sample] = deque()

    def insert(self, sample: Sample, counters: InputCounters) -> None:
        stamp = sample.stamp_ns
        if not self.stamps or stamp > self.stamps[-1]:
            self.stamps.append(stamp)
            self.samples.append(sample)
            while self.stamps[0] < stamp - self._window or len(self.stamps) > self._capacity:
                self.stamps.popleft()
                self.samples.popleft()
            counters.accepted += 1
            return
        position = bisect.bisect_left(self.stamps, stamp)
        if self.stamps[position] == stamp:
            counters.duplicates += 1
        elif stamp < self.stamps[-1] - self._window or (
                position == 0 and len(self.stamps) >= self._capacity):
            counters.too_old += 1
        else:
            self.stamps.insert(position, stamp)
            self.samples.insert(position, sample)
            if len(self.stamps) > self._capacity:
                self.stamps.popleft()
                self.samples.popleft()
            counters.accepted += 1
            counters.out_of_order += 1


class Timeline:
    """Buffers the inputs' samples and builds frames at multiples of ``period_ns``."""

    def __init__(self, inputs: Sequence[TimelineInput], *, period_ns: int, delay_ns: int,
                 window_ns: int, future_tolerance_ns: int, capacity: int = 4096) -> None:
        if any(spec.mode not in MODES for spec in inputs):
            raise ValueError(f'input modes must be one of {MODES}')
        self.inputs = tuple(inputs)
        self.counters = [InputCounters() for _ in inputs]
        self._buffers = [_Buffer(window_ns, capacity) for _ in inputs]
        self._period = period_ns
        self._delay = delay_ns
        self._window = window_ns
        self._tolerance = future_tolerance_ns
        self._last_frame: int | None = None

    def add(self, index: int, sample: Sample, now_ns: int) -> None:
        """Buffer a sample of input ``index`` (rejected if stamped beyond now + tolerance)."""
        if sample.stamp_ns > now_ns + self._tolerance:
            self.counters[index].future += 1
        else:
            self._buffers[index].insert(sample, self.counters[index])

    def newest_stamp(self, index: int) -> int | None:
        """Stamp of the newest buffered sample of input ``index``."""
        stamps = self._buffers[index].stamps
        return stamps[-1] if stamps else None

    def until_due_ns(self, now_ns: int, margin_ns: int) -> int:
        """Time from ``now_ns`` to ``margin_ns`` after the next grid time falls due (is
        ``delay`` old): a periodic tick started then publishes each frame as soon as it is due.
        """
        return (margin_ns - (now_ns - self._delay)) % self._period or self._period

    def since_due_ns(self, now_ns: int, margin_ns: int) -> int:
        """Time from ``margin_ns`` after the latest grid time fell due to ``now_ns``: how late a
        tick meant to come then is.
        """
        return (now_ns - self._delay - margin_ns) % self._period

    def next_frame(self, now_ns: int) -> Frame | None:
        """The frame at the latest grid time not after ``now_ns - delay``, once per grid time."""
        frames = self.next_frames(now_ns)
        return frames[-1] if frames else None

    def next_frames(self, now_ns: int, catch_up: bool = False) -> list[Frame]:
        """Like :meth:`next_frame`; with ``catch_up`` also the frames of the grid times since the
        last frame (as far back as the buffer window), for a clock that advances in steps.
        """
        latest = (now_ns - self._delay) // self._period * self._period
        if self._last_frame is not None and latest <= self._last_frame:
            return []
        first = latest
        if catch_up and self._last_frame is not None:
            first = max(self._last_frame + self._period, latest - self._window // self._period * self._period)
        self._last_frame = latest
        return [self.frame(stamp) for stamp in range(first, latest + 1, self._period)]

    def frame(self, t_ns: int) -> Frame:
        """Every input at time ``t_ns``."""
        samples = tuple(self._resample(spec, buffer, t_ns)
                        for spec, buffer in zip(self.inputs, self._buffers))
        aligned = [t_ns if s.quality != Quality.HELD else s.stamp_ns
                   for s in samples if s.quality.fresh]
        skew = to_seconds(max(aligned) - min(aligned)) if aligned else 0.0
        return Frame(t_ns, samples, skew, len(aligned) == len(samples))

    @staticmethod
    def _resample(spec: TimelineInput, buffer: _Buffer, t: int) -> FrameSample:
        after = bisect.bisect_right(buffer.stamps, t)
        if after == 0:
            return FrameSample(Quality.MISSING)
        before = buffer.samples[after - 1]
        if before.stamp_ns == t:
            return FrameSample(Quality.EXACT, t, before.layout, before.values)
        if spec.mode == INTERPOLATE and after < len(buffer.stamps):
            nxt = buffer.samples[after]
            if nxt.stamp_ns - before.stamp_ns <= spec.timeout_ns and nxt.layout == before.layout:
                weight = (t - before.stamp_ns) / (nxt.stamp_ns - before.stamp_ns)
                return FrameSample(Quality.INTERPOLATED, nxt.stamp_ns, before.layout,
                                   before.layout.interpolate(before.values, nxt.values, weight))
        quality = Quality.HELD if t - before.stamp_ns <= spec.timeout_ns else Quality.STALE
        return FrameSample(quality, before.stamp_ns, before.layout, before.values)
