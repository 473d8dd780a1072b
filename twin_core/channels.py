"""Named multivariate time series: SyncedFrame conversion and CSV files.

A channel is a signal of :mod:`twin_core.signals` (``joint_2.effort``, ``joint_2.temperature``,
``imu.linear_acceleration.x``, ``task_id``). A laser scan contributes its smallest finite range
(:func:`~twin_core.signals.range_min`: ``scan.min``). Stale or missing inputs give NaN. CSV
columns in the older topic-based form are read as their signals.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from twin_core.levels import Quality
from twin_core.signals import LASER_SCAN_TYPE, canonical, input_prefix, range_min
from twin_core.stamps import from_msg, to_seconds


def frame_values(frame: Any) -> tuple[float, dict[str, float]]:
    """(stamp in s, channel -> value) of a ``twin_interfaces/SyncedFrame`` (an rclpy or rosbags
    message, or :class:`twin_core.cdr.SyncedFrameWire`).
    """
    stamp = to_seconds(from_msg(frame.header.stamp))
    values: dict[str, float] = {}
    for sample in frame.samples:
        stale = not Quality(sample.quality).fresh
        numbers = np.asarray(sample.values, float)
        if sample.type == LASER_SCAN_TYPE:
            finite = numbers[np.isfinite(numbers)]
            values[range_min(sample.topic).name] = math.nan if stale or not finite.size else float(finite.min())
            continue
        prefix = input_prefix(sample.type, sample.topic)
        for name, value in zip(sample.names, numbers.tolist()):
            values[prefix + name] = math.nan if stale else value
    return stamp, values


@dataclass(frozen=True)
class Series:
    """``values[i, j]`` of channel ``names[j]`` at ``time[i]`` (s); optional 0/1 ``labels``."""

    time: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    labels: np.ndarray | None = None

    def select(self, names: Sequence[str]) -> Series:
        """The same rows with ``names`` as channels (absent channels are all NaN)."""
        index = {name: j for j, name in enumerate(self.names)}
        columns = [self.values[:, index[n]] if n in index else np.full(len(self.time), np.nan)
                   for n in names]
        return Series(self.time, tuple(names), np.column_stack(columns), self.labels)

    def rows(self, mask: np.ndarray) -> Series:
        return Series(self.time[mask], self.names, self.values[mask],
                      None if self.labels is None else self.labels[mask])


def stack_rows(names: Sequence[str], rows: Iterable[Mapping[str, float]]) -> np.ndarray:
    """Rows of channel -> value mappings as an (n, len(names)) array; absent values are NaN."""
    return np.array([[row.get(name, math.nan) for name in names] for row in rows], dtype=float)


def read_csv(path: str | Path, time_column: str = 'time', label_column: str | None = None,
             columns: Sequence[str] | None = None, label_required: bool = True) -> Series:
    """A series from a CSV with a header; non-numeric columns are skipped unless named.

    Times are seconds or ISO 8601 date-times (naive ones in UTC); the label column is never a
    channel, and without ``label_required`` a file lacking it has no labels.
    """
    with open(path, newline='', encoding='utf-8') as stream:
        reader = csv.reader(stream)
        header = [canonical(name) for name in next(reader, [])]
        table = list(reader)
    if not header:
        raise ValueError(f'{path}: empty file, a header row is needed')
    position = {name: j for j, name in enumerate(header)}
    if label_column and label_column not in position and not label_required:
        label_column = None
    for required in [time_column, *([label_column] if label_column else []), *(columns or [])]:
        if required not in position:
            raise KeyError(f'{path}: no column {required!r} (columns: {", ".join(header)})')
    if columns is None:
        columns = [name for name in header if name not in (time_column, label_column)
                   and _numeric(row[position[name]] for row in table[:200])]
    def column(name: str) -> np.ndarray:
        j = position[name]
        return np.array([_float(row[j]) for row in table], dtype=float)
    values = np.column_stack([column(name) for name in columns]) if columns else \
        np.empty((len(table), 0))
    labels = (column(label_column) > 0.5).astype(np.int8) if label_column else None
    return Series(_times(path, time_column, [row[position[time_column]] for row in table]),
                  tuple(columns), values, labels)


def _times(path: str | Path, name: str, cells: Sequence[str]) -> np.ndarray:
    """Seconds from numbers or ISO 8601 date-times; ValueError naming the first bad cell."""
    times = np.empty(len(cells))
    for row, cell in enumerate(cells):
        try:
            times[row] = float(cell)
        except ValueError:
            try:
                moment = datetime.fromisoformat(cell.strip())
            except ValueError:
                raise ValueError(f'{path}: row {row + 2}: {name} {cell!r} is neither seconds nor an '
                                 'ISO 8601 date-time') from None
            times[row] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        if not math.isfinite(times[row]):
            raise ValueError(f'{path}: row {row + 2}: {name} {cell!r} is not a finite time')
    return times


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _numeric(cells: Iterable[str]) -> bool:
    seen = False
    for cell in cells:
        if cell == '':
            continue
        try:
            float(cell)
        except ValueError:
            return False
        seen = True
    return seen


def write_csv(path: str | Path, series: Series, label_column: str = 'label') -> None:
    """``series`` as a CSV :func:`read_csv` reads back (time, channels, labels if any)."""
    with open(path, 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow(['time', *series.names, *([label_column] if series.labels is not None else [])])
        for i, stamp in enumerate(series.time):
            label = [int(series.labels[i])] if series.labels is not None else []
            writer.writerow([f'{stamp:.6f}', *(f'{v:.7g}' for v in series.values[i]), *label])
