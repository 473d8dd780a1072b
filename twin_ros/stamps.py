"""Int nanoseconds <-> ``builtin_interfaces`` messages (the reverse of ``twin_core.stamps.from_msg``)."""
from __future__ import annotations

from builtin_interfaces.msg import Duration, Time

from twin_core.stamps import NS_PER_S, from_msg

__all__ = ['from_msg', 'to_duration', 'to_msg']


def to_msg(nanoseconds: int) -> Time:
    """Int nanoseconds since the epoch as a ``Time`` message."""
    sec, nanosec = divmod(int(nanoseconds), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def to_duration(nanoseconds: int) -> Duration:
    """Int nanoseconds as a ``Duration`` message."""
    sec, nanosec = divmod(int(nanoseconds), NS_PER_S)
    return Duration(sec=sec, nanosec=nanosec)
