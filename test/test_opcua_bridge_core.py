"""OPC UA bridge core against real asyncua servers and clients on loopback."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from sandbox import free_port

from opcua_fixtures import connect as connect_secure
from opcua_fixtures import make_certificates
from twin_bridge.opcua_config import ClientConfig, SecurityConfig, ServerConfig
from twin_bridge.opcua_server import TwinServer
from twin_bridge.opcua_space import TwinAddressSpace, from_datetime, speed_override_command, to_datetime
from twin_core.config import ConfigError, build
from twin_core.levels import Level, Risk
from twin_core.stamps import from_seconds
from twin_maintenance.scheduler import PlannedTask
from twin_sim.hardware import PlcChannel
from twin_sim.plc import NAMESPACE, PlcServer

ARM = ('DeviceSet', 'cell_1', 'MotionDevices', 'arm')
CONTROLLER = 'DeviceSet/cell_1/Controllers/controller/ParameterSet'
SETPOINT = f'{CONTROLLER}/SpeedOverrideSetpoint'


class History:
    """A HistorySource recording its requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, int, int]] = []

    def __call__(self, path: str, start: int, end: int, max_samples: int) -> tuple[list[float], list[float]]:
        self.requests.append((path, start, end, max_samples))
        return [1000.0, 1000.5, 1001.0], [0.1, 0.2, 0.3]


class Requests(list):
    """A CommandSink recording (speed override, user) pairs."""

    def __call__(self, value: float, user: str) -> None:
        self.append((value, user))


