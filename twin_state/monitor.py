"""Health of the state node between two diagnostics reports: the history and its ingest rate,
rejected visualization input and the freshness of the inputs, refused desired joint states among
them (no ROS types).
"""
from __future__ import annotations

from twin_core.levels import Level
from twin_core.status import Status
from twin_state.estimator import StateEstimator

PLAN_INPUT = 'plan/desired_joint_states'  # rejections on it are the inputs' status, not the markers'


class StateMonitor:
    """Counts frames and rejected input; judges them when a report is made."""

    def __init__(self, stale_after: float, now: float) -> None:
        """``stale_after``: input age (s) beyond which an input counts as stale; ``now``: monotonic s."""
        self.frames = 0
        self._stale_after = stale_after
        self._rate_since = (now, 0)  # (period start, frames then)
        self._troubles = 0  # errors + time jumps at the last report
        self._rejected: dict[str, str] = {}  # topic → last error since the last report

    def frame(self) -> None:
        self.frames += 1

    def reject(self, topic: str, error: str) -> bool:
        """Note bad input on ``topic``; True when this error is new for the topic in the period (log it)."""
        new = self._rejected.get(topic) != error
        self._rejected[topic] = error
        return new

    def report(self, estimator: StateEstimator, alarms: int, prediction_age: float | None, tasks: int | None,
               now: float) -> list[Status]:
        """History, visualization and inputs; starts a new period. ``alarms``: active alarms shown,
        ``tasks``: maintenance tasks (None before a schedule), ``now``: monotonic s.
        """
        rejected, self._rejected = self._rejected, {}
        plan = rejected.pop(PLAN_INPUT, '')
        visualization = Status(
            'visualization', Level.WARN if rejected else Level.OK,
            '; '.join(f'{topic}: {error}' for topic, error in rejected.items()) or 'markers ok',
            {'active_alarms': alarms, 'prediction_age_s': -1.0 if prediction_age is None else prediction_age,
             'maintenance_tasks': -1 if tasks is None else tasks})
        return [self._history(estimator, now), visualization, self._inputs(estimator, plan)]

    def _history(self, estimator: StateEstimator, now: float) -> Status:
        started, frames_then = self._rate_since
        rate = (self.frames - frames_then) / max(now - started, 1e-9)
        self._rate_since = (now, self.frames)
        history, errors = estimator.history, dict(estimator.errors)
        span = history.newest - history.oldest if len(history) else 0.0
        # WARN while errors or time jumps keep coming; the counters themselves are cumulative.
        troubles = sum(errors.values()) + history.jumps
        level = Level.WARN if troubles > self._troubles else Level.OK
        self._troubles = troubles
        return Status('history', level, f'{len(history)}/{history.capacity} samples, {span:.1f} s', {
            'fill': len(history) / history.capacity, 'window_s': span, 'ingest_rate_hz': rate,
            'frames': self.frames, 'time_jumps': history.jumps, 'late_inserts': history.inserted,
            **{f'errors.{kind}': count for kind, count in errors.items()}})

    def _inputs(self, estimator: StateEstimator, plan: str) -> Status:
        """Freshness of the latest frame's inputs; ``plan``: why desired joint states were refused."""
        refused = f'; {PLAN_INPUT}: {plan}' if plan else ''
        if estimator.latest is None:
            return Status('inputs', Level.WARN, 'no complete frame yet' + refused)
        inputs = estimator.latest.process.inputs
        late = [i.topic for i in inputs if not i.quality.fresh or i.age > self._stale_after]
        return Status('inputs', Level.WARN if late or plan else Level.OK,
                      (f'stale: {", ".join(late)}' if late else 'all inputs fresh') + refused,
                      {f'age.{i.topic}': i.age for i in inputs})
