"""Drivers reading devices that are not on 127.0.0.1, and DDS with the shipped network profile.

The device side runs in a network namespace joined to this one by a veth pair that each test
creates (as root) and removes again: the driver binds or connects to 10.200.x.y addresses and the
device traffic crosses the veth. Both ends of the pair are on this machine, so nothing leaves it;
DDS between the driver and the test's probe stays on loopback (the harness's profile).

Each link takes a /30 of 10.200.0.0/16 named by its index (namespace ``twn<index>``); creating the
namespace claims the index, so concurrent runs never share addresses or names.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from network_devices import JOINTS, NO_RETURN_BEAM, PLC_STATE, TOO_CLOSE_BEAM, pattern_ranges
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan, Temperature

from harness import NodeProcess, statuses, wait_for
from twin_core.config import ConfigError, build
from twin_core.network import is_loopback
from twin_core.paths import resolve_executable
from twin_interfaces.msg import CellStatus
from twin_sensors.lidar import LidarConfig
from twin_sensors.plc import PlcDriverConfig
from twin_sensors.readers import UdpConfig
from twin_sim.settings import SimSettings

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config'
DEVICES = Path(__file__).resolve().parent / 'network_devices.py'
SUBNETS = ipaddress.ip_network('10.200.0.0/16')
BLOCKS = SUBNETS.num_addresses // 4
NETNS_ETC = Path('/etc/netns')
IP = shutil.which('ip') or 'ip'
PROFILE_PLACEHOLDER = '192.168.10.20'  # the address to edit in config/fastdds_network.xml


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize('host', ['192.168.10.21', '10.200.0.1', '0.0.0.0', 'lidar-1.cell.example'])
def test_the_lidar_driver_binds_an_address_on_the_network(host: str) -> None:
    assert build(LidarConfig, {'udp': {'host': host, 'port': 7502}}, 'lidar_driver').udp.host == host


@pytest.mark.parametrize('host, message', [
    ('192.168.10.256', "host '192.168.10.256' is not a valid IPv4 address"),
    ('192.168.10.21:7502', 'without scheme or port'),
    ('::1', 'the socket is IPv4'),
    ('', 'empty value'),
])
def test_the_lidar_driver_rejects_a_malformed_host(host: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f'^lidar_driver.udp: .*{re.escape(message)}'):
        build(LidarConfig, {'udp': {'host': host}}, 'lidar_driver')
    with pytest.raises(ValueError):
        UdpConfig(host=host)


def test_the_plc_driver_accepts_a_plc_on_the_network_and_rejects_malformed_endpoints() -> None:
    endpoint = 'opc.tcp://192.168.10.30:4840/plc'
    assert build(PlcDriverConfig, {'opcua': {'endpoint': endpoint}}, 'plc_driver').opcua.endpoint == endpoint
    for bad, message in [('opc.tcp://192.168.10.30/plc', 'the port is missing'),
                         ('192.168.10.30:4840', 'endpoint must look like opc.tcp://'),
                         ('opc.tcp://plc 3:4840/plc', 'host must be an IP address or a host name')]:
        with pytest.raises(ConfigError, match=f'^plc_driver.opcua: .*{re.escape(message)}'):
            build(PlcDriverConfig, {'opcua': {'endpoint': bad}}, 'plc_driver')


def addresses(tree: Any, path: str = '') -> Iterator[tuple[str, str]]:
    """(dotted key, host) of every ``*host`` value and ``*endpoint*`` URL in a parsed YAML tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from addresses(value, f'{path}.{key}' if path else str(key))
    elif isinstance(tree, list):
        for item in tree:
            yield from addresses(item, path)
    elif isinstance(tree, str) and path.endswith('host'):
        yield path, tree
    elif isinstance(tree, str) and 'endpoint' in path.rsplit('.', 1)[-1] and tree:
        yield path, urlsplit(tree).hostname or tree


