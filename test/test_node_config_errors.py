"""A configuration error ends every node with exit code 2 and one FATAL line, never a traceback.

Unknown parameter keys, missing files and unreadable parameter files are refused the same way
by a node started by hand as by the launchers' check before anything starts.
"""
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter

from harness import CONFIG_DIR, isolated_config
from twin_anomaly.config import AnomalyConfig
from twin_bag.config import PlayerConfig, RecorderConfig
from twin_bridge.cloud_config import CloudUploaderConfig
from twin_bridge.mqtt_config import MqttBridgeConfig
from twin_bridge.opcua_config import OpcUaBridgeConfig
from twin_bringup.node_table import load_node_table
from twin_control.config import ActuationConfig
from twin_core.config import ConfigError, build, describe
from twin_maintenance.config import MaintenanceConfig
from twin_predictor.config import PredictorConfig
from twin_ros.common import declare_config
from twin_sensors.camera import CameraConfig
from twin_sim.sim_config import WorkcellSimConfig
from twin_state.config import StateConfig

LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']
MISSING = '/nonexistent/twin/file'


@dataclass(frozen=True)
class Started:
    """How a node is started by hand: executable, node name and its arguments before --ros-args."""

    executable: str
    name: str
    parameter_files: tuple[str, ...] = ()
    arguments: tuple[str, ...] = ()

    def command(self, *parameters: str) -> list[str]:
        ros_args = ['--ros-args', '-r', f'__node:={self.name}']
        for name in self.parameter_files:
            ros_args += ['--params-file', str(CONFIG_DIR / name)]
        for parameter in parameters:
            ros_args += ['-p', parameter]
        return [self.executable, *self.arguments, *ros_args]


def _every_node() -> list[Started]:
    table = load_node_table(CONFIG_DIR)
    entries = [*table.select(with_sim=True, with_view=True), table.fleet.aggregator]
    return [Started(e.executable, e.name, e.parameters) for e in entries] + [
        Started('mqtt_bridge', 'mqtt_bridge', ('mqtt_bridge.yaml',)),
        Started('opcua_bridge', 'opcua_bridge', ('opcua_bridge.yaml',)),
        Started('cloud_uploader', 'cloud_uploader', ('cloud_uploader.yaml',)),
        Started('twin_record', 'twin_recorder'),
        Started('twin_play', 'twin_player', arguments=(MISSING,))]


NODES = {node.executable: node for node in _every_node()}


def refused(process, timeout: float = 30.0) -> str:
    """The one line a process printed before it exited with code 2."""
    assert process.wait(timeout=timeout) == 2, process.output()
    output = process.output()
    assert 'Traceback' not in output, output
    lines = output.splitlines()
    assert len(lines) == 1 and '[FATAL]' in lines[0] and 'configuration error: ' in lines[0], output
    return lines[0]


# ----------------------------------------------------------------- unknown keys

@pytest.mark.parametrize('node', NODES.values(), ids=NODES)
def test_an_unknown_parameter_stops_the_node_with_one_line(start_process, node):
    line = refused(start_process(*node.command('no_such_key:=1')))
    assert f'configuration error: {node.name}.no_such_key: unknown key' in line


@pytest.mark.parametrize('executable, parameter, message', [
    ('imu_driver', 'serial.buad:=115200', "imu_driver.serial.buad: unknown key (did you mean 'baud'?)"),
    ('health_monitor', 'stale_aftr:=1.0', "health_monitor.stale_aftr: unknown key (did you mean 'stale_after'?)"),
    ('opcua_bridge', 'client.setpoint_topic:=plc/setpoint', 'opcua_bridge.client.setpoint_topic: unknown key'),
    ('lidar_driver', 'udpp.port:=7000', "lidar_driver.udpp: unknown key (did you mean 'udp'?)"),
])
def test_a_misspelt_or_obsolete_key_is_named_with_the_closest_one(start_process, executable, parameter, message):
    assert message in refused(start_process(*NODES[executable].command(parameter)))


def test_ros_parameters_of_every_node_stay_allowed(start_process, probe):
    probe.subscribe('/diagnostics', DiagnosticArray)
    monitor = start_process(*NODES['health_monitor'].command(
        'use_sim_time:=false', 'start_type_description_service:=false',
        'qos_overrides./diagnostics.publisher.depth:=5'))
    probe.wait_for('/diagnostics', lambda arrays: any(
        s.hardware_id == 'health_monitor' or s.name.startswith('health_monitor') for a in arrays for s in a.status),
        timeout=20)
    assert monitor.stop() == 0, monitor.output()


