"""The shared scales: order, names, the message constants they mirror and the byte conversion."""
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from twin_core.levels import Level, Quality, Risk
from twin_interfaces.msg import SensorSample
from twin_ros.common import status, status_level


def test_scales_are_ordered_and_read_as_their_names() -> None:
    assert max(Level.WARN, Level.STALE, Level.OK) == Level.STALE
    assert max(Risk.MEDIUM, Risk.CRITICAL) == Risk.CRITICAL
    assert (str(Level.WARN), f'{Risk.HIGH}') == ('WARN', 'HIGH')
    assert Risk.named('HIGH') == Risk.HIGH
    with pytest.raises(ValueError, match="'SEVERE' is not one of LOW, MEDIUM, HIGH, CRITICAL"):
        Risk.named('SEVERE')


def test_levels_and_qualities_match_the_message_constants() -> None:
    assert [bytes((level,)) for level in Level] == [
        DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE]
    assert list(Quality) == [SensorSample.QUALITY_EXACT, SensorSample.QUALITY_INTERPOLATED,
                             SensorSample.QUALITY_HELD, SensorSample.QUALITY_STALE, SensorSample.QUALITY_MISSING]
    assert [q for q in Quality if q.fresh] == [Quality.EXACT, Quality.INTERPOLATED, Quality.HELD]


def test_status_levels_go_to_the_byte_and_back() -> None:
    for level in Level:
        assert status_level(status('node: part', level, '')) == level
    assert status('node: part', Level.WARN, '').level == DiagnosticStatus.WARN
    assert status_level(DiagnosticStatus(level=b'\x07')) == Level.ERROR  # outside the scale
