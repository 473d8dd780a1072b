"""Private copies of the configuration, so that several twins (tests, benchmarks) can run at once."""
from __future__ import annotations

import os
import random
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import yaml

from twin_core.paths import config_dir

FLEET_ROBOTS = 8  # robots whose ports an isolated fleet configuration keeps free
LOWEST_PORT = 20000  # free ports are picked between this and the kernel's ephemeral range
_handed_out: set[int] = set()
# The node table's entries for the cell camera, as docs/camera.md gives them (the camera is off by default).
CAMERA_NODES = ({'executable': 'camera_driver', 'name': 'camera_driver', 'parameters': ['camera_driver.yaml'],
                 'config': 'twin_sensors.camera:CameraConfig', 'process': 'drivers', 'role': 'device'},
                {'executable': 'camera_check', 'name': 'camera_check', 'parameters': ['camera_check.yaml'],
                 'config': 'twin_anomaly.camera_check:CameraCheckConfig', 'process': 'analytics',
                 'nice': 10})


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free now (TCP by default, ``socket.SOCK_DGRAM`` for UDP), never the same
    twice in a process.

    It lies below the kernel's ephemeral range: a port the kernel picked for ``bind(0)`` is one it
    also hands to outgoing connections, which could take it before the server it is meant for
    starts (a server that binds it seconds later, or again after a restart). It lies outside the
    test domain's DDS ports too, which every participant started later may bind.
    """
    first, last = LOWEST_PORT, _ephemeral_ports()[0] - 1
    if last - first < 1000:  # an unusual port range: the kernel's choice
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(('127.0.0.1', 0))
            return probe.getsockname()[1]
    dds_ports = _dds_ports()
    while True:
        port = random.randint(first, last)
        if port not in _handed_out and port not in dds_ports and _free(port, (kind,)):
            _handed_out.add(port)
            return port


def _dds_ports() -> range:
    """The UDP ports of this process's DDS domain (RTPS port mapping: 7400 + 250 × domain, 250 ports)."""
    base = 7400 + 250 * int(os.environ.get('ROS_DOMAIN_ID') or 0)
    return range(base, base + 250)


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; the IANA range elsewhere)."""
    try:
        first, last = Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split()
        return int(first), int(last)
    except (OSError, ValueError):
        return 49152, 65535


def isolated_config(directory: Path) -> Path:
    """A copy of config/ whose simulator, drivers and actuation (and fleet robots) use private links and free ports."""
    config = directory / 'config'
    shutil.copytree(config_dir(), config)
    imu, encoders = str(directory / 'dev' / 'imu'), str(directory / 'dev' / 'encoders')
    lidar_port, plc = free_port(socket.SOCK_DGRAM), f'opc.tcp://127.0.0.1:{free_port()}/twin/plc'
    command_port, plan_port, camera_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port()

    def edit(filename: str, node: str, change: Callable[[dict], None]) -> None:
        document = yaml.safe_load((config / filename).read_text())
        change(document[node]['ros__parameters'])
        (config / filename).write_text(yaml.safe_dump(document))

    def simulator(params: dict) -> None:
        channels = params['channels']
        channels['imu']['link'], channels['encoders']['link'] = imu, encoders
        channels['lidar']['port'] = lidar_port
        channels['command']['port'] = command_port
        channels['plan']['port'] = plan_port
        channels['plc']['endpoint'] = plc
        channels['camera']['port'] = camera_port
        params['truth_dir'] = str(directory / 'truth')

    edit('workcell.yaml', 'workcell_sim', simulator)
    edit('imu_driver.yaml', 'imu_driver', lambda p: p['serial'].update(port=imu))
    edit('encoder_driver.yaml', 'encoder_driver', lambda p: p['serial'].update(port=encoders))
    edit('lidar_driver.yaml', 'lidar_driver', lambda p: p['udp'].update(port=lidar_port))
    edit('plc_driver.yaml', 'plc_driver', lambda p: p['opcua'].update(endpoint=plc))
    edit('plan_driver.yaml', 'plan_driver', lambda p: p['udp'].update(port=plan_port))
    edit('camera_driver.yaml', 'camera_driver', lambda p: p.update(url=f'http://127.0.0.1:{camera_port}/stream.mjpg'))
    edit('actuation.yaml', 'actuation', lambda p: p['link'].update(port=command_port))
    edit('view.yaml', 'twin_view', lambda p: p.update(port=free_port(),
                                                      camera=p['camera'] | {'http_port': free_port()}))
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    fleet = graph['fleet']
    fleet['device_dir'] = str(directory / 'dev')
    fleet['ports'] = {name: free_port_series(fleet['port_stride'], FLEET_ROBOTS) for name in fleet['ports']}
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph, sort_keys=False))
    return config


def enable_camera(config: Path) -> None:
    """Turn on the simulated camera of the configuration in ``config`` and add its driver and check."""
    workcell = yaml.safe_load((config / 'workcell.yaml').read_text())
    workcell['workcell_sim']['ros__parameters']['channels']['camera']['enabled'] = True
    (config / 'workcell.yaml').write_text(yaml.safe_dump(workcell))
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['nodes'].extend(dict(entry) for entry in CAMERA_NODES)
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph, sort_keys=False))


def free_port_series(stride: int, count: int) -> int:
    """A base port such that base + i * stride (i = 1..count) are free for TCP and UDP now."""
    while True:
        base = free_port() - stride
        if all(_free(base + i * stride) for i in range(1, count + 1)):
            return base


def _free(port: int, kinds: tuple[int, ...] = (socket.SOCK_STREAM, socket.SOCK_DGRAM)) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(('127.0.0.1', port))
            except OSError:
                return False
    return True
