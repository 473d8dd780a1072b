"""Synchronizer node: sensor streams in, twin/synced_frame out (timeline or approximate mode)."""
from __future__ import annotations

from functools import partial
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from twin_core import cdr
from twin_core.stamps import from_seconds, to_seconds
from twin_interfaces.msg import SyncedFrame
from twin_ros.common import SENSOR_INPUT, declare_config, plain_cdr, run, status
from twin_ros.stamps import to_msg
from twin_sync.adapters import ADAPTERS
from twin_sync.approximate import ApproximateTimePolicy, Entry
from twin_sync.frame import Frame, Sample, matched_frame
from twin_sync.monitor import SyncMonitor
from twin_sync.sync_config import APPROXIMATE, SyncConfig
from twin_sync.timeline import Timeline, TimelineInput

TICK_MARGIN_NS = 500_000  # after a grid time falls due; rcl timers keep their phase
TICK_TOLERANCE_NS = 1_000_000  # a periodic tick starts only this close to its instant ...
TICK_ATTEMPTS = 20  # ... for this many grid times at most (a clock in steps: sim time)
BATCH_PERIOD_NS = 2_000_000  # at most; see twin_ros.executor.LeanExecutor


class SyncNode(Node):
    """Subscribes the configured inputs and publishes synchronized frames and diagnostics.

    Every sample goes to the timeline, or in approximate mode to the matching policy only (the
    diagnostics then judge each input's freshness by the policy's newest stamps).
    """

    def __init__(self) -> None:
        super().__init__('twin_sync')
        config = declare_config(self, SyncConfig)
        self._build(config)
        self._publisher = self.create_publisher(SyncedFrame, 'twin/synced_frame', 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        for index, (topic, adapter) in enumerate(zip(config.topics, self._adapters)):
            callback = partial(self._on_message, index)
            if adapter.raw:
                callback = plain_cdr(adapter.message_class, callback)
            self.create_subscription(adapter.message_class, topic, callback, SENSOR_INPUT, raw=adapter.raw)
        if config.mode != APPROXIMATE:
            # Inputs wait for the timeline's delay anyway: taking them in batches costs nothing.
            self.spin_batch_period_ns = min(BATCH_PERIOD_NS, from_seconds(config.delay) // 4)
            # The periodic tick starts just after a grid time falls due, so frames go out at once.
            self._tick_attempts = 0
            self._ticker = self.create_timer(
                to_seconds(self._timeline.until_due_ns(self._now_ns(), TICK_MARGIN_NS)), self._start_ticking)
        self.create_timer(1.0, self._publish_diagnostics)

    def _build(self, config: SyncConfig) -> None:
        """The state the message path uses (no ROS entities; the benchmark builds it alone)."""
        self._config = config
        self._adapters = [ADAPTERS[t] for t in config.types]
        self._converters = [(adapter.convert, topic)
                            for adapter, topic in zip(self._adapters, config.topics)]
        self._approximate = config.mode == APPROXIMATE
        self._monitor = SyncMonitor(config)
        self._timeline = Timeline(
            [TimelineInput(mode, from_seconds(timeout))
             for mode, timeout in zip(config.modes, config.timeouts)],
            period_ns=from_seconds(1.0 / config.output_rate_hz), delay_ns=from_seconds(config.delay),
            window_ns=from_seconds(config.buffer_window),
            future_tolerance_ns=from_seconds(config.future_tolerance))
        self._policy = ApproximateTimePolicy(
            len(config.topics), self._on_set, queue_size=config.queue_size,
            max_interval_ns=from_seconds(config.max_interval), age_penalty=config.age_penalty,
            lower_bounds_ns=[from_seconds(b) for b in config.lower_bounds])

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_message(self, index: int, message: Any) -> None:
        self._monitor.received(index)
        convert, topic = self._converters[index]
        try:
            sample = convert(message, topic)
        except ValueError as error:  # a serialized message that is not what it announces
            self.get_logger().error(f'{topic}: message refused: {error}', throttle_duration_sec=5.0)
            return
        if self._approximate:
            self._policy.add(index, sample.stamp_ns, sample)
        else:
            self._timeline.add(index, sample, self._now_ns())

    def _start_ticking(self) -> None:
        """Start the periodic tick, if this one-shot came on time: the tick keeps the phase it starts
        with, so a start delayed by a busy process would delay every frame for the node's life.
        Else the one-shot is set again for the next grid time.
        """
        self.destroy_timer(self._ticker)
        now_ns = self._now_ns()
        self._tick_attempts += 1
        if (self._timeline.since_due_ns(now_ns, TICK_MARGIN_NS) <= TICK_TOLERANCE_NS
                or self._tick_attempts >= TICK_ATTEMPTS):
            self._ticker = self.create_timer(1.0 / self._config.output_rate_hz, self._on_tick)
        else:
            self._ticker = self.create_timer(
                to_seconds(self._timeline.until_due_ns(now_ns, TICK_MARGIN_NS)), self._start_ticking)
        self._on_tick()

    def _on_tick(self) -> None:
        """Publish the frame of every grid time due since the last tick, one frame per grid time.

        A tick comes late on a starved process, on sim time (a bag replay's /clock steps), or
        again and again when the periodic tick started late and sits just before the grid times
        fall due. The frames of the grid times since the last tick then go out together, as far
        back as samples are buffered: consumers expect one frame per grid time. Each shows what
        the buffer holds: after a stall longer than the delay, inputs may be HELD or STALE.
        """
        for frame in self._timeline.next_frames(self._now_ns(), catch_up=True):
            self._publish(frame)

    def _on_set(self, matched: tuple[Entry, ...]) -> None:
        samples: list[Sample] = [sample for _, sample in matched]
        self._publish(matched_frame(samples))

    def _publish(self, frame: Frame) -> None:
        """The frame as a serialized SyncedFrame (written by twin_core.cdr: a quarter of rclpy's cost)."""
        self._monitor.published(frame)
        self._publisher.publish(cdr.encode_synced_frame(frame.stamp_ns, '', [
            cdr.FrameSampleFields(topic, type_name, s.stamp_ns,
                                  to_seconds(frame.stamp_ns - s.stamp_ns) if s.stamp_ns else 0.0,
                                  int(s.quality), s.layout.names, s.values)
            for topic, type_name, s in zip(self._config.topics, self._config.types, frame.samples)],
            frame.max_skew, frame.complete))

    def _publish_diagnostics(self) -> None:
        now = self._now_ns()
        name = self.get_name()
        reports = self._monitor.report(self._timeline, self._policy.stats(), now)
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=to_msg(now)), status=[
            status(f'{name}: {r.name}', r.level, r.message, r.hardware_id, r.values) for r in reports]))


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(SyncNode, 'twin_sync', args)
