"""A SCADA client's speed override over OPC UA reaches the cell only through the actuation node.

Real processes on the test's DDS domain: the simulated cell (workcell_sim: PLC, command channel,
ground truth), the actuation node and the OPC UA bridge, all on their shipped parameter files
with private ports. The client logs in over Basic256Sha256 Sign&Encrypt and writes the
controller's SpeedOverrideSetpoint; the actuation audit and the cell must show the request ramped
by ``limits.max_speed_step``.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Client, ua
from diagnostic_msgs.msg import DiagnosticArray
from sandbox import free_port
from std_msgs.msg import Float64

from harness import NodeProcess, TopicProbe, isolated_config, statuses
from opcua_fixtures import connect, make_certificates
from twin_bridge.opcua_config import OpcUaBridgeConfig
from twin_core.config import build, ros_parameters
from twin_interfaces.msg import CommandAudit, WorkcellTruth
from twin_ros.common import LATCHED

pytestmark = pytest.mark.integration

TRUTH, AUDIT, PLC = '/workcell_sim/truth', '/twin/actuation/audit', '/plc/speed_override'
SETPOINT = 'DeviceSet/cell_1/Controllers/controller/ParameterSet/SpeedOverrideSetpoint'
TRUTH_RATE_HZ = 50.0
# Ramp steps 0.5 s apart, so every step shows at the cell for 25 truth samples; a value that reached
# the cell past the actuation node would show there too, out of order.
COMMANDS_PER_S = 2.0


def parameters(path: Path, node: str) -> dict[str, Any]:
    """The ros__parameters of ``node`` in ``path``."""
    return yaml.safe_load(path.read_text())[node]['ros__parameters']


def edit(path: Path, node: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the ros__parameters of ``node`` in ``path``."""
    document = yaml.safe_load(path.read_text())
    change(document[node]['ros__parameters'])
    path.write_text(yaml.safe_dump(document))


def ramp(start: float, target: float, step: float) -> list[float]:
    """The speed overrides the actuation node sends to go from ``start`` up to ``target``."""
    values, value = [], start
    while value < target:
        value = min(round(value + step, 9), target)
        values.append(value)
    return values