def test_the_shipped_configs_keep_devices_on_loopback() -> None:
    """config/*.yaml is what the demo runs: every device, PLC and broker address in it is on loopback."""
    found = {f'{path.name}:{key}': host for path in sorted(CONFIG.glob('*.yaml'))
             for key, host in addresses(yaml.safe_load(path.read_text()))}
    assert len(found) >= 10, found  # lidar, command link, PLC, OPC UA bridge, MQTT broker, simulator, fleet
    assert {key: host for key, host in found.items() if not is_loopback(host)} == {}


# --------------------------------------------------------------------------- the veth link

def ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip`` (iproute2); raise with its message when ``check`` and it fails."""
    result = subprocess.run([IP, *arguments], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f'ip {" ".join(arguments)}: {result.stderr.strip()}')
    return result


@dataclass(frozen=True)
class VethLink:
    """A veth pair between a near side (the root namespace, or namespace ``near_namespace``) and
    namespace ``namespace``; ``near_address`` / ``far_address`` are the two ends of a /30."""

    index: int
    namespace: str
    near_namespace: str | None
    near_interface: str
    far_interface: str
    near_address: str
    far_address: str

    def run_far(self, *command: str) -> list[str]:
        """``command`` run inside the far namespace."""
        return [IP, 'netns', 'exec', self.namespace, *command]

    def run_near(self, *command: str) -> list[str]:
        """``command`` run on the near side."""
        if self.near_namespace is None:
            return list(command)
        return [IP, 'netns', 'exec', self.near_namespace, *command]

    def near_counter(self, name: str) -> int:
        """A statistics counter of the near interface, e.g. ``rx_packets``."""
        prefix = [] if self.near_namespace is None else ['-n', self.near_namespace]
        output = ip(*prefix, '-s', '-j', 'link', 'show', self.near_interface).stdout
        stats = json.loads(output)[0]['stats64']
        direction, counter = name.split('_', 1)
        return int(stats[direction][counter])


def _block_addresses(index: int) -> tuple[str, str]:
    base = SUBNETS.network_address + 4 * index
    return str(base + 1), str(base + 2)


def _addresses_in_use() -> str:
    return ip('-o', '-4', 'addr', 'show').stdout


def _claim_block() -> tuple[int, str]:
    """Create namespace ``twn<index>`` for a free /30; the first free index from one derived from the pid."""
    in_use = _addresses_in_use()
    start = (os.getpid() * 7) % BLOCKS
    for offset in range(BLOCKS):
        index = (start + offset) % BLOCKS
        near, far = _block_addresses(index)
        if f' {near}/' in in_use or f' {far}/' in in_use:
            continue
        namespace = f'twn{index}'
        result = ip('netns', 'add', namespace, check=False)
        if result.returncode == 0:
            return index, namespace
        if 'File exists' not in result.stderr:
            raise RuntimeError(f'ip netns add {namespace}: {result.stderr.strip()}')
    raise RuntimeError('no free /30 left in 10.200.0.0/16')


def _stop_processes_in(namespace: str) -> None:
    """SIGTERM, then SIGKILL, what still runs in ``namespace`` (only this test's processes)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in ip('netns', 'pids', namespace, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        wait_for(lambda: not ip('netns', 'pids', namespace, check=False).stdout.split(), 5.0)


def _setup(link: VethLink) -> None:
    """Create the veth pair, move its ends and bring both up with their addresses."""
    ip('link', 'add', link.near_interface, 'type', 'veth', 'peer', 'name', link.far_interface)
    ip('link', 'set', link.far_interface, 'netns', link.namespace)
    near = [] if link.near_namespace is None else ['-n', link.near_namespace]
    if link.near_namespace is not None:
        ip('link', 'set', link.near_interface, 'netns', link.near_namespace)
        ip('-n', link.near_namespace, 'link', 'set', 'lo', 'up')
    ip(*near, 'addr', 'add', f'{link.near_address}/30', 'dev', link.near_interface)
    ip(*near, 'link', 'set', link.near_interface, 'up')
    ip('-n', link.namespace, 'addr', 'add', f'{link.far_address}/30', 'dev', link.far_interface)
    ip('-n', link.namespace, 'link', 'set', link.far_interface, 'up')
    ip('-n', link.namespace, 'link', 'set', 'lo', 'up')


def _teardown(link: VethLink) -> None:
    """Remove the pair and the namespaces, then check that nothing of them is left."""
    namespaces = [n for n in (link.namespace, link.near_namespace) if n is not None]
    for namespace in namespaces:
        _stop_processes_in(namespace)
    if link.near_namespace is None:
        ip('link', 'delete', link.near_interface, check=False)  # removes both ends
    for namespace in namespaces:
        ip('netns', 'delete', namespace, check=False)
        shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
    try:
        NETNS_ETC.rmdir()  # only when empty: no other namespace uses it
    except OSError:
        pass
    left = [n for n in namespaces if n in ip('netns', 'list').stdout.split() or (NETNS_ETC / n).exists()]
    assert not left, f'network namespaces left behind: {left}'
    assert ip('link', 'show', link.near_interface, check=False).returncode != 0, f'{link.near_interface} left behind'
    in_use = _addresses_in_use()
    assert f' {link.near_address}/' not in in_use and f' {link.far_address}/' not in in_use


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip('needs root: the test creates a network namespace and a veth pair')
    if shutil.which('ip') is None:
        pytest.skip('needs iproute2 (the `ip` command) to create a network namespace')


def _own_machine_id(namespace: str) -> None:
    """Give ``namespace`` its own /etc/machine-id (``ip netns exec`` mounts /etc/netns/<name>/* over /etc).

    DDS treats participants with one machine id as one host and skips their network locators.
    """
    for attempt in range(3):
        try:
            (NETNS_ETC / namespace).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / namespace / 'machine-id').write_text(uuid.uuid4().hex + '\n')
            return
        except FileNotFoundError:  # a concurrent run removed the empty /etc/netns meanwhile
            if attempt == 2:
                raise


