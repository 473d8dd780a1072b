"""Frames recorded through the live data path as a series the anomaly detector can be fitted on.

A ``twin_record`` bag of ``/twin/synced_frame`` gives one row per frame with the channels of
:func:`~twin_core.channels.frame_values`; when the bag also holds the simulator's
``/workcell_sim/truth``, a frame is labelled 1 while a fault was active (from the last truth
message at or before the frame; truth comes at 10 Hz, so a label may start up to 0.1 s late).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from twin_bag.reading import read_topics
from twin_core.channels import Series, frame_values, stack_rows
from twin_core.stamps import from_msg, to_seconds

FRAMES, TRUTH = '/twin/synced_frame', '/workcell_sim/truth'
TYPES = {FRAMES: 'twin_interfaces/msg/SyncedFrame', TRUTH: 'twin_interfaces/msg/WorkcellTruth'}


def bag_series(path: Path) -> Series:
    """The frames of the bag at ``path`` in stamp order; ``ValueError`` without frames."""
    contents = read_topics(path, TYPES)
    frames = contents.messages.get(FRAMES)
    if not frames:
        raise ValueError(f'{path}: no {FRAMES} messages (record it with twin_record)')
    rows = sorted((frame_values(frame) for frame in frames), key=lambda row: row[0])
    names = tuple(dict.fromkeys(name for _, values in rows for name in values))
    time = np.array([stamp for stamp, _ in rows])
    truth = contents.messages.get(TRUTH)
    labels = None
    if truth:
        truth_time = np.array([to_seconds(from_msg(m.header.stamp)) for m in truth])  # type: ignore[attr-defined]
        faulty = np.array([bool(m.active_faults) for m in truth])  # type: ignore[attr-defined]
        latest = np.searchsorted(truth_time, time, side='right') - 1
        labels = np.where(latest >= 0, faulty[np.maximum(latest, 0)], False).astype(np.int8)
    return Series(time, names, stack_rows(names, (values for _, values in rows)), labels)
