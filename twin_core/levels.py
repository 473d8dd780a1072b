"""Scales shared by the layers, each ordered from best to worst.

Members compare as integers and read as their names (``str(Level.WARN) == 'WARN'``); the
messages keep their own field types (a byte, a uint8, a string), converted at the node shells.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Self


class Scale(IntEnum):
    """An ordered scale whose members print as their names."""

    def __str__(self) -> str:
        return self.name

    @classmethod
    def named(cls, name: str) -> Self:
        """The member called ``name``; ValueError for any other string."""
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f'{name!r} is not one of {", ".join(cls.__members__)}') from None


class Level(Scale):
    """Liveness of a component: the diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class Risk(Scale):
    """Maintenance risk of a component, from its remaining useful life and condition."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3


class Quality(Scale):
    """How a synchronized frame obtained an input's values (the QUALITY_* of SensorSample.msg)."""

    EXACT = 0
    INTERPOLATED = 1
    HELD = 2
    STALE = 3
    MISSING = 4

    @property
    def fresh(self) -> bool:
        """The values are those of a sample within the input's timeout."""
        return self <= Quality.HELD