@pytest.fixture(scope='module')
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TwinServer, dict[str, Path], History]]:
    config = ServerConfig(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/twin')
    files = make_certificates(tmp_path_factory.mktemp('pki'), config.application_uri)
    config = build(ServerConfig, {'endpoint': config.endpoint, 'write_rate_hz': 100.0, 'security': {
        'certificate': str(files['server_cert']), 'private_key': str(files['server_key']),
        'trust_dir': str(files['server_cert'].parent / 'trusted'), 'users_file': str(files['users'])}}, 'server')
    history = History()
    server = TwinServer(config, history, Requests())
    server.start()
    yield server, files, history
    server.stop()


async def connect(server: TwinServer, files: dict[str, Path], who: str = 'client', password: str = 's3cret') -> Client:
    return await connect_secure(server.config.endpoint, files, who, password)


def run_client(server: TwinServer, files: dict[str, Path], work: Any) -> Any:
    async def main() -> Any:
        client = await connect(server, files)
        try:
            index = await client.get_namespace_index(server.config.namespace)
            return await work(client, index)
        finally:
            await client.disconnect()
    return asyncio.run(main())


def test_address_space_follows_robotics_naming_with_units(secure: Any) -> None:
    server, files, _ = secure

    async def work(client: Client, index: int) -> dict[str, Any]:
        async def child(*path: str) -> Any:
            return await client.nodes.objects.get_child([f'{index}:{p}' for p in path])
        position = await child(*ARM, 'Axes', 'joint_2', 'ParameterSet', 'ActualPosition')
        temperature = await child(*ARM, 'PowerTrains', 'joint_2', 'Motor', 'ParameterSet', 'MotorTemperature')
        level = await child('Twin', 'Health', 'Level')
        return {'position_unit': await (await position.get_child(f'{index}:EngineeringUnits')).read_value(),
                'temperature_unit': await (await temperature.get_child(f'{index}:EngineeringUnits')).read_value(),
                'level': await level.read_value(),
                'history': await position.read_attribute(ua.AttributeIds.Historizing)}

    found = run_client(server, files, work)
    assert found['position_unit'].DisplayName.Text == 'rad' and found['position_unit'].UnitId == 0x433831  # C81
    assert found['temperature_unit'].UnitId == 4408652  # CEL, degree Celsius
    assert found['level'] == 3  # STALE until diagnostics arrive
    assert found['history'].Value.Value is True


def test_values_update_with_source_timestamps(secure: Any) -> None:
    server, files, _ = secure
    space = server.space
    stamp = time.time() - 2.0
    stamp_ns = from_seconds(stamp)
    server.update({**space.axes(['joint_1', 'joint_9'], position=[0.25], velocity=[-1.5], temperature=[41.0],
                                load=[0.3]),
                   **space.state(stamp_ns, False, 7, 0.5, False, 0.8)}, stamp_ns)
    server.update(space.health([(Level.OK, '/twin/sync', 'ok'), (Level.WARN, '/twin/imu', 'late'),
                                (Level.WARN, '/twin/lidar', 'slow')]))
    server.update(space.alert('joint_2.velocity', 'residual', Level.WARN, 'residual 4.2 > 3.0', True))
    server.update(space.maintenance(3, [PlannedTask('joint_2', 'replace gearbox', Risk.HIGH, stamp, stamp + 600.0,
                                                    stamp + 3600.0, 7200.0)], ['imu']))
    time.sleep(0.1)

    async def work(client: Client, index: int) -> dict[str, Any]:
        values = {}
        for key in (space.axis('joint_1', 'ActualPosition'), space.axis('joint_1', 'ActualSpeed'),
                    space.motor('joint_1', 'MotorTemperature'), space.motor('joint_1', 'EffectiveLoadRate'),
                    'Twin/State/TaskId', 'Twin/Health/Level', 'Twin/Health/Message', 'Twin/Alerts/Active',
                    'Twin/Maintenance/NextComponent', 'Twin/Maintenance/Unplaced', 'Twin/Maintenance/NextRul',
                    'DeviceSet/cell_1/Controllers/controller/ParameterSet/SpeedOverride'):
            values[key] = await client.get_node(ua.NodeId(key, index)).read_data_value()
        return values

    values = run_client(server, files, work)
    position = values[space.axis('joint_1', 'ActualPosition')]
    assert position.Value.Value == 0.25 and abs(position.SourceTimestamp.timestamp() - stamp) < 1e-3
    assert values[space.axis('joint_1', 'ActualSpeed')].Value.Value == -1.5
    assert values[space.motor('joint_1', 'MotorTemperature')].Value.Value == 41.0
    assert values[space.motor('joint_1', 'EffectiveLoadRate')].Value.Value == pytest.approx(30.0)
    assert values['Twin/State/TaskId'].Value.Value == 7
    assert values['DeviceSet/cell_1/Controllers/controller/ParameterSet/SpeedOverride'].Value.Value == 80.0
    assert values['Twin/Health/Level'].Value.Value == 1
    assert values['Twin/Health/Message'].Value.Value == '/twin/imu: late; /twin/lidar: slow'
    assert values['Twin/Alerts/Active'].Value.Value == ['joint_2.velocity (residual): residual 4.2 > 3.0']
    assert values['Twin/Maintenance/NextComponent'].Value.Value == 'joint_2'
    assert values['Twin/Maintenance/Unplaced'].Value.Value == ['imu']
    assert values['Twin/Maintenance/NextRul'].Value.Value == 7200.0
    assert server.stats().writes > 0


def test_history_read_is_answered_by_the_history_source(secure: Any) -> None:
    server, files, history = secure

    async def work(client: Client, index: int) -> list[ua.DataValue]:
        node = client.get_node(ua.NodeId(server.space.axis('joint_3', 'ActualPosition'), index))
        return await node.read_raw_history(to_datetime(1000.25), to_datetime(1001.5))

    values = run_client(server, files, work)
    assert [v.Value.Value for v in values] == [0.1, 0.2, 0.3]
    assert [v.SourceTimestamp.timestamp() for v in values] == [1000.0, 1000.5, 1001.0]
    assert history.requests[-1] == ('joint_3.position', 1_000_250_000_000, 1_001_500_000_000, 0)


def test_datetimes_are_nanoseconds_since_the_epoch_and_the_null_datetime_is_zero() -> None:
    moment = datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert abs(from_datetime(moment) - 1_777_636_800_250_000_000) < 1_000  # within the datetime's microsecond
    assert from_datetime(moment.replace(tzinfo=None)) == from_datetime(moment)  # naive: UTC
    assert from_datetime(moment.astimezone(timezone(timedelta(hours=2)))) == from_datetime(moment)
    assert from_datetime(None) == from_datetime(datetime(1601, 1, 1, tzinfo=UTC)) == 0
    assert to_datetime(1000.5) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=1000.5)


