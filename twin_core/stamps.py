"""Time as integer nanoseconds: the one form stamps take between the edges of the twin.

Messages carry ``builtin_interfaces`` ``Time``/``Duration`` (``sec``, ``nanosec``); everything
else holds int nanoseconds and converts to float seconds only where arithmetic in seconds is
meant (rates, ages shown to people, model inputs). :func:`from_msg` reads any object with
``sec`` and ``nanosec`` (rclpy messages, rosbags messages); ``twin_ros.stamps.to_msg`` builds one.
"""
from __future__ import annotations

from typing import Protocol

NS_PER_S = 1_000_000_000


class StampLike(Protocol):
    sec: int
    nanosec: int


def from_seconds(seconds: float) -> int:
    """Seconds as int nanoseconds (rounded to the nearest)."""
    return round(seconds * NS_PER_S)


def to_seconds(nanoseconds: int) -> float:
    """Int nanoseconds as float seconds."""
    return nanoseconds / NS_PER_S


def from_msg(stamp: StampLike) -> int:
    """A ``Time`` or ``Duration`` message as int nanoseconds."""
    return stamp.sec * NS_PER_S + stamp.nanosec
