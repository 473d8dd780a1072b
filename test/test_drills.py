"""Drills on twin_launch's process lifetime: kill -9 of the launcher, a second launch, a held port.

A killed launcher must leave nothing behind (processes, ports, device links, Fast DDS shared
memory), and a launch that would fight a running one refuses with one line naming the culprit.
"""
from __future__ import annotations

import os
import pty
import signal
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from harness import isolated_config, single_node_config, stale_fastdds_segments
from twin_bringup.launcher import SHUTDOWN_GRACE_S
from twin_bringup.lifetime import DomainLock, simulator_resources
from twin_bringup.node_table import load_node_table
from twin_core.graph import group_processes

pytestmark = pytest.mark.integration
LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']
HEALTH_MONITOR = {'executable': 'health_monitor', 'name': 'health_monitor',
                  'parameters': ['health.yaml'], 'config': 'twin_bringup.health:HealthConfig'}
# Loopback UDP plus the shared-memory transport, so that the drill has segments to leave behind.
SHM_PROFILE = '''<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>loopback_udp</transport_id>
        <type>UDPv4</type>
        <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>shm</transport_id>
        <type>SHM</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="twin_loopback_shm" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>shm</transport_id>
          <transport_id>loopback_udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
'''


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def fastdds_files() -> set[str]:
    return {path.name for path in Path('/dev/shm').glob('fastdds_*')}


def dangling_link(link: Path) -> str:
    """Point ``link`` at a pty that no longer exists, as a killed simulator leaves it."""
    master, slave = pty.openpty()
    device = os.ttyname(slave)
    os.close(master)
    os.close(slave)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(device)
    return device