@dataclass(frozen=True)
class Channel:
    rate_hz: float = 100.0


@dataclass(frozen=True)
class Settings:
    channel: Channel = Channel()
    names: tuple[str, ...] = ()


@pytest.mark.parametrize('name, message', [
    ('channel.rate_hzz', "typed.channel.rate_hzz: unknown key (did you mean 'rate_hz'?)"),
    ('chanel.rate_hz', "typed.chanel: unknown key (did you mean 'channel'?)"),
    ('names.first', "typed.names.first: unknown key ('names' is a value, not a section)"),
])
def test_declare_config_refuses_overrides_the_schema_does_not_declare(make_node, name, message):
    with pytest.raises(ConfigError) as error:
        declare_config(make_node(Parameter(name, value=1.0)), Settings)
    assert str(error.value) == message


def test_declare_config_accepts_the_parameters_rclpy_declares(make_node):
    node = make_node(Parameter('use_sim_time', value=True), Parameter('qos_overrides./x.publisher.depth', value=5),
                     Parameter('channel.rate_hz', value=20.0))
    assert declare_config(node, Settings) == Settings(Channel(20.0))


# ----------------------------------------------------------------- a node that fails after it started something

@pytest.mark.parametrize('executable, parameter, message', [
    # the MQTT core exists when the message type is looked up
    ('mqtt_bridge', 'ros_to_mqtt.types:=[foo/msg/Bar, twin_interfaces/msg/TwinState]',
     'message type foo/msg/Bar is not installed'),
    # the spool, upload thread and workers do not exist yet when the types are loaded
    ('cloud_uploader', 'types:=[foo/msg/Bar, std_msgs/msg/String, std_msgs/msg/String, std_msgs/msg/String]',
     'cloud_uploader.types: '),
])
def test_a_half_built_node_is_torn_down_without_a_traceback(start_process, executable, parameter, message):
    assert message in refused(start_process(*NODES[executable].command(parameter)))


# ----------------------------------------------------------------- missing files

@pytest.mark.parametrize('executable, parameters, key', [
    ('state_node', [f'urdf:={MISSING}'], 'twin_state.urdf'),
    ('actuation_node', [f'limits.urdf:={MISSING}'], 'actuation.limits.urdf'),
    ('maintenance_node', [f'urdf:={MISSING}'], 'maintenance_planner.urdf'),
    ('maintenance_node', [f'rul_model:={MISSING}'], 'maintenance_planner.rul_model'),
    ('anomaly_node', [f'model:={MISSING}'], 'anomaly_detector.model'),
    ('predictor_node', [f'model:={MISSING}'], 'predictor.model'),
    ('mqtt_bridge', [f'broker.password_file:={MISSING}'], 'mqtt_bridge.broker.password_file'),
    ('mqtt_bridge', ['broker.tls.enabled:=true', f'broker.tls.ca_file:={MISSING}'], 'mqtt_bridge.broker.tls.ca_file'),
    ('twin_play', [], 'twin_player.bag'),
])
def test_a_missing_file_is_refused_before_the_node_starts(start_process, executable, parameters, key):
    line = refused(start_process(*NODES[executable].command(*parameters)))
    assert f'configuration error: {key}: file not found: {MISSING}' in line


def opcua_security_files(directory: Path) -> dict[str, str]:
    """Certificate, key and trust directory (contents do not matter: the users file is missing)."""
    (directory / 'trusted').mkdir()
    for name in ('server_cert.der', 'server_key.pem'):
        (directory / name).write_bytes(b'')
    return {'certificate': str(directory / 'server_cert.der'), 'private_key': str(directory / 'server_key.pem'),
            'trust_dir': str(directory / 'trusted'), 'users_file': str(directory / 'users')}


def test_opcua_bridge_without_its_users_file_is_refused_the_same_way_every_time(start_process, tmp_path):
    files = opcua_security_files(tmp_path)
    parameters = [f'server.security.{key}:={value}' for key, value in files.items()]
    for _ in range(10):
        line = refused(start_process(*NODES['opcua_bridge'].command(*parameters)))
        assert f'opcua_bridge.server.security.users_file: file not found: {files["users_file"]}' in line


def test_a_missing_parameter_file_is_refused_with_one_line(start_process, tmp_path):
    missing = tmp_path / 'missing.yaml'
    line = refused(start_process('health_monitor', '--ros-args', '--params-file', str(missing)))
    assert f'configuration error: --params-file: file not found: {missing}' in line


