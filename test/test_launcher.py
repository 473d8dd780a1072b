"""twin_launch: validation before start, prefixed output, respawn, clean shutdown, leftovers."""
import fcntl
import os
import pty
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticArray

from harness import single_node_config
from twin_bringup.launcher import stop_all
from twin_bringup.lifetime import remove_stale_links
from twin_core.fastdds_shm import (
    removal_failures_message,
    remove_stale_fastdds_segments,
    stale_fastdds_segments,
)
from twin_core.restart import Backoff, restart_delay

LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']
HEALTH_MONITOR = {'executable': 'health_monitor', 'name': 'health_monitor',
                  'parameters': ['health.yaml'], 'config': 'twin_bringup.health:HealthConfig'}


def nodes_of(launcher_pid):
    """The launcher's node processes (not its watchdog)."""
    return [p for p in psutil.Process(launcher_pid).children() if 'twin_bringup.lifetime' not in p.cmdline()]


def heartbeats(messages):
    return [int(kv.value) for m in messages for s in m.status if s.name == 'health_monitor: heartbeat'
            for kv in s.values if kv.key == 'beat']


def test_backoff_doubles_caps_and_resets():
    backoff = Backoff(initial=0.5, maximum=2.0, stable_after=10.0)
    assert [backoff.delay(ran_for=1.0) for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert backoff.delay(ran_for=11.0) == 0.5
    assert backoff.delay() == 1.0  # a retry right after a failure
    backoff.reset()  # a success
    assert backoff.delay() == 0.5


def test_a_configuration_error_is_never_restarted_a_crash_always_is():
    backoff = Backoff(initial=0.5)
    assert restart_delay(2, ran_for=0.1, backoff=backoff) is None
    assert restart_delay(1, ran_for=0.1, backoff=backoff) == 0.5
    assert restart_delay(-9, ran_for=0.1, backoff=backoff) == 1.0
    assert restart_delay(0, ran_for=0.1, backoff=backoff) == 2.0


@pytest.mark.integration
def test_respawns_a_killed_node_and_stops_cleanly(start_process, probe, tmp_path):
    config = single_node_config(tmp_path, HEALTH_MONITOR)
    probe.subscribe('/diagnostics', DiagnosticArray)
    launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    probe.wait_for('/diagnostics', lambda m: len(heartbeats(m)) >= 2, timeout=20)
    (child,) = nodes_of(launcher.process.pid)
    child.send_signal(signal.SIGKILL)
    before = len(probe.messages('/diagnostics'))
    # A fresh process counts its beats from 1 again.
    probe.wait_for('/diagnostics', lambda m: 1 in heartbeats(m[before:]), timeout=20)
    assert launcher.stop() == 0
    output = launcher.output()
    assert '[health_monitor] exited with code -9; restarting in 0.5 s' in output
    assert 'twin_launch: stopped 1 nodes; restarts: {\'health_monitor\': 1}' in output
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == 'zombie'


@pytest.mark.integration
def test_broken_parameter_file_stops_before_anything_starts(start_process, tmp_path):
    config = single_node_config(tmp_path, HEALTH_MONITOR)
    health = config / 'health.yaml'
    health.write_text(health.read_text().replace('stale_after', 'stale_aftr'))
    launcher = start_process(*LAUNCH, '--config-dir', str(config), name='twin_launch')
    assert launcher.wait(timeout=30) == 2
    assert ("health_monitor.stale_aftr: unknown key (did you mean 'stale_after'?)"
            in launcher.output())
    assert 'starting' not in launcher.output()


def fake_segment(directory, name, age=60.0):
    """Files of a Fast DDS segment (or port) whose lock nobody holds, last touched ``age`` s ago."""
    files = [directory / name, directory / f'{name}_el']
    if name.startswith('fastdds_port'):
        files.append(directory / f'sem.{name}_mutex')
    for path in files:
        path.write_bytes(b'\0' * 64)
        os.utime(path, (time.time() - age,) * 2)
    return files


def test_stale_shared_memory_is_removed_and_segments_in_use_are_kept(tmp_path):
    stale = fake_segment(tmp_path, f'fastdds_{secrets.token_hex(8)}')
    port = fake_segment(tmp_path, 'fastdds_port17411')
    young = fake_segment(tmp_path, f'fastdds_{secrets.token_hex(8)}', age=0.0)
    held = fake_segment(tmp_path, f'fastdds_{secrets.token_hex(8)}')
    other = tmp_path / 'not_fastdds_el'
    other.write_bytes(b'')
    with open(held[1], 'rb') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running participant does
        assert stale_fastdds_segments(directory=tmp_path) == {stale[0].name, port[0].name, young[0].name}
        removed, failures = remove_stale_fastdds_segments(min_age=5.0, directory=tmp_path)
    assert removed == {stale[0].name, port[0].name} and failures == []
    assert not any(path.exists() for path in stale + port)
    assert all(path.exists() for path in young + held) and other.exists()


def test_a_segment_file_that_cannot_be_removed_is_reported(tmp_path):
    data, *locks = fake_segment(tmp_path, f'fastdds_{secrets.token_hex(8)}')
    data.unlink()
    data.mkdir()  # unlink fails on a directory, for root too
    removed, failures = remove_stale_fastdds_segments(min_age=5.0, directory=tmp_path)
    assert removed == {data.name} and len(failures) == 1 and failures[0].startswith(f'{data}: ')
    assert not any(path.exists() for path in locks)
    assert removal_failures_message(failures + ['another']) == \
        f'cannot remove stale Fast DDS shared memory: {failures[0]} (and 1 more)'


def test_stopping_the_nodes_removes_the_shared_memory_of_one_that_exited_uncleanly():
    """A node cut short in its own teardown exits by itself, yet leaves its segment."""
    files = fake_segment(Path('/dev/shm'), f'fastdds_{secrets.token_hex(8)}')
    try:
        stop_all([])
        assert not any(path.exists() for path in files)
    finally:
        for path in files:
            path.unlink(missing_ok=True)


def test_shared_memory_cleanup_needs_no_tool_on_the_path():
    """The cleanup used to run ``fastdds shm clean`` with the PATH's python3, which may lack psutil."""
    files = fake_segment(Path('/dev/shm'), f'fastdds_{secrets.token_hex(8)}')
    try:
        env = {'PATH': '/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/tmp')}
        result = subprocess.run([sys.executable, '-c', 'from twin_bringup.launcher import '
                                 'clean_stale_shared_memory as clean; print(clean())'],
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stderr == '', result.stderr
        assert not any(path.exists() for path in files)
    finally:
        for path in files:
            path.unlink(missing_ok=True)


def test_only_device_links_to_vanished_ptys_are_removed(tmp_path):
    live_master, live_slave = pty.openpty()
    gone_master, gone_slave = pty.openpty()
    live, gone = tmp_path / 'imu', tmp_path / 'encoders'
    live.symlink_to(os.ttyname(live_slave))
    gone.symlink_to(os.ttyname(gone_slave))
    gone_device = os.ttyname(gone_slave)
    for descriptor in (gone_master, gone_slave):
        os.close(descriptor)  # the pty disappears, as when its simulator was killed
    try:
        assert remove_stale_links([live, gone, tmp_path / 'absent']) == [
            f'removed stale device link {gone} (its device {gone_device} is gone)']
        assert live.is_symlink() and not gone.is_symlink()
    finally:
        os.close(live_master)
        os.close(live_slave)
