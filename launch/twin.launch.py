"""Launch the digital twin (and optionally the simulated workcell) from the node table.

    ros2 launch twin_bringup twin.launch.py            # twin + simulated workcell
    ros2 launch twin_bringup twin.launch.py sim:=false # twin only, against real hardware

The node list and parameter files come from config/graph.yaml, the same table
``twin_launch`` uses; it is validated before any node starts.
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from twin_bringup.node_table import load_node_table

RESPAWN_DELAY_S = 2.0


def _nodes(context, *args, **kwargs):
    config_dir = Path(get_package_share_directory('twin_bringup')) / 'config'
    profile = LaunchConfiguration('dds_profile').perform(context)
    environment = [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile)] if profile else []
    with_sim = LaunchConfiguration('sim').perform(context).lower() in ('true', '1', 'yes')
    table = load_node_table(config_dir)
    return environment + [
        Node(package='twin_bringup', executable=entry.executable, name=entry.name,
             namespace=entry.namespace or None,
             parameters=[str(p) for p in entry.parameter_files(config_dir)],
             remappings=[tuple(r.split(':=', 1)) for r in entry.remappings],
             respawn=True, respawn_delay=RESPAWN_DELAY_S, output='screen', emulate_tty=True)
        for entry in table.select(with_sim=with_sim)
    ]


def generate_launch_description():
    config_dir = Path(get_package_share_directory('twin_bringup')) / 'config'
    return LaunchDescription([
        DeclareLaunchArgument('sim', default_value='true',
                              description='Start the simulated workcell as the physical robot.'),
        DeclareLaunchArgument('dds_profile', default_value=str(config_dir / 'fastdds_loopback.xml'),
                              description='Fast DDS profile (default: loopback only); empty = keep yours.'),
        OpaqueFunction(function=_nodes),
    ])
