"""Launch the digital twin (and optionally the simulated workcell) from the node table.

    ros2 launch twin_bringup twin.launch.py            # twin + simulated workcell
    ros2 launch twin_bringup twin.launch.py sim:=false # twin only, against real hardware
    ros2 launch twin_bringup twin.launch.py rviz:=true robot_state_publisher:=true
    ros2 launch twin_bringup twin.launch.py robots:=3   # a fleet: robot_1..3 and the fleet node
    ros2 launch twin_bringup twin.launch.py robot_ids:=2  # robot_2 of a fleet spread over machines

The node list and parameter files come from config/graph.yaml, the same table
``twin_launch`` uses; it is validated before any node starts.
"""
import tempfile
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from twin_bringup.node_table import load_node_table

RESPAWN_DELAY_S = 2.0


def _enabled(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).lower() in ('true', '1', 'yes')


def _nodes(context, *args, **kwargs):
    config_dir = Path(get_package_share_directory('twin_bringup')) / 'config'
    profile = LaunchConfiguration('dds_profile').perform(context)
    environment = [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile)] if profile else []
    table = load_node_table(config_dir)
    scratch = Path(tempfile.mkdtemp(prefix='twin_launch_'))  # parameter files of namespaced robots
    robot_ids = [int(i) for i in LaunchConfiguration('robot_ids').perform(context).split(',') if i.strip()]
    entries = table.select(_enabled(context, 'sim'), int(LaunchConfiguration('robots').perform(context)), robot_ids)
    return environment + _visualization(context, config_dir) + [
        Node(package='twin_bringup', executable=entry.executable, name=entry.name,
             namespace=entry.namespace or None,
             parameters=[str(p) for p in entry.launch_parameter_files(config_dir, scratch)]
             + ([entry.override_values()] if entry.overrides and not entry.namespace else []),
             remappings=[tuple(r.split(':=', 1)) for r in entry.remappings],
             respawn=True, respawn_delay=RESPAWN_DELAY_S, output='screen', emulate_tty=True)
        for entry in entries
    ]


def _visualization(context, config_dir: Path) -> list[Node]:
    """robot_state_publisher (URDF, twin joint states) and RViz with config/twin.rviz, if asked."""
    nodes = []
    if _enabled(context, 'robot_state_publisher'):
        urdf = ParameterValue((config_dir / 'arm.urdf').read_text(), value_type=str)
        nodes.append(Node(package='robot_state_publisher', executable='robot_state_publisher',
                          parameters=[{'robot_description': urdf}],
                          remappings=[('joint_states', 'twin/joint_states')], output='screen'))
    if _enabled(context, 'rviz'):
        nodes.append(Node(package='rviz2', executable='rviz2',
                          arguments=['-d', str(config_dir / 'twin.rviz')], output='screen'))
    return nodes


def generate_launch_description():
    config_dir = Path(get_package_share_directory('twin_bringup')) / 'config'
    return LaunchDescription([
        DeclareLaunchArgument('sim', default_value='true',
                              description='Start the simulated workcell as the physical robot.'),
        DeclareLaunchArgument('dds_profile', default_value=str(config_dir / 'fastdds_loopback.xml'),
                              description='Fast DDS profile (default: loopback only); empty = keep yours.'),
        DeclareLaunchArgument('robots', default_value='1',
                              description='Number of twins; more than one runs each in namespace '
                                          'robot_<i> (own simulated cell) plus the fleet node.'),
        DeclareLaunchArgument('robot_ids', default_value='',
                              description='Comma-separated robots of a fleet to run here (namespaced, '
                                          'no fleet node): one machine of a multi-machine fleet.'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz with config/twin.rviz (needs rviz2).'),
        DeclareLaunchArgument('robot_state_publisher', default_value='false',
                              description='Publish the URDF and TF from twin/joint_states '
                                          '(needs robot_state_publisher).'),
        OpaqueFunction(function=_nodes),
    ])