def wait_until(condition, timeout: float) -> float:
    """Seconds until ``condition()`` held; AssertionError after ``timeout``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f'not within {timeout} s'
        time.sleep(0.1)
    return time.monotonic() - start


def kill_launcher(launcher) -> tuple[list[psutil.Process], list[psutil.Process], list[psutil.Process]]:
    """SIGKILL the launcher process alone; its node processes, their own children (the camera's
    render process) and its watchdog(s), recorded just before.
    """
    process = psutil.Process(launcher.process.pid)
    children, descendants = process.children(), process.children(recursive=True)
    watchdogs = [p for p in children if 'twin_bringup.lifetime' in p.cmdline()]
    os.kill(launcher.process.pid, signal.SIGKILL)
    assert launcher.wait(timeout=10) == -signal.SIGKILL
    return ([p for p in children if p not in watchdogs], [p for p in descendants if p not in children],
            watchdogs)


def test_killing_the_launcher_leaves_no_process_port_link_or_shared_memory(start_process, probe, tmp_path):
    config = isolated_config(tmp_path)
    profile = tmp_path / 'fastdds_shm.xml'
    profile.write_text(SHM_PROFILE)
    entries = load_node_table(config).select(with_sim=True)
    simulator = simulator_resources(entries, config)
    stale_device = dangling_link(simulator.links[0])  # left by an earlier, killed simulator
    stale_before, files_before = stale_fastdds_segments(), fastdds_files()
    probe.subscribe('/twin/joint_states', JointState)
    launcher = start_process(*LAUNCH, '--config-dir', str(config), '--dds-profile', str(profile),
                             name='twin_launch')
    probe.wait_for('/twin/joint_states', lambda m: len(m) >= 20, timeout=90)
    assert f'removed stale device link {simulator.links[0]} (its device {stale_device} is gone)' in launcher.output()
    assert all(e.in_use() for e in simulator.endpoints) and all(link.exists() for link in simulator.links)
    segments_in_use = fastdds_files() - files_before

    nodes, helpers, watchdogs = kill_launcher(launcher)
    processes = len(group_processes(entries))  # a container runs several entries
    assert len(nodes) == processes and len(watchdogs) == 1
    gone = wait_until(lambda: not any(alive(p) for p in nodes + helpers + watchdogs), timeout=SHUTDOWN_GRACE_S + 10)
    held = [f'{e.protocol}/{e.port}' for e in simulator.endpoints if e.in_use()]
    links = [str(link) for link in simulator.links if os.path.lexists(link)]
    leaked = stale_fastdds_segments() - stale_before
    print(f'launcher killed: {len(nodes)} nodes and the watchdog gone {gone:.1f} s later; ports '
          f'{", ".join(f"{e.protocol}/{e.port}" for e in simulator.endpoints)} held: {held or "none"}; '
          f'device links left: {links or "none"}; Fast DDS files while running: {len(segments_in_use)}, '
          f'stale segments left: {len(leaked)}')
    watchdog_line = next(line for line in launcher.output().splitlines() if line.startswith('twin_launch watchdog:'))
    print(watchdog_line)
    assert not held and not links and not leaked
    assert segments_in_use, 'the drill ran without shared memory'
    # Every node stopped on its parent-death SIGTERM; none waited for the watchdog's SIGKILL.
    assert f'{processes} of its {processes} nodes exited on their own' in watchdog_line
    assert gone < SHUTDOWN_GRACE_S


def test_a_node_that_ignores_sigterm_is_killed_by_the_watchdog(start_process, probe, ros_env, tmp_path):
    stubborn = tmp_path / 'stubborn_node'
    stubborn.write_text(f'#!{sys.executable}\nimport signal, time\n'
                        'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
                        'print("ignoring SIGTERM", flush=True)\nwhile True:\n    time.sleep(1)\n')
    stubborn.chmod(0o755)
    config = single_node_config(tmp_path, HEALTH_MONITOR)
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['nodes'].append({**HEALTH_MONITOR, 'executable': str(stubborn), 'namespace': 'stubborn'})
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph))
    probe.subscribe('/diagnostics', DiagnosticArray)
    launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    probe.wait_for('/diagnostics', lambda m: len(m) >= 2, timeout=30)  # the real node runs
    wait_until(lambda: '[stubborn/health_monitor] ignoring SIGTERM' in launcher.output(), timeout=30)

    nodes, _, watchdogs = kill_launcher(launcher)
    assert len(nodes) == 2 and len(watchdogs) == 1
    gone = wait_until(lambda: not any(alive(p) for p in nodes + watchdogs), timeout=SHUTDOWN_GRACE_S + 10)
    watchdog_line = next(line for line in launcher.output().splitlines() if line.startswith('twin_launch watchdog:'))
    print(f'{len(nodes)} nodes and the watchdog gone {gone:.1f} s after the kill: {watchdog_line}')
    assert '1 of its 2 nodes exited on their own' in watchdog_line
    assert f'killed after {SHUTDOWN_GRACE_S:g} s: stubborn/health_monitor (pid ' in watchdog_line
    assert gone >= SHUTDOWN_GRACE_S  # the stubborn one got its grace period
    lock = DomainLock(ros_env['ROS_DOMAIN_ID'])
    lock.acquire()  # free again once the watchdog is done
    lock.close()


def test_a_second_launcher_on_the_same_domain_is_refused(start_process, ros_env, tmp_path):
    config = single_node_config(tmp_path, HEALTH_MONITOR)
    first = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    wait_until(lambda: 'twin_launch: starting' in first.output(), timeout=30)
    second = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    assert second.wait(timeout=30) == 2
    message = second.output()
    print(message, end='')
    assert message == (f'twin_launch: another twin_launch (pid {first.process.pid}) is running on '
                       f'ROS_DOMAIN_ID {ros_env["ROS_DOMAIN_ID"]}; stop it first or use another ROS_DOMAIN_ID\n')
    assert first.process.poll() is None
    assert first.stop() == 0


def test_a_held_port_is_named_and_blocks_only_a_launch_with_the_simulator(start_process, tmp_path):
    config = isolated_config(tmp_path)
    graph = yaml.safe_load((config / 'graph.yaml').read_text())
    graph['nodes'] = [n for n in graph['nodes'] if n['name'] in ('workcell_sim', 'plc_driver')]
    (config / 'graph.yaml').write_text(yaml.safe_dump(graph, sort_keys=False))
    (plc,) = [e for e in simulator_resources(load_node_table(config).select(with_sim=True), config).endpoints
              if e.use.endswith('channels.plc')]
    with socket.socket() as squatter:
        squatter.bind((plc.host, plc.port))
        squatter.listen()
        launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
        assert launcher.wait(timeout=60) == 2
        message = launcher.output()
        print(message, end='')
        assert message.startswith(f'twin_launch: TCP port {plc.port} on {plc.host} (workcell_sim channels.plc) '
                                  f'is in use by pid {os.getpid()} (')
        assert message.count('\n') == 1
        # Against a real cell the simulator's ports are none of the twin's business.
        real_cell = start_process(*LAUNCH, '--config-dir', str(config), '--no-sim', '--duration', '3',
                                  name='twin_launch')
        assert real_cell.wait(timeout=60) == 0
        assert 'twin_launch: starting plc_driver' in real_cell.output()
