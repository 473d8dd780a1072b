"""A driver's health from its counters: disconnected, connected without data, or its message rate."""
import itertools

from twin_core.levels import Level
from twin_sensors.stats import DriverStats


def test_a_driver_is_an_error_until_connected_a_warning_without_data_and_ok_at_its_rate():
    ticks = itertools.count()
    stats = DriverStats(clock=lambda: float(next(ticks)))  # 1 s per reading
    assert stats.health(stats.rate()) == (Level.ERROR, 'disconnected: not opened yet')
    stats.set_state(True, 'opened /dev/pts/3')
    assert stats.health(stats.rate()) == (Level.WARN, 'connected, no data')
    stats.messages = 50
    assert stats.health(stats.rate()) == (Level.OK, '50.0 Hz')
    stats.set_state(False, 'device unplugged')
    assert stats.health(stats.rate()) == (Level.ERROR, 'disconnected: device unplugged')
