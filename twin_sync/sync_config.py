"""Parameters of the synchronizer node (inputs as parallel arrays, one entry per input)."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_core.urdf import default_joint_names
from twin_sync.adapters import ADAPTERS
from twin_sync.timeline import HOLD, INTERPOLATE, MODES

TIMELINE = 'timeline'
APPROXIMATE = 'approximate'
JOINTS = default_joint_names()


@dataclass(frozen=True)
class SyncConfig:
    """Parameters of the ``twin_sync`` node."""

    mode: str = field(default=TIMELINE, metadata=describe(
        'timeline: frames at output_rate_hz; approximate: one frame per matched set.',
        choices=(TIMELINE, APPROXIMATE)))
    topics: tuple[str, ...] = field(default=(
        'imu/data', 'encoders/joint_states', 'scan',
        *(f'motors/{joint}/temperature' for joint in JOINTS), 'cell/status'),
        metadata=describe('Input topics, in frame order.'))
    types: tuple[str, ...] = field(default=(
        'sensor_msgs/msg/Imu', 'sensor_msgs/msg/JointState', 'sensor_msgs/msg/LaserScan',
        *('sensor_msgs/msg/Temperature',) * len(JOINTS), 'twin_interfaces/msg/CellStatus'),
        metadata=describe(f'Message type of each input, one of {sorted(ADAPTERS)}.'))
    modes: tuple[str, ...] = field(default=(
        INTERPOLATE, INTERPOLATE, HOLD, *(HOLD,) * len(JOINTS), HOLD),
        metadata=describe(f'Timeline resampling of each input, one of {list(MODES)}.'))
    timeouts: tuple[float, ...] = field(default=(
        0.05, 0.05, 0.2, *(0.5,) * len(JOINTS), 1.0),
        metadata=describe('Seconds after its last sample before each input is STALE.'))
    output_rate_hz: float = field(default=100.0, metadata=describe(
        'Timeline frame rate.', min=100.0, max=1000.0))
    delay: float = field(default=0.03, metadata=describe(
        'Seconds the timeline runs behind the clock so slower inputs can arrive.',
        min=0.0, max=5.0))
    buffer_window: float = field(default=1.0, metadata=describe(
        'Seconds of samples kept per input; older out-of-order samples are dropped.',
        min=0.01, max=60.0))
    future_tolerance: float = field(default=0.05, metadata=describe(
        'Seconds a stamp may lie ahead of the clock before the sample is rejected.',
        min=0.0, max=10.0))
    queue_size: int = field(default=50, metadata=describe(
        'Approximate mode: messages queued per input.', min=1, max=10000))
    max_interval: float = field(default=0.005, metadata=describe(
        'Approximate mode: largest stamp spread within a set, s.', min=0.0, max=60.0))
    age_penalty: float = field(default=0.1, metadata=describe(
        'Approximate mode: preference for earlier sets over tighter later ones.',
        min=0.0, max=100.0))
    lower_bounds: tuple[float, ...] = field(default=(
        0.0008, 0.0016, 0.04, *(0.04,) * len(JOINTS), 0.04), metadata=describe(
        'Approximate mode: per input, a lower bound on the time between messages, s; lets a '
        'set be published before slow inputs send their next message (0 = unknown).'))

    def __post_init__(self) -> None:
        count = len(self.topics)
        arrays = {'types': self.types, 'modes': self.modes, 'timeouts': self.timeouts,
                  'lower_bounds': self.lower_bounds}
        for name, values in arrays.items():
            if len(values) != count:
                raise ValueError(f'{name} has {len(values)} entries, topics has {count}')
        if count < 2 or len(set(self.topics)) != count:
            raise ValueError('topics: need at least two distinct topics')
        for topic, type_name, mode in zip(self.topics, self.types, self.modes):
            if type_name not in ADAPTERS:
                raise ValueError(f'types: {type_name!r} ({topic}) is not one of {sorted(ADAPTERS)}')
            if mode not in MODES:
                raise ValueError(f'modes: {mode!r} ({topic}) is not one of {list(MODES)}')
            if mode == INTERPOLATE and not ADAPTERS[type_name].interpolable:
                raise ValueError(f'modes: {type_name} ({topic}) can only be held')
        if min(self.timeouts) <= 0.0 or min(self.lower_bounds) < 0.0:
            raise ValueError('timeouts must be positive and lower_bounds non-negative')
