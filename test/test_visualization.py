"""What both launchers start for RViz: robot_state_publisher per robot, placement, RViz config."""
import subprocess
import sys

import pytest
import yaml

from harness import CONFIG_DIR
from twin_bringup.node_table import load_node_table
from twin_bringup.visualization import robot_namespaces, visualization_nodes
from twin_core.config import ConfigError
from twin_core.paths import resolve_executable


def test_a_single_robot_gets_its_description_and_tf_unprefixed(tmp_path):
    entries = load_node_table(CONFIG_DIR).select(with_sim=False)
    nodes = visualization_nodes(CONFIG_DIR, robot_namespaces(entries), rviz=True, scratch=tmp_path)
    assert [(n.package, n.namespace) for n in nodes] == [('robot_state_publisher', ''), ('rviz2', '')]
    publisher = nodes[0]
    assert publisher.parameters['frame_prefix'] == ''
    assert '<robot' in publisher.parameters['robot_description']
    assert publisher.remappings == (('joint_states', 'twin/joint_states'),)
    config = yaml.safe_load((tmp_path / 'twin.rviz').read_text())
    assert config == yaml.safe_load((CONFIG_DIR / 'twin.rviz').read_text())


def test_each_robot_of_a_fleet_has_its_own_frames_topics_and_place(tmp_path):
    entries = load_node_table(CONFIG_DIR).select(with_sim=True, robots=2)
    namespaces = robot_namespaces(entries)
    assert namespaces == ['robot_1', 'robot_2']
    nodes = visualization_nodes(CONFIG_DIR, namespaces, rviz=True, scratch=tmp_path)
    publishers = [n for n in nodes if n.package == 'robot_state_publisher']
    assert [(n.namespace, n.parameters['frame_prefix']) for n in publishers] == [
        ('robot_1', 'robot_1/'), ('robot_2', 'robot_2/')]
    placements = [n.arguments for n in nodes if n.executable == 'static_transform_publisher']
    assert [a[a.index('--child-frame-id') + 1] for a in placements] == ['robot_1/base_link', 'robot_2/base_link']
    assert len({a[a.index('--y') + 1] for a in placements}) == 2  # side by side, not on top of each other

    # The twin's own frames carry the same prefix, so markers and scans land on their robot.
    state = next(e for e in entries if e.name == 'twin_state' and e.namespace == 'robot_2')
    assert state.override_values()['frame_prefix'] == 'robot_2/'
    lidar = next(e for e in entries if e.name == 'lidar_driver' and e.namespace == 'robot_2')
    assert lidar.override_values()['frame_id'] == 'robot_2/laser'

    displays = yaml.safe_load((tmp_path / 'twin.rviz').read_text())['Visualization Manager']
    assert displays['Global Options']['Fixed Frame'] == 'world'
    models = [d for d in displays['Displays'] if d['Class'] == 'rviz_default_plugins/RobotModel']
    assert [(m['Description Topic']['Value'], m['TF Prefix']) for m in models] == [
        ('/robot_1/robot_description', 'robot_1'), ('/robot_2/robot_description', 'robot_2')]
    scans = [d['Topic']['Value'] for d in displays['Displays'] if d['Class'] == 'rviz_default_plugins/LaserScan']
    assert scans == ['/robot_1/scan', '/robot_2/scan']


def test_the_description_reaches_the_node_through_a_parameter_file(tmp_path):
    (publisher,) = visualization_nodes(CONFIG_DIR, ['robot_1'], rviz=False, scratch=tmp_path)[:1]
    command = publisher.command('/opt/ros/kilted/lib/robot_state_publisher/robot_state_publisher', tmp_path)
    assert command[command.index('-r') + 1] == '__node:=robot_state_publisher'
    assert '__ns:=/robot_1' in command and 'joint_states:=twin/joint_states' in command
    parameters = yaml.safe_load(open(command[command.index('--params-file') + 1]))
    assert parameters['/robot_1/robot_state_publisher']['ros__parameters']['frame_prefix'] == 'robot_1/'


def test_twin_without_the_simulator_never_loads_the_physics_engine():
    probe = ('import sys\n'
             'from twin_bringup.node_table import load_node_table\n'
             'from twin_core.paths import config_dir\n'
             'entries = load_node_table(config_dir(), with_sim=False).select(False)\n'
             'assert "workcell_sim" not in [e.name for e in entries]\n'
             'print("mujoco" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'False'


def test_rviz_where_it_is_not_installed_is_a_configuration_error():
    try:
        resolve_executable('robot_state_publisher', 'robot_state_publisher')
        pytest.skip('robot_state_publisher is installed here')
    except ConfigError:
        pass
    result = subprocess.run([sys.executable, '-m', 'twin_bringup.launcher', '--no-sim', '--rviz',
                             '--duration', '1'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "executable 'robot_state_publisher' of package robot_state_publisher not found" in result.stderr
    assert 'starting' not in result.stdout
