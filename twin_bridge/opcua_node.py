"""opcua_bridge node: serves the twin over OPC UA (state, health, alerts, maintenance; HistoryRead
from twin/get_history; SpeedOverrideSetpoint writes published as operator requests to the
actuation node) and, as a client of the cell PLC, publishes PLC variables.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState, Temperature
from std_msgs.msg import Float64, Header

from twin_bridge.opcua_config import OpcUaBridgeConfig
from twin_bridge.opcua_server import TwinServer
from twin_core.config import ConfigError
from twin_core.dead_letters import DeadLetters
from twin_core.levels import Level
from twin_core.stamps import from_msg
from twin_interfaces.msg import AnomalyEvent, MaintenanceSchedule, TwinState
from twin_interfaces.srv import GetHistory
from twin_maintenance.scheduler import PlannedTask
from twin_ros.common import LATCHED, declare_config, run, status, status_level, supervised_workers
from twin_ros.stamps import to_msg
from twin_sensors.opcua_client import OpcUaSubscriber


class OpcUaBridge(Node):
    """Twin topics into the OPC UA server and its setpoint writes to the actuation node; PLC variables to topics."""

    def __init__(self) -> None:
        super().__init__('opcua_bridge')
        self.config = config = declare_config(self, OpcUaBridgeConfig)
        self._plc_state = 'not connected yet'
        self._diagnostics = self.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self._workers = supervised_workers(self)
        self._server: TwinServer | None = None
        self._plc: OpcUaSubscriber | None = None
        if config.server.enabled:
            self._start_server()
        if config.client.enabled:
            self._start_client()
        self.create_timer(1.0 / config.diagnostics_rate_hz, self._publish_diagnostics)

    # ----------------------------------------------------------------- server mode

    def _start_server(self) -> None:
        config = self.config
        history = None
        if config.history.enabled:
            self._history_client = self.create_client(GetHistory, config.history.service)
            history = self._read_history
        speed_override = None
        if config.topics.speed_override:
            self._requests = self.create_publisher(Float64, config.topics.speed_override, 10)
            speed_override = self._request_speed_override
        self._dead_letters = DeadLetters.for_node(self.get_fully_qualified_name())
        self._server = server = TwinServer(config.server, history, speed_override, self._workers,
                                           self._dead_letters)
        try:
            server.start()
        except (OSError, ValueError) as error:  # busy port, unreadable certificate, key or users file
            raise ConfigError(f'{self.get_name()}.server: cannot serve {config.server.endpoint}: {error}') from None
        space, topics = server.space, config.topics
        handlers: list[tuple[str, type, Any, QoSProfile | int]] = [
            (topics.state, TwinState, self._on_state, 10),
            (topics.joint_states, JointState, lambda m: server.update(
                space.axes(m.name, m.position, m.velocity, effort=m.effort), from_msg(m.header.stamp)), 10),
            (topics.diagnostics, DiagnosticArray, lambda m: server.update(
                space.health([(status_level(s), s.name, s.message) for s in m.status])), 10),
            (topics.anomalies, AnomalyEvent, lambda m: server.update(
                space.alert(m.sensor, m.method, m.severity, m.description, m.active), from_msg(m.header.stamp)), 10),
            (topics.maintenance_schedule, MaintenanceSchedule, self._on_schedule, LATCHED),
            # every operator request (from OPC UA, MQTT, ...) shows in SpeedOverrideSetpoint
            (topics.speed_override, Float64, lambda m: server.update(space.operator_request(m.data)), 10)]
        for topic, msg_type, callback, qos in handlers:
            if topic:
                self.create_subscription(msg_type, topic, callback, qos)
        self.get_logger().info(f'serving the twin at {config.server.endpoint}')

    def _request_speed_override(self, value: float, user: str) -> None:
        """An accepted SpeedOverrideSetpoint write, as an operator request (server thread)."""
        self._requests.publish(Float64(data=value))
        self.get_logger().info(f'OPC UA user {user!r} requests speed override {value:g}')

    def _on_state(self, message: TwinState) -> None:
        assert self._server is not None
        space = self._server.space
        stamp = from_msg(message.header.stamp)
        self._server.update({
            **space.axes(message.joint_names, message.position, message.velocity, message.acceleration,
                         message.effort, message.motor_temperature, message.load),
            **space.state(stamp, message.predicted, message.task_id, message.task_progress,
                          message.status == TwinState.STATUS_STOPPED, message.speed_override)}, stamp)

    def _on_schedule(self, message: MaintenanceSchedule) -> None:
        assert self._server is not None
        tasks = [PlannedTask.from_message(t) for t in message.tasks]
        self._server.update(self._server.space.maintenance(message.revision, tasks, message.unplaced),
                            from_msg(message.header.stamp))

    def _read_history(self, path: str, start_ns: int, end_ns: int, max_samples: int
                      ) -> tuple[Sequence[float], Sequence[float]]:
        """Blocking GetHistory call (from the server's worker thread; the executor answers it)."""
        request = GetHistory.Request(paths=[path], start=to_msg(start_ns), end=to_msg(end_ns), max_samples=max_samples)
        response = self._history_client.call(request, timeout_sec=self.config.history.timeout)
        if response is None:
            raise TimeoutError(f'{self.config.history.service} did not answer')
        if not response.success:
            raise LookupError(response.message)
        return response.stamps, response.values.data

    # ----------------------------------------------------------------- client mode

    def _start_client(self) -> None:
        client = self.config.client
        self._plc_publishers = {
            variable: (self.create_publisher(Temperature, topic, qos_profile_sensor_data), True)
            if kind == 'temperature' else (self.create_publisher(Float64, topic, LATCHED), False)
            for variable, topic, kind in zip(client.variables, client.topics, client.kinds)}
        self._plc = OpcUaSubscriber(client.opcua, client.variables, self._on_plc_values, self._on_plc_state,
                                    lambda: self.get_clock().now().nanoseconds, self._workers)
        self._plc.start()

    def _on_plc_values(self, changes: Mapping[str, Any], receive_ns: int) -> None:
        stamp = to_msg(receive_ns)
        for variable, value in changes.items():
            if value is None:  # bad status: nothing to publish
                continue
            publisher, stamped = self._plc_publishers[variable]
            if stamped:
                message = Temperature(temperature=float(value))
                message.header.stamp, message.header.frame_id = stamp, variable
                publisher.publish(message)
            else:
                publisher.publish(Float64(data=float(value)))

    def _on_plc_state(self, connected: bool, detail: str) -> None:
        self._plc_state = detail
        if connected:
            self.get_logger().info(detail)
        else:
            self.get_logger().warning(detail)

    # ----------------------------------------------------------------- health

    def _publish_diagnostics(self) -> None:
        statuses: list[DiagnosticStatus] = []
        name = self.get_name()
        if self._server is not None:
            stats = self._server.stats()
            statuses.append(status(
                f'{name}: server', Level.OK if stats.running else Level.ERROR,
                f'serving {self.config.server.endpoint}' if stats.running else 'server stopped',
                values={'clients': stats.clients, 'writes': stats.writes,
                        'security': 'Basic256Sha256 Sign&Encrypt' if self.config.server.security.enabled else 'none',
                        'commands': stats.commands, 'rejected_commands': stats.rejected_commands,
                        'last_error': stats.last_error}))
        if self._plc is not None:
            statuses.append(status(
                f'{name}: plc client', Level.OK if self._plc.connected else Level.ERROR, self._plc_state,
                hardware_id=self.config.client.opcua.endpoint, values={'connected': bool(self._plc.connected)}))
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=statuses))

    def destroy_node(self) -> None:
        """Stop the OPC UA threads before the node goes."""
        if self._plc is not None:
            self._plc.stop()
        if self._server is not None:
            self._server.stop()
            self._dead_letters.close()
        self._workers.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console-script entry point."""
    return run(OpcUaBridge, 'opcua_bridge', args)
