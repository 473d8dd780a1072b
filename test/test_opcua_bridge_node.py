"""opcua_bridge as a process: twin topics reach OPC UA clients (values and HistoryRead), PLC
variables reach topics across a PLC restart, and operator commands never reach the PLC."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from sandbox import free_port
from std_msgs.msg import Float64

from harness import TopicProbe
from twin_bridge.opcua_node import LATCHED
from twin_interfaces.msg import TwinState
from twin_interfaces.srv import GetHistory
from twin_sim.hardware import PlcChannel
from twin_sim.plc import NAMESPACE, PlcServer, PlcState

pytestmark = pytest.mark.integration

OPCUA_BRIDGE = 'opcua_bridge'
TWIN_NAMESPACE = 'urn:ros2-digital-twin:twin'
AXES = 'DeviceSet/cell_1/MotionDevices/arm/Axes'
CONTROLLER = 'DeviceSet/cell_1/Controllers/controller/ParameterSet'


def parameters(path: Path, server: str, client: str) -> Path:
    path.write_text(f"""\
opcua_bridge:
  ros__parameters:
    server: {server}
    client: {client}
""")
    return path


def eventually(check: Callable[[], Any], timeout: float, every: Callable[[], None] = lambda: None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        every()
        try:
            result = check()
            if result:
                return result
        except (OSError, ua.UaError, TimeoutError):  # server not up yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f'not within {timeout} s')
        time.sleep(0.1)


def plc_state(speed_override: float) -> PlcState:
    return PlcState([40.0], speed_override, False, 1, 0.0, 0.0)


def test_twin_state_reaches_opcua_clients_with_history(start_process: Any, probe: TopicProbe, tmp_path: Path) -> None:
    endpoint = f'opc.tcp://127.0.0.1:{free_port()}/twin'
    requests: list[GetHistory.Request] = []

    def get_history(request: GetHistory.Request, response: GetHistory.Response) -> GetHistory.Response:
        requests.append(request)
        response.success, response.columns, response.stamps = True, list(request.paths), [10.0, 11.0]
        response.values.data = [0.5, 0.75]
        return response

    probe.node.create_service(GetHistory, '/twin/get_history', get_history)
    publisher = probe.node.create_publisher(TwinState, '/twin/state', 10)
    state = TwinState(joint_names=['joint_1', 'joint_2'], position=[0.1, -0.2], velocity=[1.0, 2.0],
                      motor_temperature=[35.0, 36.0], task_id=4)
    params = parameters(tmp_path / 'bridge.yaml', f'{{endpoint: "{endpoint}", security: {{enabled: false}}}}',
                        '{enabled: false}')
    start_process(OPCUA_BRIDGE, '--ros-args', '--params-file', str(params))

    async def read() -> tuple[list[float], list[ua.DataValue]]:
        async with Client(endpoint, timeout=2) as client:
            index = await client.get_namespace_index(TWIN_NAMESPACE)
            nodes = [client.get_node(ua.NodeId(f'{AXES}/{j}/ParameterSet/ActualPosition', index))
                     for j in ('joint_1', 'joint_2')]
            return [await n.read_value() for n in nodes], await nodes[1].read_raw_history()

    def publish() -> None:
        state.header.stamp = probe.node.get_clock().now().to_msg()
        publisher.publish(state)

    positions, history = eventually(lambda: (found := asyncio.run(read()))[0] == [0.1, -0.2] and found, 20.0, publish)
    assert [v.Value.Value for v in history] == [0.5, 0.75]
    assert [v.SourceTimestamp.timestamp() for v in history] == [10.0, 11.0]
    assert requests[-1].paths == ['joint_2.position']


def test_plc_values_reach_topics_across_a_plc_restart_and_commands_never_reach_the_plc(
        start_process: Any, probe: TopicProbe, tmp_path: Path) -> None:
    channel = PlcChannel(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/twin/plc', publish_rate_hz=20.0)
    plc = PlcServer(channel, ['joint_1'])
    plc.publish(plc_state(0.9))
    plc.start()
    probe.subscribe('/plc/speed_override', Float64, LATCHED)  # PLC values are latched: late joiners see them
    commands = probe.node.create_publisher(Float64, '/twin/commands/speed_override', 10)
    endpoint = f'opc.tcp://127.0.0.1:{free_port()}/twin'
    params = parameters(tmp_path / 'bridge.yaml', f'{{endpoint: "{endpoint}", security: {{enabled: false}}}}',
                        f"""{{enabled: true,
      opcua: {{endpoint: "{channel.endpoint}", namespace: "{NAMESPACE}", publishing_interval: 0.02, timeout: 2.0}},
      variables: [Workcell.SpeedOverride], topics: [/plc/speed_override], kinds: [float64]}}""")
    start_process(OPCUA_BRIDGE, '--ros-args', '--params-file', str(params))

    async def setpoint() -> float:
        async with Client(endpoint, timeout=2) as client:
            index = await client.get_namespace_index(TWIN_NAMESPACE)
            return await client.get_node(ua.NodeId(f'{CONTROLLER}/SpeedOverrideSetpoint', index)).read_value()

    try:
        probe.wait_for('/plc/speed_override', lambda ms: any(m.data == 0.9 for m in ms), 20.0)
        # an operator request shows in SpeedOverrideSetpoint, and goes to the actuation node only
        eventually(lambda: asyncio.run(setpoint()) == 30.0, 20.0, lambda: commands.publish(Float64(data=0.3)))
        probe.sleep(0.5)
        assert plc.take_speed_override_requests() == []

        plc.stop()
        restarted = time.monotonic()
        plc = PlcServer(channel, ['joint_1'])
        plc.publish(plc_state(0.65))
        plc.start()
        probe.wait_for('/plc/speed_override', lambda ms: any(m.data == 0.65 for m in ms), 20.0)
        assert time.monotonic() - restarted < 20.0
        commands.publish(Float64(data=0.2))
        probe.sleep(0.5)
        assert plc.take_speed_override_requests() == []
    finally:
        plc.stop()
