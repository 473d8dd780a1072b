"""twin_launch: validation before start, prefixed output, respawn, clean shutdown."""
import signal
import sys

import psutil
import pytest
from diagnostic_msgs.msg import DiagnosticArray

from harness import single_node_config
from twin_bringup.restart import Backoff, restart_delay

LAUNCH = [sys.executable, '-m', 'twin_bringup.launcher']
HEALTH_MONITOR = {'executable': 'health_monitor', 'name': 'health_monitor',
                  'parameters': ['health.yaml'], 'config': 'twin_bringup.health:HealthConfig'}


def heartbeats(messages):
    return [int(kv.value) for m in messages for s in m.status if s.name == 'health_monitor: heartbeat'
            for kv in s.values if kv.key == 'beat']


def test_backoff_doubles_caps_and_resets():
    backoff = Backoff(initial=0.5, maximum=2.0, stable_after=10.0)
    assert [backoff.delay(ran_for=1.0) for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert backoff.delay(ran_for=11.0) == 0.5


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
    (child,) = psutil.Process(launcher.process.pid).children()
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
