"""A fleet fed by a bag: twins without simulator and drivers, one looping, restamping player per robot."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from harness import REPO, isolated_config
from twin_bringup.bag_feed import played_topics, player_command, robot_namespaces, twin_command
from twin_bringup.node_table import load_node_table

BAG = REPO / 'test' / 'data' / 'bags' / 'nominal'


def test_without_drivers_the_twin_keeps_every_node_but_the_devices_and_the_simulator():
    table = load_node_table(REPO / 'config', with_sim=False)
    names = {entry.name for entry in table.select(with_sim=False, robots=2, with_drivers=False)}
    drivers = {entry.name for entry in table.nodes if entry.role == 'device'}
    assert drivers >= {'imu_driver', 'encoder_driver', 'lidar_driver', 'plan_driver', 'plc_driver'}
    assert not names & (drivers | {'workcell_sim'})
    assert {'twin_sync', 'twin_state', 'actuation', 'health_monitor', 'predictor', 'fleet'} <= names


def test_the_bag_plays_only_the_device_topics_the_twin_reads():
    topics = played_topics(BAG, REPO / 'config')
    assert {'/imu/data', '/encoders/joint_states', '/scan', '/cell/status'} <= set(topics)
    assert not [t for t in topics if t.startswith('/workcell_sim')]  # the simulator's ground truth stays out


@pytest.mark.integration
def test_two_twins_fed_by_a_bag_each_publish_live_joint_states(start_process, probe, tmp_path: Path) -> None:
    config = isolated_config(tmp_path)
    namespaces = robot_namespaces(config, 2)
    assert namespaces == ['robot_1', 'robot_2']
    topics = played_topics(BAG, config)
    for namespace in namespaces:
        probe.subscribe(f'/{namespace}/twin/joint_states', JointState, qos_profile_sensor_data)
    start_process(*twin_command(config, 2), name='twin_launch')
    for index, namespace in enumerate(namespaces, 1):
        start_process(*player_command(BAG, namespace, topics), name=f'twin_play_{index}')
    for namespace in namespaces:
        received = probe.wait_for(f'/{namespace}/twin/joint_states', lambda m: len(m) >= 50, timeout=45.0)
        stamp = received[-1].header.stamp
        assert abs(time.time() - (stamp.sec + stamp.nanosec * 1e-9)) < 2.0  # restamped: the twin runs live