def open_link(two_namespaces: bool = False) -> VethLink:
    """Claim a /30, create the namespace(s) and the veth pair; skip if this machine cannot.

    With ``two_namespaces`` the near side is a namespace too, and each side has its own machine id:
    two machines of a cell network.
    """
    _skip_unless_possible()
    try:
        index, namespace = _claim_block()
    except RuntimeError as error:
        pytest.skip(f'cannot create a network namespace here: {error}')
    near_address, far_address = _block_addresses(index)
    link = VethLink(index, namespace, f'twn{index}n' if two_namespaces else None, f'twn{index}h', f'twn{index}d',
                    near_address, far_address)
    try:
        if link.near_namespace is not None:
            ip('netns', 'add', link.near_namespace)
            _own_machine_id(link.namespace)
            _own_machine_id(link.near_namespace)
        _setup(link)
    except BaseException:
        _teardown(link)
        raise
    return link


@pytest.fixture
def veth_link() -> Iterator[VethLink]:
    """The root namespace (driver, probe) joined to a device namespace; removed at teardown."""
    link = open_link()
    try:
        yield link
    finally:
        _teardown(link)


@pytest.fixture
def two_hosts() -> Iterator[VethLink]:
    """Two namespaces joined by a veth pair, standing for two machines of a cell network."""
    link = open_link(two_namespaces=True)
    try:
        yield link
    finally:
        _teardown(link)


def test_a_link_is_removed_even_when_its_user_fails() -> None:
    link = open_link()
    with pytest.raises(RuntimeError, match='a failing test'):
        try:
            assert f' {link.far_address}/30 ' in ip('-n', link.namespace, '-o', '-4', 'addr', 'show').stdout
            raise RuntimeError('a failing test')
        finally:
            _teardown(link)
    assert link.namespace not in ip('netns', 'list').stdout.split()
    assert ip('link', 'show', link.near_interface, check=False).returncode != 0


