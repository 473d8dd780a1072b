"""Synchronizer cost: the twin's sync node input path, ApproximateTime policy and timeline
against the Python message_filters ApproximateTimeSynchronizer, on the same synthetic streams.

Streams: IMU 1 kHz, encoders 500 Hz, lidar 20 Hz (+ two temperatures at 20 and 10 Hz), stamps
jittered by up to 0.2 ms, delivered in stamp order; slop / max interval 5 ms.

The baseline is the real ``message_filters.ApproximateTimeSynchronizer`` (ros2/message_filters,
``src/message_filters/__init__.py``, BSD-3-Clause), unmodified: it is imported from an installed
``message_filters`` or from the directory given by ``--message-filters`` (the directory holding
the ``message_filters`` package; it is not part of this repository). It receives the ROS
messages (``header.stamp`` a ``builtin_interfaces/Time``) through its input filters'
``signalMessage``, as its ``Subscriber`` hands them over: deserialized by rclpy from the bytes
DDS delivered, a cost its subscriptions pay. Without it, only the same algorithm on
int stamps runs (far cheaper than the real class: no rclpy ``Time``/``Duration`` objects).
"node" rows run the sync node's own ``_on_message`` (adapter conversion from what its
subscriptions hand over: the serialized bytes of Imu and JointState, which it reads itself, and
rclpy messages deserialized from them for the other types; then policy or timeline) on the
node's state without DDS; sets go to a list, as the baseline's callback does, instead of being
published.

sets/s: sets (frames) per stream second; spread: mean stamp spread of a set (timeline: max_skew
of complete frames); µs/msg: CPU per input message, everything included; speed-up: baseline
CPU / CPU. Run: ``python bench/bench_sync.py [--seconds 20] [--queue-size 10]
[--message-filters DIR]``.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
from rclpy.clock import ROSClock
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Imu, JointState, LaserScan, Temperature

from twin_core.signals import Layout, Signal
from twin_core.stamps import from_msg
from twin_core.urdf import default_joint_names
from twin_ros.stamps import to_msg
from twin_sync.approximate import ApproximateTimePolicy
from twin_sync.frame import Sample
from twin_sync.sync_config import APPROXIMATE, TIMELINE, SyncConfig
from twin_sync.sync_node import SyncNode
from twin_sync.timeline import HOLD, INTERPOLATE, Timeline, TimelineInput

MS = 1_000_000
SLOP = 5 * MS
# (name, period, phase, timeline mode, values per message)
TOPICS = [('imu', 1 * MS, 0, INTERPOLATE, 6),
          ('encoders', 2 * MS, MS // 3, INTERPOLATE, 12),
          ('lidar', 50 * MS, 7 * MS // 10, HOLD, 360),
          ('temperature_1', 50 * MS, 11 * MS // 10, HOLD, 1),
          ('temperature_2', 100 * MS, 23 * MS // 10, HOLD, 1)]
Event = tuple[int, int, Any]  # (input, stamp_ns, message)
JOINTS = default_joint_names()
# the sync node's configuration of these streams
NODE_INPUTS = [('imu/data', 'sensor_msgs/msg/Imu', 0.05),
               ('encoders/joint_states', 'sensor_msgs/msg/JointState', 0.05),
               ('scan', 'sensor_msgs/msg/LaserScan', 0.2),
               (f'motors/{JOINTS[0]}/temperature', 'sensor_msgs/msg/Temperature', 0.5),
               (f'motors/{JOINTS[1]}/temperature', 'sensor_msgs/msg/Temperature', 0.5)]


class MessageFiltersBaseline:
    """The Python message_filters ApproximateTimeSynchronizer algorithm, stamps as int ns.

    Per input a dict {stamp: message}, oldest evicted past queue_size; each arrival searches
    itertools.product over the other inputs' stamps within slop (closest first) and emits the
    first tuple spanning less than slop; the callback runs under the lock.
    """

    def __init__(self, inputs: int, queue_size: int, slop_ns: int,
                 callback: Callable[..., None]) -> None:
        self.queues: list[dict[int, Any]] = [{} for _ in range(inputs)]
        self.queue_size = queue_size
        self.slop = slop_ns
        self.callback = callback
        self.lock = threading.Lock()

    def add(self, index: int, stamp: int, message: Any) -> None:
        with self.lock:
            my_queue = self.queues[index]
            my_queue[stamp] = message
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            search_queues = self.queues[:index] + self.queues[index + 1:]
            stamps = []
            for queue in search_queues:
                topic_stamps = []
                for s in queue:
                    delta = abs(s - stamp)
                    if delta > self.slop:
                        continue
                    topic_stamps.append((s, delta))
                if not topic_stamps:
                    return
                topic_stamps.sort(key=lambda x: x[1])
                stamps.append(topic_stamps)
            for candidate in itertools.product(*[list(zip(*s))[0] for s in stamps]):
                vv = list(candidate)
                vv.insert(index, stamp)
                qt = list(zip(self.queues, vv))
                if max(vv) - min(vv) < self.slop and all(t in q for q, t in qt):
                    self.callback(*[q[t] for q, t in qt])
                    for q, t in qt:
                        del q[t]
                    break


def load_message_filters(path: str | None) -> ModuleType | None:
    """The real message_filters package: installed, or from ``path``; None when neither."""
    if path:
        sys.path.insert(0, path)
    try:
        return importlib.import_module('message_filters')
    except ImportError:
        return None


def ros_message(index: int, stamp: int) -> Any:
    """The ROS message input ``index`` carries, stamped ``stamp`` (a Time message)."""
    value = stamp * 1e-9
    if index == 0:
        message = Imu()
        message.orientation_covariance[0] = -1.0
        message.linear_acceleration.x = message.angular_velocity.z = value
    elif index == 1:
        message = JointState(name=JOINTS, position=[value] * len(JOINTS),
                             velocity=[value] * len(JOINTS))
    elif index == 2:
        message = LaserScan(ranges=[value] * 360)
    else:
        message = Temperature(temperature=value)
    message.header.stamp = to_msg(stamp)
    return message


MESSAGE_CLASSES = (Imu, JointState, LaserScan, Temperature, Temperature)


def wire_events(events: Sequence[Event]) -> list[Event]:
    """The same events carrying serialized ROS messages, built before anything is timed (DDS's work)."""
    return [(index, stamp, serialize_message(ros_message(index, stamp))) for index, stamp, _ in events]


def make_events(topics: int, seconds: float, seed: int = 1) -> list[Event]:
    """Messages of the first ``topics`` streams in stamp order; the message is a Sample."""
    rng = random.Random(seed)
    end = int(seconds * 1e9)
    events = []
    for index, (_, period, phase, _, size) in enumerate(TOPICS[:topics]):
        layout = Layout(tuple(Signal(f'v{k}') for k in range(size)) if size < 100 else ())
        for nominal in range(phase + period, end, period):
            stamp = nominal + rng.randint(-200_000, 200_000)
            events.append((index, stamp, Sample(stamp, layout, np.full(size, stamp * 1e-9))))
    events.sort(key=lambda e: (e[1], e[0]))
    return events


def spread_ms(stamps: Sequence[int]) -> float:
    return (max(stamps) - min(stamps)) / MS


def run_baseline(events: Sequence[Event], topics: int, queue_size: int) -> list[float]:
    sets = []
    sync = MessageFiltersBaseline(topics, queue_size, SLOP, lambda *m: sets.append(m))
    for index, stamp, message in events:
        sync.add(index, stamp, message)
    return [spread_ms([sample.stamp_ns for sample in matched]) for matched in sets]


def run_message_filters(module: ModuleType, events: Sequence[Event], topics: int,
                        queue_size: int) -> list[float]:
    """The real ApproximateTimeSynchronizer fed ROS messages through its input filters."""
    sets: list[Any] = []
    inputs = [module.SimpleFilter() for _ in range(topics)]
    sync = module.ApproximateTimeSynchronizer(inputs, queue_size, SLOP / 1e9)
    sync.registerCallback(lambda *m: sets.append(m))
    for index, _, data in events:
        inputs[index].signalMessage(deserialize_message(data, MESSAGE_CLASSES[index]))
    return [spread_ms([from_msg(m.header.stamp) for m in matched]) for matched in sets]


def node_state(topics: int, queue_size: int, mode: str, sets: list[Any]) -> SimpleNamespace:
    """What SyncNode's message path reads of the node, built as its constructor builds it."""
    inputs = NODE_INPUTS[:topics]
    config = SyncConfig(
        mode=mode, topics=tuple(t for t, _, _ in inputs), types=tuple(t for _, t, _ in inputs),
        modes=tuple(m for *_, m, _ in TOPICS[:topics]), timeouts=tuple(t for *_, t in inputs),
        queue_size=queue_size, max_interval=SLOP / 1e9,
        lower_bounds=tuple((period - 500_000) / 1e9 for _, period, *_ in TOPICS[:topics]))
    clock = ROSClock()
    state = SimpleNamespace(_now_ns=lambda: clock.now().nanoseconds, _publish=sets.append)
    state._on_set = functools.partial(SyncNode._on_set, state)
    SyncNode._build(state, config)
    return state


def run_node(events: Sequence[Event], topics: int, queue_size: int,
             mode: str = APPROXIMATE) -> list[float]:
    """SyncNode._on_message per ROS message; in timeline mode also its 100 Hz tick."""
    frames: list[Any] = []
    state = node_state(topics, queue_size, mode, frames)
    on_message = functools.partial(SyncNode._on_message, state)
    raw = [adapter.raw for adapter in state._adapters]
    tick = 10 * MS
    next_tick = tick
    for index, stamp, data in events:
        on_message(index, data if raw[index] else deserialize_message(data, MESSAGE_CLASSES[index]))
        if mode == TIMELINE and stamp >= next_tick:
            next_tick += tick
            frames.extend(state._timeline.next_frames(stamp))
    if mode == TIMELINE:
        return [frame.max_skew * 1e3 for frame in frames if frame.complete]
    return [frame.max_skew * 1e3 for frame in frames]


def run_approximate(events: Sequence[Event], topics: int, queue_size: int,
                    bounded: bool = True) -> list[float]:
    """With lower bounds (nominal period less the 0.4 ms jitter, rounded down) if ``bounded``."""
    sets: list[Any] = []
    bounds = [period - 500_000 if bounded else 0 for _, period, *_ in TOPICS[:topics]]
    policy = ApproximateTimePolicy(topics, sets.append, queue_size=queue_size,
                                   max_interval_ns=SLOP, lower_bounds_ns=bounds)
    for index, stamp, message in events:
        policy.add(index, stamp, message)
    return [spread_ms([stamp for stamp, _ in matched]) for matched in sets]


def run_timeline(events: Sequence[Event], topics: int, queue_size: int) -> list[float]:
    timeline = Timeline([TimelineInput(mode, 5 * period) for _, period, _, mode, _
                         in TOPICS[:topics]], period_ns=10 * MS, delay_ns=30 * MS,
                        window_ns=1_000 * MS, future_tolerance_ns=50 * MS)
    frames = []
    for index, stamp, message in events:
        timeline.add(index, message, stamp)
        frame = timeline.next_frame(stamp)
        if frame is not None:
            frames.append(frame)
    return [frame.max_skew * 1e3 for frame in frames if frame.complete]


def measure(runner: Callable[..., list[float]], events: Sequence[Event], topics: int,
            queue_size: int, repeats: int) -> tuple[list[float], float]:
    """(stamp spread of each set in ms, best CPU seconds) over ``repeats`` runs."""
    best = float('inf')
    for _ in range(repeats):
        start = time.process_time()
        sets = runner(events, topics, queue_size)
        best = min(best, time.process_time() - start)
    return sets, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='stream length, s')
    parser.add_argument('--queue-size', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--message-filters', metavar='DIR',
                        help='directory holding the message_filters package, if not installed')
    options = parser.parse_args()
    module = load_message_filters(options.message_filters)
    # (name, runner, takes serialized ROS messages)
    runners: list[tuple[str, Callable[..., list[float]], bool]] = []
    if module is None:
        print('message_filters not found (--message-filters DIR): no faithful baseline')
    else:
        runners.append(('message_filters (baseline)', functools.partial(run_message_filters, module),
                        True))
    runners += [('mf algorithm, int stamps', run_baseline, False),
                ('node, approximate', run_node, True),
                ('node, timeline 100 Hz', functools.partial(run_node, mode=TIMELINE), True),
                ('ApproximateTime, no bounds', functools.partial(run_approximate, bounded=False),
                 False),
                ('ApproximateTime, bounds', run_approximate, False),
                ('Timeline 100 Hz', run_timeline, False)]
    print(f'stream {options.seconds:g} s, queue_size {options.queue_size}, slop 5 ms, '
          f'CPU time best of {options.repeats}')
    print(f'{"topics":>6}  {"implementation":<28}{"sets/s":>8}{"spread ms":>11}{"µs/msg":>9}'
          f'{"msg/s":>10}{"speed-up":>10}')
    for topics in (3, 5):
        events = make_events(topics, options.seconds)
        messages = wire_events(events)
        baseline_cpu = None
        for name, runner, ros in runners:
            spreads, cpu = measure(runner, messages if ros else events, topics, options.queue_size,
                                   options.repeats)
            baseline_cpu = baseline_cpu or cpu
            mean = f'{np.mean(spreads):.2f}' if spreads else '-'
            print(f'{topics:>6}  {name:<28}{len(spreads) / options.seconds:>8.1f}{mean:>11}'
                  f'{cpu / len(events) * 1e6:>9.2f}{len(events) / cpu:>10.0f}'
                  f'{baseline_cpu / cpu:>9.1f}x', flush=True)


if __name__ == '__main__':
    main()
