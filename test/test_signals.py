"""The signal vocabulary: layouts, interpolation per kind, SLERP, names from frame inputs and older names."""
import math

import numpy as np
import pytest

from twin_core import signals
from twin_core.signals import Kind, Layout, Signal, canonical, input_prefix, input_type, slerp


def about_z(angle: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])


def test_state_layout_names_every_signal_once_with_its_unit_and_kind():
    layout = signals.state_layout(('joint_1', 'joint_2'))
    assert layout.columns[:2] == ('joint_1.position', 'joint_2.position')
    assert layout.columns_of(['end_effector.orientation']) == [
        layout.index[f'end_effector.orientation.{axis}'] for axis in 'xyzw']
    units = {signal.name: signal.unit for signal in layout.signals}
    assert (units['joint_2.effort'], units['imu.angular_velocity.z'], units['end_effector.position.x']) == (
        'N*m', 'rad/s', 'm')
    assert [layout.columns[i] for i in layout.held] == ['task_id', 'speed_override', 'stopped']
    with pytest.raises(KeyError, match='nope'):
        layout.columns_of(['nope'])
    with pytest.raises(ValueError, match='duplicate'):
        _ = Layout((Signal('a'), Signal('a'))).columns


def test_interpolation_is_linear_slerp_or_held_per_signal():
    layout = Layout((Signal('x'), Signal('q', kind=Kind.QUATERNION), Signal('mode', kind=Kind.HOLD)))
    v0, v1 = np.concatenate(([0.0], about_z(0.0), [1.0])), np.concatenate(([10.0], -about_z(1.2), [2.0]))
    out = layout.interpolate(v0, v1, 0.25)
    assert out[0] == pytest.approx(2.5) and out[5] == 1.0
    np.testing.assert_allclose(out[1:5], about_z(0.3), atol=1e-12)  # shorter arc, not the lerp
    np.testing.assert_allclose(Layout().interpolate(np.ones(3), np.zeros(3), 0.5), [0.5] * 3)


def test_slerp_keeps_unit_norm_and_the_shorter_arc():
    for fraction in (0.0, 0.3, 1.0):
        out = slerp(about_z(0.0), -about_z(math.radians(60)), fraction)
        assert np.linalg.norm(out) == pytest.approx(1.0)
        assert 2 * math.atan2(abs(out[2]), abs(out[3])) == pytest.approx(math.radians(60) * fraction)
    np.testing.assert_allclose(slerp(about_z(0.4), about_z(0.4), 0.5), about_z(0.4))


def test_frame_inputs_name_signals_and_signals_name_their_inputs():
    assert input_prefix(signals.IMU_TYPE, 'imu/data') + 'angular_velocity.x' == 'imu.angular_velocity.x'
    assert input_prefix(signals.TEMPERATURE_TYPE, '/robot_1/motors/joint_2/temperature') == 'joint_2.'
    assert input_prefix(signals.JOINT_STATE_TYPE, 'encoders/joint_states') == ''
    assert signals.range_min('/scan').name == 'scan.min'
    assert [input_type(name) for name in ('imu.orientation.w', 'joint_2.effort', 'joint_2.temperature',
                                          'scan.min', 'task_id', 'joint_2.acceleration', 'multivariate')] == [
        signals.IMU_TYPE, signals.JOINT_STATE_TYPE, signals.TEMPERATURE_TYPE, signals.LASER_SCAN_TYPE,
        signals.CELL_STATUS_TYPE, None, None]


def test_topic_based_names_read_as_signals():
    assert [canonical(name) for name in (
        'imu.data.linear_acceleration.x', 'encoders.joint_states.joint_3.effort', 'motors.joint_2.temperature',
        'cell.status.task_id', 'scan.min', 'joint_1.position', 'motors.joint_2.current')] == [
        'imu.linear_acceleration.x', 'joint_3.effort', 'joint_2.temperature', 'task_id', 'scan.min',
        'joint_1.position', 'motors.joint_2.current']
