"""LiveMirror: joint measurements in the twin's joint order, bad ones refused with the reason."""
from __future__ import annotations

import numpy as np
import pytest

from twin_state.live import LiveMirror

TWIN = ('joint_1', 'joint_2', 'joint_3')


def test_measurements_come_out_in_the_twin_order_with_extra_joints_dropped():
    mirror = LiveMirror(TWIN)
    joints = mirror.update(10, ['gripper', 'joint_3', 'joint_1', 'joint_2'], [9.0, 3.0, 1.0, 2.0],
                           [0.9, 0.3, 0.1, 0.2], [])
    assert joints.stamp_ns == 10
    np.testing.assert_array_equal(joints.position, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(joints.velocity, [0.1, 0.2, 0.3])
    assert joints.effort.size == 0


@pytest.mark.parametrize(('names', 'position', 'velocity', 'reason'), [
    (['joint_1', 'joint_2'], [1.0, 2.0], [], 'no value for joint(s) joint_3'),
    (list(TWIN), [1.0, 2.0], [], 'position has 2 values for 3 names'),
    (list(TWIN), [], [], 'position has 0 values for 3 names'),
    (list(TWIN), [1.0, float('nan'), 3.0], [], 'non-finite position'),
    (list(TWIN), [1.0, 2.0, 3.0], [0.0, float('inf'), 0.0], 'non-finite velocity'),
    (list(TWIN), [1.0, 2.0, 3.0], [0.0], 'velocity has 1 values for 3 names'),
])
def test_a_measurement_the_twin_cannot_show_is_refused_with_the_reason(names, position, velocity, reason):
    mirror = LiveMirror(TWIN)
    with pytest.raises(ValueError, match=reason.replace('(', r'\(').replace(')', r'\)')):
        mirror.update(10, names, position, velocity, [])
    assert mirror.update(11, list(TWIN), [1.0, 2.0, 3.0], [], []).position.tolist() == [1.0, 2.0, 3.0]


def test_an_older_stamp_is_refused_and_an_equal_one_accepted():
    mirror = LiveMirror(TWIN)
    mirror.update(100, list(TWIN), [0.0] * 3, [], [])
    mirror.update(100, list(TWIN), [0.0] * 3, [], [])
    with pytest.raises(ValueError, match='older than the last one'):
        mirror.update(99, list(TWIN), [0.0] * 3, [], [])
