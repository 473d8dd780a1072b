"""rclpy base of the driver nodes: typed config, stamping, connection logging, 1 Hz diagnostics."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.publisher import Publisher
from std_msgs.msg import Header

from twin_core.dead_letters import DeadLetters
from twin_core.levels import Level
from twin_ros.common import declare_config, status, supervised_workers
from twin_ros.stamps import to_msg
from twin_sensors.readers import SerialReader
from twin_sensors.stats import DEVICE_STARTUP_GRACE_S, DriverStats
from twin_sensors.timestamps import Stamper

C = TypeVar('C')
DIAGNOSTICS_PERIOD = 1.0  # s


class DeviceReader(Protocol):
    """A device reader running its own thread (serial, UDP or OPC UA)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class DriverNode(Node):
    """Subclasses call ``attach``; ``restart_stream`` and ``extra_values`` are their hooks."""

    source = ''
    _reader: DeviceReader | None = None

    def __init__(self, name: str, config_type: type[C]) -> None:
        super().__init__(name)
        self.config: Any = declare_config(self, config_type)
        self.stats = DriverStats(dead_letters=DeadLetters.for_node(self.get_fully_qualified_name()), source=name)
        self.stamper = Stamper(self.config.timestamps)
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self.create_timer(DIAGNOSTICS_PERIOD, self._publish_diagnostics)
        self.workers = supervised_workers(self, DIAGNOSTICS_PERIOD)

    def attach(self, reader: DeviceReader, source: str) -> None:
        """Start ``reader`` (named ``source`` in logs, diagnostics and dead letters); it stops with the node."""
        self.source = self.stats.source = source
        self._reader = reader
        reader.start()

    def attach_serial(self, on_data: Callable[[bytes, int], None]) -> None:
        """Read the configured serial port (``config.serial``) in a supervised thread."""
        self.attach(SerialReader(self.config.serial, on_data, self.on_state, self.now_ns, self.workers),
                    self.config.serial.port)

    def restart_stream(self) -> None:
        """Called on every (re)connection: drop state from before, such as a cut line."""

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def stamp(self, receive_ns: int, device_time: float | None) -> Time:
        return to_msg(self.stamper.stamp(receive_ns, device_time))

    def on_state(self, connected: bool, detail: str) -> None:
        """Reader callback, once per state change."""
        self.stats.set_state(connected, detail)
        if connected:
            self.restart_stream()
        if connected:  # rclpy wants one severity per logging call site
            self.get_logger().info(detail)
        elif self.stats.waiting():
            self.get_logger().info(f'waiting for the device: {detail}')
        else:
            self.get_logger().warning(detail)

    def publish(self, publisher: Publisher, message: Any) -> None:
        """Publish from a reader thread; a shutdown racing the reader is not an error."""
        try:
            publisher.publish(message)
        except Exception:
            if self.context.ok():
                raise

    def extra_values(self) -> dict[str, Any]:
        return {}

    def health(self, rate: float) -> tuple[Level, str]:
        """The device's level and message on /diagnostics; ``rate`` in messages per second."""
        return self.stats.health(rate)

    def destroy_node(self) -> None:
        """Stop the reader thread before the node goes away."""
        if self._reader is not None:
            self._reader.stop()
        self.workers.stop()
        if self.stats.dead_letters is not None:
            self.stats.dead_letters.close()
        super().destroy_node()

    def _publish_diagnostics(self) -> None:
        if self.stats.overdue():
            self.get_logger().warning(f'{self.source} not reached within {DEVICE_STARTUP_GRACE_S:g} s '
                                      f'of start: {self.stats.last_error}')
        rate = self.stats.rate()
        level, message = self.health(rate)
        values = self.stats.values(rate) | self.extra_values() | self.stamper.values()
        self._diagnostics.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()),
            status=[status(f'{self.get_name()}: {self.source}', level, message, self.source, values)]))