def test_a_priority_the_launcher_cannot_have_given_is_refused_with_one_line(ros_env):
    """``TWIN_NICE`` comes from the node table's ``nice`` (checked there); set by hand it is checked too."""
    monitor = subprocess.run(NODES['health_monitor'].command(), env={**ros_env, 'TWIN_NICE': 'low'},
                             capture_output=True, text=True, timeout=30)
    output = monitor.stdout + monitor.stderr
    assert monitor.returncode == 2 and 'Traceback' not in output, output
    assert "configuration error: TWIN_NICE='low': expected an integer from 0 (normal) to 19" in output


@pytest.mark.parametrize('schema, mapping, message', [
    (WorkcellSimConfig, {'urdf': MISSING}, f'sim.urdf: file not found: {MISSING}'),
    (WorkcellSimConfig, {'scenario': 'scenarios/missing.yaml'},
     f'sim.scenario: file not found: {CONFIG_DIR / "scenarios/missing.yaml"}'),
    (StateConfig, {'urdf': MISSING}, f'sim.urdf: file not found: {MISSING}'),
    (ActuationConfig, {'limits': {'urdf': MISSING}}, f'sim.limits.urdf: file not found: {MISSING}'),
    (MaintenanceConfig, {'rul_model': 'models/missing.json'},
     f'sim.rul_model: file not found: {CONFIG_DIR / "models/missing.json"}'),
    (AnomalyConfig, {'model': MISSING}, f'sim.model: file not found: {MISSING}/model.json'),
    (PredictorConfig, {'model': MISSING}, f'sim.model: file not found: {MISSING}/metadata.json'),
    (PlayerConfig, {'bag': MISSING}, f'sim.bag: file not found: {MISSING}'),
    (CameraConfig, {'url': f'{MISSING}/cell.avi'}, f'sim.url: file not found: {MISSING}/cell.avi'),  # a video file
    (MqttBridgeConfig, {'broker': {'tls': {'enabled': True, 'cert_file': MISSING}}},
     f'sim.broker.tls.cert_file: file not found: {MISSING}'),
    (OpcUaBridgeConfig, {'server': {'security': {'certificate': MISSING}}},
     f'sim.server.security.certificate: file not found: {MISSING}'),
])
def test_schemas_name_a_missing_file_by_its_key(schema, mapping, message):
    with pytest.raises(ConfigError) as error:
        build(schema, mapping, 'sim')
    assert str(error.value) == message


@pytest.mark.parametrize('schema, mapping', [
    (StateConfig, {'urdf': ''}),  # empty: config/arm.urdf
    (ActuationConfig, {'limits': {'urdf': ''}}),
    (PredictorConfig, {'model': ''}),  # empty: config/models/predictor
    (MaintenanceConfig, {'urdf': ''}),
    (MqttBridgeConfig, {'broker': {'password_file': '', 'tls': {'enabled': False, 'ca_file': MISSING}},
                        'outbox': {'directory': MISSING}}),  # TLS off; the outbox is created
    (OpcUaBridgeConfig, {'server': {'security': {'enabled': False, 'users_file': MISSING}}}),
    (OpcUaBridgeConfig, {'server': {'enabled': False}}),
    (CloudUploaderConfig, {'spool': {'directory': MISSING}}),  # created
    (RecorderConfig, {'output': MISSING}),  # created
    (CameraConfig, {'url': '/dev/video7'}),  # a device may appear later
])
def test_files_that_are_optional_or_created_are_not_required(schema, mapping):
    build(schema, mapping, 'sim')


@dataclass(frozen=True)
class Tool:
    path: str = field(default=MISSING, metadata=describe('A file the tool reads.'))

    def required_paths(self) -> dict[str, Path]:
        return {'path': Path(self.path)}


def test_required_paths_are_checked_for_defaults_too():
    with pytest.raises(ConfigError, match=f'^tool.path: file not found: {MISSING}$'):
        build(Tool, {}, 'tool')


@pytest.mark.integration
def test_the_launcher_refuses_a_missing_urdf_before_anything_starts(start_process, tmp_path):
    config = isolated_config(tmp_path)
    workcell = config / 'workcell.yaml'
    parameters = yaml.safe_load(workcell.read_text())
    parameters['workcell_sim']['ros__parameters']['urdf'] = MISSING
    workcell.write_text(yaml.safe_dump(parameters))
    launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    assert launcher.wait(timeout=30) == 2
    assert f'workcell_sim.urdf: file not found: {MISSING}' in launcher.output()
    assert 'starting' not in launcher.output() and 'Traceback' not in launcher.output()