@pytest.mark.parametrize('who, password, status', [
    ('stranger', 's3cret', 'BadCertificateUntrusted'), ('client', 'wrong', 'BadUserAccessDenied')])
def test_untrusted_certificates_and_wrong_passwords_are_rejected(secure: Any, who: str, password: str,
                                                                  status: str) -> None:
    server, files, _ = secure
    with pytest.raises(ua.UaStatusCodeError) as raised:
        asyncio.run(connect(server, files, who, password))
    assert type(raised.value).__name__ == status


def test_only_the_encrypted_endpoint_is_offered(secure: Any) -> None:
    server, _, _ = secure

    async def endpoints() -> list[ua.EndpointDescription]:
        return await Client(server.config.endpoint, timeout=5).connect_and_get_server_endpoints()

    offered = asyncio.run(endpoints())
    assert {(e.SecurityPolicyUri.split('#')[-1], e.SecurityMode) for e in offered} == {
        ('Basic256Sha256', ua.MessageSecurityMode.SignAndEncrypt)}
    assert [t.TokenType for t in offered[0].UserIdentityTokens] == [ua.UserTokenType.UserName]


def test_config_rejects_insecure_remote_endpoints_and_bad_plc_maps(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="anonymous, unencrypted server may only listen on .* not '10.0.0.5'"):
        build(ServerConfig, {'endpoint': 'opc.tcp://10.0.0.5:4841/twin', 'security': {'enabled': False}}, 'server')
    security = {key: str(tmp_path / key) for key in ('certificate', 'private_key', 'trust_dir', 'users_file')}
    for path in security.values():  # a secured server needs its files
        Path(path).touch()
    build(ServerConfig, {'endpoint': 'opc.tcp://10.0.0.5:4841/twin', 'security': security}, 'server')  # any host
    build(ServerConfig, {'endpoint': 'opc.tcp://localhost:4841/twin', 'security': {'enabled': False}}, 'server')
    with pytest.raises(ConfigError, match='server: endpoint must look like opc.tcp://<host>:<port>/<path>'):
        build(ServerConfig, {'endpoint': 'opc.tcp://10.0.0.5/twin'}, 'server')
    client = build(ClientConfig, {'opcua': {'endpoint': 'opc.tcp://plc-3.cell.example:4840/plc'}}, 'client')
    assert client.opcua.endpoint == 'opc.tcp://plc-3.cell.example:4840/plc'  # the PLC may be on the network
    with pytest.raises(ConfigError, match="client.opcua: endpoint 'opc.tcp://plc 3:4840/plc': host must be"):
        build(ClientConfig, {'opcua': {'endpoint': 'opc.tcp://plc 3:4840/plc'}}, 'client')
    with pytest.raises(ConfigError, match='same length'):
        build(ClientConfig, {'variables': ['Workcell.SpeedOverride'], 'topics': []}, 'client')
    with pytest.raises(ConfigError, match='unknown key'):  # no topic may be written to the PLC
        build(ClientConfig, {'setpoint_topics': ['twin/commands/speed_override']}, 'client')


def test_alerts_track_active_anomalies() -> None:
    space = TwinAddressSpace(ServerConfig(security=SecurityConfig(enabled=False)))
    space.alert('imu', 'flat', 2, 'flat signal', True)
    values = space.alert('joint_1.position', 'residual', 1, 'drift', True)
    assert values['Twin/Alerts/ActiveCount'] == 2
    values = space.alert('imu', 'flat', 0, 'recovered', False)
    assert values['Twin/Alerts/Active'] == ['joint_1.position (residual): drift']
    assert values['Twin/Alerts/LastEvent'] == 'cleared imu (flat): recovered'


