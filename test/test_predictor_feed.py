"""The predictor's input: joint states reordered to the model's joints; its feed's health."""
import numpy as np
import pytest

from twin_core.levels import Level
from twin_predictor.feed import feed_health, joint_vectors

JOINTS = ['joint_1', 'joint_2']


def test_joint_states_come_in_the_models_joint_order():
    q, qd, tau = joint_vectors(['joint_2', 'gripper', 'joint_1'], [0.2, 9.0, 0.1], [2.0, 9.0, 1.0],
                               [20.0, 9.0, 10.0], JOINTS)
    np.testing.assert_array_equal(np.stack((q, qd, tau)), [[0.1, 0.2], [1.0, 2.0], [10.0, 20.0]])


def test_a_missing_joint_or_field_is_named():
    with pytest.raises(ValueError, match=r"lack some of \['joint_1', 'joint_2'\]"):
        joint_vectors(['joint_1'], [0.1], [1.0], [10.0], JOINTS)
    with pytest.raises(ValueError, match='position, velocity and effort for every joint'):
        joint_vectors(JOINTS, [0.1, 0.2], [], [], JOINTS)


def test_the_feed_warns_on_bad_input_and_until_the_first_prediction():
    assert feed_health('', predicting=False) == (Level.WARN, 'waiting for twin/joint_states')
    assert feed_health('', predicting=True) == (Level.OK, 'predicting')
    assert feed_health('joint states lack some of [...]', predicting=True)[0] == Level.WARN