def test_device_traffic_stays_on_the_veth(veth_link: VethLink) -> None:
    """The device address is routed through the veth, not through any interface that leaves the machine."""
    route = ip('-o', 'route', 'get', veth_link.far_address).stdout
    assert f'dev {veth_link.near_interface} ' in route and f'src {veth_link.near_address}' in route
    routes = ip('-n', veth_link.namespace, '-o', 'route', 'show').stdout.splitlines()
    assert routes == [r for r in routes if f'dev {veth_link.far_interface} ' in r] and len(routes) == 1, routes


# --------------------------------------------------------------------------- drivers over the veth

def free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def driver(name: str, **parameters: object) -> list[str]:
    """Command line of a driver with its shipped params file and overrides."""
    overrides = [arg for key, value in parameters.items() for arg in ('-p', f'{key}:={value}')]
    return [resolve_executable(name), '--ros-args', '--params-file', str(CONFIG / f'{name}.yaml'), *overrides]


def latest_status(probe, prefix: str) -> dict[str, str]:
    """Key/values of the latest diagnostic status named ``prefix``..."""
    found = {name: status for name, status in statuses(probe.messages('/diagnostics'), prefix).items()
             if not name.endswith(': workers')}
    if not found:
        return {}
    (name, status), = found.items()
    return {kv.key: kv.value for kv in status.values} | {'_name': name}


