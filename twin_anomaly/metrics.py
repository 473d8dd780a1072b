"""Event-wise scoring of alarms against labelled anomaly intervals."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def intervals(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``[start, end)`` of the True runs of ``mask``."""
    edges = np.diff(np.concatenate(([0], np.asarray(mask, dtype=np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


@dataclass(frozen=True)
class EventScores:
    """Anomaly events found, alarms raised outside them and how late the found ones were."""

    events: int
    detected: int
    alarms: int  # alarmed stretches: inside an event window (true) or outside all (false)
    false_alarms: int  # alarmed stretches outside every event window
    false_alarm_seconds: float  # time in alarm outside every event window
    normal_hours: float
    pointwise_far: float  # fraction of normal frames in alarm
    pointwise_missed: float  # fraction of anomalous frames not in alarm
    pointwise_f1: float  # F1 of the per-frame alarm against the per-frame label
    delays: tuple[float, ...]  # s from each detected event's onset to its first alarm

    @property
    def recall(self) -> float:
        return self.detected / self.events if self.events else math.nan

    @property
    def missed_rate(self) -> float:
        return 1.0 - self.recall

    @property
    def precision(self) -> float:
        return (self.alarms - self.false_alarms) / self.alarms if self.alarms else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if not (p + r > 0):  # also NaN
            return 0.0 if self.events or self.alarms else math.nan
        return 2 * p * r / (p + r)

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / self.normal_hours if self.normal_hours else math.nan

    def summary(self) -> str:
        delay = (f'delay median {np.median(self.delays):.3f} s max {max(self.delays):.3f} s'
                 if self.delays else 'delay -')
        return (f'events {self.detected}/{self.events}  F1 {self.f1:.3f}  precision {self.precision:.3f}  '
                f'missed {self.missed_rate:.3f}  false alarms {self.false_alarms} '
                f'({self.false_alarms_per_hour:.2f}/h, {self.false_alarm_seconds:.1f} s in alarm)  |  pointwise '
                f'F1 {self.pointwise_f1:.3f} FAR {self.pointwise_far:.2e} MAR {self.pointwise_missed:.3f}  {delay}')


def event_scores(time: np.ndarray, labels: np.ndarray, alarms: np.ndarray, tolerance: float = 0.0,
                 ignore: np.ndarray | None = None) -> EventScores:
    """Score ``alarms`` (any-channel, per frame) against 0/1 ``labels``.

    A labelled event counts as detected when an alarm is on within its interval extended by
    ``tolerance`` s. Every stretch of alarm outside all such windows (and outside ``ignore``) is
    a false alarm, also the part of an alarm that outlasts its event's window.
    """
    time, labels, alarms = np.asarray(time, float), np.asarray(labels, bool), np.asarray(alarms, bool)
    ignore = np.zeros_like(labels) if ignore is None else np.asarray(ignore, bool)
    window = np.zeros_like(labels)
    delays = []
    events = intervals(labels)
    for start, end in events:
        stop = np.searchsorted(time, time[end - 1] + tolerance, side='right')
        window[start:stop] = True
        hits = np.flatnonzero(alarms[start:stop])
        if hits.size:
            delays.append(float(time[start + hits[0]] - time[start]))
    false = intervals(alarms & ~window & ~ignore)
    true = intervals(alarms & window & ~ignore)
    normal = ~labels & ~ignore
    anomalous = labels & ~ignore
    period = float(np.median(np.diff(time))) if len(time) > 1 else 0.0
    caught = int((alarms & anomalous).sum())
    in_alarm = int((alarms & ~ignore).sum())
    pointwise_f1 = 2.0 * caught / (in_alarm + anomalous.sum()) if in_alarm + anomalous.sum() else math.nan
    return EventScores(
        events=len(events), detected=len(delays), alarms=len(true) + len(false), false_alarms=len(false),
        false_alarm_seconds=sum(end - start for start, end in false) * period,
        normal_hours=normal.sum() * period / 3600.0,
        pointwise_far=float((alarms & normal).sum() / max(normal.sum(), 1)),
        pointwise_missed=float(1.0 - caught / anomalous.sum()) if anomalous.sum() else math.nan,
        pointwise_f1=float(pointwise_f1), delays=tuple(delays))