def changes(values: Sequence[float]) -> list[float]:
    """``values`` without repeats: the successive values the cell took."""
    return [round(v, 9) for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 10 ms until it holds or ``timeout`` s pass; its final value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return condition()


async def logged_in(endpoint: str, files: dict[str, Path], bridge: NodeProcess, timeout: float = 60.0) -> Client:
    """A secure session once the bridge's server is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(endpoint, files)
        except (OSError, TimeoutError, ua.UaError):
            if bridge.process.poll() is not None:
                raise AssertionError(f'opcua_bridge exited: {bridge.output()[-2000:]}') from None
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def refusal(write: Awaitable[Any]) -> str:
    """The Bad status code name a write was refused with ('' if it was accepted)."""
    try:
        await write
    except ua.UaStatusCodeError as error:
        return type(error).__name__
    return ''


def test_a_speed_override_step_written_over_opcua_is_ramped_by_the_actuation_node(
        start_process: Any, probe: TopicProbe, tmp_path: Path) -> None:
    config = isolated_config(tmp_path)
    actuation, workcell, bridge = config / 'actuation.yaml', config / 'workcell.yaml', config / 'opcua_bridge.yaml'
    step = parameters(actuation, 'actuation')['limits']['max_speed_step']
    edit(actuation, 'actuation', lambda p: p['limits'].update(max_commands_per_s=COMMANDS_PER_S))
    edit(workcell, 'workcell_sim', lambda p: p.update(truth_rate_hz=TRUTH_RATE_HZ))
    plc_endpoint = parameters(workcell, 'workcell_sim')['channels']['plc']['endpoint']
    endpoint = f'opc.tcp://127.0.0.1:{free_port()}/twin'
    files = make_certificates(tmp_path / 'pki', parameters(bridge, 'opcua_bridge')['server']['application_uri'])

    def private(params: dict[str, Any]) -> None:  # the shipped file, on private ports and certificates
        params['server']['endpoint'] = endpoint
        params['server']['security'].update(certificate=str(files['server_cert']), private_key=str(files['server_key']),
                                            trust_dir=str(files['client_cert'].parent), users_file=str(files['users']))
        params['client']['opcua']['endpoint'] = plc_endpoint

    edit(bridge, 'opcua_bridge', private)
    build(OpcUaBridgeConfig, ros_parameters(bridge, 'opcua_bridge'), 'opcua_bridge')  # every key known and valid

    probe.subscribe(TRUTH, WorkcellTruth, 1000)
    probe.subscribe(AUDIT, CommandAudit, 100)
    probe.subscribe(PLC, Float64, LATCHED)
    probe.subscribe('/diagnostics', DiagnosticArray)
    start_process('workcell_sim', '--ros-args', '--params-file', str(workcell))
    start_process('actuation_node', '--ros-args', '--params-file', str(actuation))
    bridge_process = start_process('opcua_bridge', '--ros-args', '--params-file', str(bridge))
    probe.wait_for(TRUTH, lambda ms: len(ms) >= 5 and ms[-1].speed_override == 1.0, 60.0)

    def cell() -> float:
        return probe.messages(TRUTH)[-1].speed_override

    marks: dict[str, int] = {}

    async def operate() -> dict[str, str]:
        client = await logged_in(endpoint, files, bridge_process)
        try:
            index = await client.get_namespace_index('urn:ros2-digital-twin:twin')
            setpoint = client.get_node(ua.NodeId(SETPOINT, index))
            refused = {'120 %': await refusal(setpoint.write_value(120.0)),
                       'NaN': await refusal(setpoint.write_value(float('nan'))),
                       'Float': await refusal(setpoint.write_value(ua.Variant(50.0, ua.VariantType.Float)))}
            # Slowing down is never ramped. Repeated until the cell takes it: the first writes may
            # precede DDS discovery.
            for _ in range(40):
                await setpoint.write_value(20.0)
                if await until(lambda: cell() == 0.2, 0.5):
                    break
            assert cell() == 0.2, 'the cell did not slow down to 0.2'
            # From the last sample at 0.2 on; the next ramp slot is up to 0.5 s away.
            marks.update({topic: max(0, len(probe.messages(topic)) - 1) for topic in (TRUTH, PLC)})
            await setpoint.write_value(100.0)  # one step request: 0.2 -> 1.0
            assert await until(lambda: cell() == 1.0, 15.0), 'the cell did not get back to 1.0'
            await asyncio.sleep(1.0)  # the cell must stay there: nothing else was commanded
            return refused
        finally:
            await client.disconnect()

    refused = asyncio.run(operate())
    assert refused == {'120 %': 'BadOutOfRange', 'NaN': 'BadOutOfRange', 'Float': 'BadTypeMismatch'}

    expected = ramp(0.2, 1.0, step)
    assert len(expected) > 1 and all(b - a <= step + 1e-9 for a, b in pairwise([0.2, *expected]))
    audit = probe.messages(AUDIT)
    sent = [a for a in audit if a.command == 'speed_override' and (a.ack_ok or a.ack_error)]
    assert [round(a.value[0], 9) for a in sent] == [0.2, *expected], sent  # every command the cell got
    assert all((a.source, a.accepted, a.ack_ok) == ('operator', True, True) for a in sent), sent
    assert not [a for a in audit if a.source == 'operator' and not a.accepted]  # invalid writes never got there
    # The request came while the rate limit held the ramp back: a value sent to the cell past the
    # actuation node would have shown there before the first ramp step.
    assert any(list(a.value) == [1.0] and a.accepted and not a.ack_ok and 'deferred' in a.reason
               for a in audit), audit

    truth = changes([m.speed_override for m in probe.messages(TRUTH)[marks[TRUTH]:]])
    assert truth == [0.2, *expected], truth  # every ramp step, in order, and nothing else
    probe.wait_for(PLC, lambda ms: ms[-1].data == 1.0, 5.0)
    plc = changes([m.data for m in probe.messages(PLC)[marks[PLC]:]])  # as the bridge reads the cell's PLC
    assert plc[-1] == 1.0 and all(b - a <= step + 1e-9 for a, b in pairwise(plc)), plc

    def counted(arrays: Sequence[DiagnosticArray]) -> bool:
        server = statuses(arrays, 'opcua_bridge: server').get('opcua_bridge: server')
        values = {kv.key: kv.value for kv in server.values} if server else {}
        return values.get('rejected_commands') == '3'

    probe.wait_for('/diagnostics', counted, 5.0)
