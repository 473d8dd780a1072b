"""Health of the simulated cell, judged from the runner's statistics (no ROS types)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from twin_core.levels import Level
from twin_core.status import Status

RATE_TOLERANCE = 0.9  # a channel below 90 % of its target rate is WARN
REAL_TIME_TOLERANCE = 0.9


def physics_status(stats: Mapping[str, Any], truth: Any, speed: float) -> Status:
    """The simulation loop: keeping up with the wall clock, task and active faults."""
    values = {'sim_time_s': truth.time, 'real_time_factor': stats['real_time_factor'],
              'lag_s': stats['lag_s'], 'max_lag_s': stats['max_lag_s'],
              'late_events': stats['late_events'], 'resyncs': stats['resyncs'],
              'task_id': truth.task_id, 'task_phase': truth.task_phase,
              'speed_override': truth.speed_override, 'stopped': truth.stopped,
              'active_faults': ', '.join(truth.active_faults) or 'none'}
    if not stats['running'] and truth.time == 0.0:
        return Status('physics', Level.OK, 'starting: the simulation loop has not run yet', values)
    if not stats['running']:
        return Status('physics', Level.ERROR, 'simulation loop not running', values)
    if math.isnan(stats['real_time_factor']):
        return Status('physics', Level.OK, 'starting: measuring the real-time factor', values)
    paced = speed > 0.0 and speed != float('inf')
    if paced and stats['real_time_factor'] < REAL_TIME_TOLERANCE * speed:
        return Status('physics', Level.WARN,
                     f'falling behind: {stats["real_time_factor"]:.2f}x of the requested {speed}x',
                     values)
    return Status('physics', Level.OK, f'running, task {truth.task_id} {truth.task_phase}', values)


def channel_statuses(stats: Mapping[str, Any]) -> list[Status]:
    """One entry per hardware channel: achieved vs target rate and the channel's counters."""
    entries = []
    for name, counters in stats['channels'].items():
        values = dict(counters)
        target, rate = counters.get('target_hz'), counters.get('rate_hz')
        if target is None:
            entries.append(Status(f'{name} channel', Level.OK, 'serving', values))
        elif math.isnan(rate):
            entries.append(Status(f'{name} channel', Level.OK, 'starting: measuring the rate', values))
        elif rate < RATE_TOLERANCE * target:
            entries.append(Status(f'{name} channel', Level.WARN,
                                 f'{rate:.0f} Hz of {target:.0f} Hz', values))
        else:
            entries.append(Status(f'{name} channel', Level.OK, f'{rate:.0f} Hz', values))
    return entries
