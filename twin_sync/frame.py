"""Data shared by the synchronizers: input samples as signal vectors, frames built from them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from twin_core.levels import Quality
from twin_core.signals import Layout
from twin_core.stamps import to_seconds


@dataclass(frozen=True)
class Sample:
    """One input message as a stamped numeric vector; ``layout`` names its signals (no columns
    for fixed arrays such as laser ranges).
    """

    stamp_ns: int
    layout: Layout
    values: np.ndarray


@dataclass(frozen=True)
class FrameSample:
    """One input's contribution to a frame; ``stamp_ns`` is the newest source sample used."""

    quality: Quality
    stamp_ns: int = 0
    layout: Layout = field(default_factory=Layout)
    values: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class Frame:
    """All inputs at one instant; ``max_skew`` in s, ``complete`` when none is stale or missing."""

    stamp_ns: int
    samples: tuple[FrameSample, ...]
    max_skew: float
    complete: bool


def matched_frame(samples: Sequence[Sample]) -> Frame:
    """The frame of an approximate-time set: samples as they are, stamped at the newest one."""
    stamps = [sample.stamp_ns for sample in samples]
    return Frame(max(stamps), tuple(FrameSample(Quality.EXACT, s.stamp_ns, s.layout, s.values)
                                    for s in samples),
                 to_seconds(max(stamps) - min(stamps)), True)