@pytest.mark.integration
def test_lidar_driver_reads_a_lidar_on_the_network(veth_link: VethLink, start_process, probe) -> None:
    probe.subscribe('/scan', LaserScan, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    port = free_udp_port(veth_link.near_address)
    start_process(*driver('lidar_driver', **{'udp.host': veth_link.near_address, 'udp.port': port}))
    source = f'udp://{veth_link.near_address}:{port}'
    probe.wait_for('/diagnostics', lambda _: latest_status(probe, 'lidar_driver').get('connected') == 'True', 20.0)
    assert latest_status(probe, 'lidar_driver')['_name'] == f'lidar_driver: {source}'
    received_before = veth_link.near_counter('rx_packets')

    scans = 40
    sender = start_process(*veth_link.run_far(sys.executable, str(DEVICES), 'lidar', '--host',
                                              veth_link.near_address, '--port', str(port), '--scans', str(scans)),
                           name='lidar_device')
    assert sender.wait(30.0) == 0, sender.output()
    assert f'sent {scans} scans, 0 send errors' in sender.output()

    probe.wait_for('/diagnostics', lambda _: latest_status(probe, 'lidar_driver').get('messages') == str(scans), 10.0)
    values = latest_status(probe, 'lidar_driver')
    assert values['errors.crc'] == '0' and values['frames_missed'] == '0'
    messages = probe.wait_for('/scan', lambda m: len(m) >= scans - 2, 10.0)  # best effort on the probe side
    settings = SimSettings()
    expected = np.round(pattern_ranges(settings.lidar_n_beams) * 1000.0) / 1000.0  # mm on the wire
    expected[NO_RETURN_BEAM], expected[TOO_CLOSE_BEAM] = np.inf, -np.inf  # REP 117
    for scan in messages:
        assert scan.header.frame_id == 'laser' and len(scan.ranges) == settings.lidar_n_beams
        assert np.array_equal(np.asarray(scan.ranges), expected.astype(np.float32))
        assert scan.angle_min == pytest.approx(settings.lidar_angle_min, abs=1e-6)
        assert scan.angle_max == pytest.approx(settings.lidar_angle_max, abs=1e-5)
        assert (scan.range_min, scan.range_max) == pytest.approx((settings.lidar_range_min,
                                                                  settings.lidar_range_max))
        assert scan.scan_time == pytest.approx(0.05)
    assert veth_link.near_counter('rx_packets') - received_before >= scans  # the scans crossed the veth


@pytest.mark.integration
def test_plc_driver_reads_a_plc_on_the_network(veth_link: VethLink, start_process, probe) -> None:
    topics = ['/cell/status', *(f'/motors/{joint}/temperature' for joint in JOINTS)]
    probe.subscribe('/cell/status', CellStatus)
    for topic in topics[1:]:
        probe.subscribe(topic, Temperature, qos_profile_sensor_data)
    probe.subscribe('/diagnostics', DiagnosticArray)
    endpoint = f'opc.tcp://{veth_link.far_address}:4840/twin/plc'  # the namespace has its own ports
    # The driver publishes changes only: it runs, and is matched, before the PLC has any value to send.
    start_process(*driver('plc_driver', **{'opcua.endpoint': endpoint}))
    assert wait_for(lambda: all(probe.node.count_publishers(topic) == 1 for topic in topics), 20.0)
    probe.wait_for('/diagnostics', lambda _: latest_status(probe, 'plc_driver').get('connected') == 'False', 20.0)
    received_before = veth_link.near_counter('rx_packets')

    plc = start_process(*veth_link.run_far(sys.executable, str(DEVICES), 'plc', '--endpoint', endpoint),
                        name='plc_device')
    status = probe.wait_for('/cell/status', lambda m: len(m) > 0, 60.0)[-1]  # the driver retries with backoff
    assert f'ready {endpoint}' in plc.output()
    assert status.task_id == PLC_STATE.task_id and status.task_progress == pytest.approx(PLC_STATE.task_progress)
    assert status.speed_override == pytest.approx(PLC_STATE.speed_override) and not status.stopped
    for joint, temperature in zip(JOINTS, PLC_STATE.motor_temperatures):
        message = probe.wait_for(f'/motors/{joint}/temperature', lambda m: len(m) > 0, 10.0)[-1]
        assert message.header.frame_id == f'{joint}_motor' and message.temperature == pytest.approx(temperature)
    probe.wait_for('/diagnostics', lambda _: latest_status(probe, 'plc_driver').get('connected') == 'True', 10.0)
    assert latest_status(probe, 'plc_driver')['_name'] == f'plc_driver: {endpoint}'
    assert veth_link.near_counter('rx_packets') > received_before  # the OPC UA traffic crossed the veth


# --------------------------------------------------------------------------- DDS with the network profile

def network_profile(directory: Path, address: str) -> Path:
    """config/fastdds_network.xml with its placeholder address replaced by ``address``."""
    text = (CONFIG / 'fastdds_network.xml').read_text()
    assert text.count(f'<address>{PROFILE_PLACEHOLDER}</address>') == 1, 'the profile placeholder moved'
    path = directory / f'fastdds_network_{address}.xml'
    path.write_text(text.replace(f'<address>{PROFILE_PLACEHOLDER}</address>', f'<address>{address}</address>'))
    return path


@pytest.mark.integration
def test_the_network_profile_connects_nodes_on_two_machines(two_hosts: VethLink, ros_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    """Two namespaces stand for two machines: multicast discovery and data cross the veth only."""
    topic = f'network_check_{os.getpid()}'
    processes = []
    try:
        for side, address, command in [
            ('talker', two_hosts.near_address, two_hosts.run_near(sys.executable, str(DEVICES), 'talker',
                                                                  '--topic', topic)),
            ('listener', two_hosts.far_address, two_hosts.run_far(sys.executable, str(DEVICES), 'listener',
                                                                  '--topic', topic, '--count', '5')),
        ]:
            env = ros_env | {'FASTDDS_DEFAULT_PROFILES_FILE': str(network_profile(tmp_path, address)),
                             'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}
            processes.append(NodeProcess(command, env, tmp_path / f'{side}.log'))
        talker, listener = processes
        assert listener.wait(40.0) == 0, f'listener:\n{listener.output()}\ntalker:\n{talker.output()}'
        assert listener.output().count('received twin over the network') >= 5
        for process in processes:
            assert not re.search(r'\[\w+ Error\]', process.output()), process.output()  # Fast DDS log errors
        assert two_hosts.near_counter('tx_packets') > 5
    finally:
        for process in processes:
            process.stop()
