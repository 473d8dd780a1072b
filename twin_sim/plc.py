"""The cell PLC: an OPC UA server (asyncua) on its own asyncio loop in a background thread.

Address space, namespace ``urn:ros2-digital-twin:workcell``::

    Objects/Workcell/Motors/<joint>/Temperature   Double, degC (Bad_SensorFailure during dropout)
    Objects/Workcell/SpeedOverride                Double 0..1, writable; out-of-range writes get Bad_OutOfRange
    Objects/Workcell/Stopped                      Boolean
    Objects/Workcell/TaskId                       Int64 (-1: no task)
    Objects/Workcell/TaskProgress                 Double 0..1
    Objects/Workcell/DeviceTime                   Double, s (the cell's own clock)

The simulation thread hands over snapshots with ``publish``; the server loop writes the latest
one at ``publish_rate_hz``. Client writes to SpeedOverride are queued for the simulation
thread, which takes them with ``take_speed_override_requests``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.common.node import Node

from twin_core.opcua import ServerThread, engineering_units, node_id
from twin_sim.hardware import PlcChannel

_log = logging.getLogger(__name__)

NAMESPACE = "urn:ros2-digital-twin:workcell"
_DEGREES_CELSIUS = engineering_units("CEL", "°C", "degree Celsius")
# StatusCode's value is annotated as asyncua's ua.UInt32 class; its StatusCodes constants are plain ints.
_SENSOR_FAILURE = ua.StatusCode(ua.StatusCodes.BadSensorFailure)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PlcState:
    """The values the PLC exposes; ``motor_temperatures`` is None while the sensors have dropped out."""

    motor_temperatures: Sequence[float] | None
    speed_override: float
    stopped: bool
    task_id: int
    task_progress: float
    device_time: float


class PlcServer(ServerThread):
    """OPC UA server of the cell PLC, bound to the host of its endpoint."""

    def __init__(self, config: PlcChannel, joint_names: Sequence[str]) -> None:
        super().__init__("plc-opcua", 1.0 / config.publish_rate_hz)
        self.config = config
        self.joint_names = tuple(joint_names)
        self.rejected_writes = 0
        self._lock = threading.Lock()
        self._latest: PlcState | None = None
        self._override_requests: list[float] = []
        self._nodes: dict[str, Node] = {}
        self._speed_override_id: ua.NodeId | None = None

    # ----------------------------------------------------------------- thread-safe API

    def publish(self, state: PlcState) -> None:
        """Hand the latest values to the server loop (never blocks on the network)."""
        with self._lock:
            self._latest = state

    def take_speed_override_requests(self) -> list[float]:
        """Speed overrides written by clients since the last call, oldest first."""
        with self._lock:
            requests, self._override_requests = self._override_requests, []
        return requests

    def start(self, timeout: float = 60.0) -> None:
        """Start the server thread; return once the endpoint accepts connections.

        Building the address space takes seconds of CPU; on a loaded machine (a fleet starting
        at once) far longer, hence the generous ``timeout``.
        """
        super().start(timeout)
        _log.info("PLC serving %s", self.config.endpoint)

    # ----------------------------------------------------------------- server thread

    async def _start_server(self) -> Server:
        server = Server()
        server.disable_clock()  # its 1 s clock task would delay stop() by up to a second
        await server.init()
        server.set_endpoint(self.config.endpoint)
        server.set_server_name("twin workcell PLC")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        self._nodes = await self._build_address_space(server)
        server.subscribe_server_callback(CallbackType.PreWrite, self._validate_client_write)
        server.subscribe_server_callback(CallbackType.PostWrite, self._take_client_write)
        await server.start()
        return server

    async def _build_address_space(self, server: Server) -> dict[str, Node]:
        index = await server.register_namespace(NAMESPACE)
        cell = await server.nodes.objects.add_object(node_id("Workcell", index), ua.QualifiedName("Workcell", index))
        motors = await cell.add_object(node_id("Workcell.Motors", index), ua.QualifiedName("Motors", index))
        nodes: dict[str, Node] = {}
        for joint in self.joint_names:
            motor = await motors.add_object(node_id(f"Workcell.Motors.{joint}", index),
                                            ua.QualifiedName(joint, index))
            temperature = await motor.add_variable(
                node_id(f"Workcell.Motors.{joint}.Temperature", index), ua.QualifiedName("Temperature", index),
                math.nan, ua.VariantType.Double)
            await temperature.add_property(index, "EngineeringUnits", _DEGREES_CELSIUS)
            nodes[joint] = temperature
        for name, initial, variant in (
            ("SpeedOverride", 1.0, ua.VariantType.Double), ("Stopped", False, ua.VariantType.Boolean),
            ("TaskId", -1, ua.VariantType.Int64), ("TaskProgress", 0.0, ua.VariantType.Double),
            ("DeviceTime", 0.0, ua.VariantType.Double),
        ):
            nodes[name] = await cell.add_variable(node_id(f"Workcell.{name}", index),
                                                  ua.QualifiedName(name, index), initial, variant)
        await nodes["SpeedOverride"].set_writable()
        self._speed_override_id = nodes["SpeedOverride"].nodeid
        return nodes

    async def _tick(self, server: Server) -> None:
        nodes = self._nodes
        with self._lock:
            state = self._latest
        if state is None:
            return
        values: list[tuple[str, object, ua.VariantType]] = [
            ("SpeedOverride", float(state.speed_override), ua.VariantType.Double),
            ("Stopped", bool(state.stopped), ua.VariantType.Boolean),
            ("TaskId", int(state.task_id), ua.VariantType.Int64),
            ("TaskProgress", float(state.task_progress), ua.VariantType.Double),
            ("DeviceTime", float(state.device_time), ua.VariantType.Double),
        ]
        if state.motor_temperatures is not None:
            values += [(joint, float(t), ua.VariantType.Double)
                       for joint, t in zip(self.joint_names, state.motor_temperatures)]
        else:
            for joint in self.joint_names:
                await server.write_attribute_value(nodes[joint].nodeid, ua.DataValue(StatusCode=_SENSOR_FAILURE))
        for name, value, variant in values:
            await server.write_attribute_value(nodes[name].nodeid, ua.DataValue(ua.Variant(value, variant)))

    def _is_speed_override(self, item: ua.WriteValue) -> bool:
        return item.NodeId == self._speed_override_id and item.AttributeId == ua.AttributeIds.Value

    def _validate_client_write(self, event: ServerItemCallback, _dispatcher: object) -> None:
        for item in filter(self._is_speed_override, event.request_params.NodesToWrite):
            value = item.Value.Value.Value if item.Value.Value is not None else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                self.rejected_writes += 1
                _log.warning("rejected SpeedOverride write %r", value)
                raise ua.uaerrors.BadOutOfRange

    def _take_client_write(self, event: ServerItemCallback, _dispatcher: object) -> None:
        accepted = [float(item.Value.Value.Value)
                    for item, status in zip(event.request_params.NodesToWrite, event.response_params)
                    if self._is_speed_override(item) and status.is_good()]
        if accepted:
            with self._lock:
                self._override_requests.extend(accepted)
