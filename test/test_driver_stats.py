"""A driver's health from its counters: waiting at start-up, disconnected, connected without data,
or its message rate.
"""
import itertools

from twin_core.levels import Level
from twin_sensors.stats import DriverStats


def test_a_driver_is_an_error_until_connected_a_warning_without_data_and_ok_at_its_rate():
    ticks = itertools.count()
    stats = DriverStats(clock=lambda: float(next(ticks)), startup_grace=0.0)  # 1 s per reading
    assert stats.health(stats.rate()) == (Level.ERROR, 'disconnected: not opened yet')
    stats.set_state(True, 'opened /dev/pts/3')
    assert stats.health(stats.rate()) == (Level.WARN, 'connected, no data')
    stats.messages = 50
    assert stats.health(stats.rate()) == (Level.OK, '50.0 Hz')
    stats.set_state(False, 'device unplugged')
    assert stats.health(stats.rate()) == (Level.ERROR, 'disconnected: device unplugged')


def test_a_device_absent_at_start_is_waited_for_then_reported_once():
    now = [0.0]
    stats = DriverStats(clock=lambda: now[0], startup_grace=10.0)
    stats.set_state(False, 'cannot open /tmp/imu')
    assert stats.waiting()
    assert stats.health(0.0) == (Level.OK, 'waiting for the device: cannot open /tmp/imu')
    assert not stats.overdue()
    now[0] = 10.0
    assert not stats.waiting()
    assert stats.health(0.0) == (Level.ERROR, 'disconnected: cannot open /tmp/imu')
    assert stats.overdue()
    assert not stats.overdue()  # said once


def test_a_device_lost_after_it_was_reached_is_an_error_even_within_the_grace():
    now = [0.0]
    stats = DriverStats(clock=lambda: now[0], startup_grace=10.0)
    stats.set_state(True, 'opened /tmp/imu')
    stats.set_state(False, 'lost /tmp/imu')
    assert not stats.waiting()
    assert stats.health(0.0)[0] == Level.ERROR
    now[0] = 20.0
    assert not stats.overdue()