def test_the_plc_validates_speed_override_writes_of_its_clients() -> None:
    plc = PlcServer(PlcChannel(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/twin/plc'), ['joint_1'])
    plc.start()

    async def write(value: float) -> None:
        async with Client(plc.config.endpoint, timeout=5.0) as client:
            index = await client.get_namespace_index(NAMESPACE)
            await client.get_node(ua.NodeId('Workcell.SpeedOverride', index)).write_value(
                ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
    try:
        asyncio.run(write(0.4))
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            asyncio.run(write(1.4))
        assert plc.take_speed_override_requests() == [0.4]
    finally:
        plc.stop()


def test_setpoint_writes_of_logged_in_users_become_speed_override_requests(secure: Any) -> None:
    server, files, _ = secure
    requests: Requests = server.speed_override
    before = server.stats()

    async def work(client: Client, index: int) -> dict[str, Any]:
        setpoint = client.get_node(ua.NodeId(SETPOINT, index))
        refused = {}
        for name, values in (('above', [150.0]), ('below', [-0.5]), ('nan', [float('nan')]),
                             ('float', [ua.Variant(50.0, ua.VariantType.Float)]),
                             ('one bad in a request', [30.0, 101.0])):
            try:
                await client.write_values([setpoint] * len(values), values)
            except ua.UaStatusCodeError as error:
                refused[name] = type(error).__name__
        await setpoint.write_value(42.5)
        await setpoint.write_value(0.0)
        try:
            await client.get_node(ua.NodeId(f'{CONTROLLER}/SpeedOverride', index)).write_value(10.0)
        except ua.UaStatusCodeError as error:
            refused['actual'] = type(error).__name__
        return {'refused': refused, 'value': await setpoint.read_value(),
                'range': await (await setpoint.get_child(f'{index}:EURange')).read_value(),
                'unit': await (await setpoint.get_child(f'{index}:EngineeringUnits')).read_value()}

    found = run_client(server, files, work)
    assert found['refused'] == {'above': 'BadOutOfRange', 'below': 'BadOutOfRange', 'nan': 'BadOutOfRange',
                                'float': 'BadTypeMismatch', 'one bad in a request': 'BadOutOfRange',
                                'actual': 'BadUserAccessDenied'}  # the cell's own value is read-only
    assert requests[-2:] == [(0.425, 'scada'), (0.0, 'scada')]  # in the order written, as 0..1
    assert 0.3 not in [value for value, _ in requests]  # a refused request writes nothing of it
    assert found['value'] == 0.0
    assert (found['range'].Low, found['range'].High) == (0.0, 100.0) and found['unit'].DisplayName.Text == '%'
    after = server.stats()
    assert (after.commands - before.commands, after.rejected_commands - before.rejected_commands) == (2, 5)
    assert 'SpeedOverrideSetpoint 101.0 % outside [0, 100] %' in after.last_error


def test_anonymous_sessions_may_not_command_the_cell() -> None:
    requests = Requests()
    server = TwinServer(ServerConfig(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/twin',
                                     security=SecurityConfig(enabled=False)), None, requests)
    server.start()

    async def write() -> None:
        async with Client(server.config.endpoint, timeout=5) as client:
            index = await client.get_namespace_index(server.config.namespace)
            await client.get_node(ua.NodeId(SETPOINT, index)).write_value(50.0)

    try:
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            asyncio.run(write())
        assert requests == [] and server.stats().rejected_commands == 1
    finally:
        server.stop()


def test_speed_override_setpoints_are_percent_doubles_and_optional() -> None:
    config = ServerConfig(security=SecurityConfig(enabled=False))
    assert SETPOINT not in TwinAddressSpace(config).variables  # no command sink: a read-only server
    space = TwinAddressSpace(config, commands=True)
    assert space.variables[SETPOINT].writable and space.speed_override_setpoint == SETPOINT
    assert [speed_override_command(ua.Variant(v, ua.VariantType.Double)) for v in (0.0, 20.0, 100.0)] == [0.0, 0.2, 1.0]
    for bad in (100.5, -1e-9, float('inf'), float('nan')):
        with pytest.raises(ValueError, match='outside'):
            speed_override_command(ua.Variant(bad, ua.VariantType.Double))
    for bad in (None, ua.Variant(True, ua.VariantType.Boolean), ua.Variant(50, ua.VariantType.Int32)):
        with pytest.raises(TypeError, match='Double'):
            speed_override_command(bad)
    assert space.operator_request(0.35) == {SETPOINT: 35.0}
    assert space.operator_request(1.5) == {} and TwinAddressSpace(config).operator_request(0.5) == {}
