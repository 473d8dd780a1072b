"""Launch the digital twin (and optionally the simulated workcell) from the node table.

    ros2 launch twin_bringup twin.launch.py            # twin + simulated workcell
    ros2 launch twin_bringup twin.launch.py sim:=false # twin only, against the real cell
    ros2 launch twin_bringup twin.launch.py rviz:=true # + robot_state_publisher and RViz
    ros2 launch twin_bringup twin.launch.py view:=true # + live view for Foxglove / Lichtblick (ws://host:8765)
    ros2 launch twin_bringup twin.launch.py robots:=3   # a fleet: robot_1..3 and the fleet node
    ros2 launch twin_bringup twin.launch.py robot_ids:=2  # robot_2 of a fleet spread over machines
    ros2 launch twin_bringup twin.launch.py dds_profile:=/path/fastdds.xml

The node list, processes (entries sharing a ``process:`` run in one ``twin_container``),
parameter files, visualization helpers and restart policy are the ones ``twin_launch`` uses
(twin_bringup.node_table, twin_core.graph, .visualization, .restart): a crashed process is
restarted with backoff, one that exits with a configuration error (code 2) stops the launch.
"""
import shutil
import tempfile
import time
from pathlib import Path

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    TimerAction,
)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from twin_bringup.node_table import NodeEntry, load_node_table
from twin_bringup.visualization import ExternalNode, robot_namespaces, visualization_nodes
from twin_core.graph import ProcessGroup, group_processes
from twin_core.restart import Backoff, restart_delay


def _enabled(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).lower() in ('true', '1', 'yes')


def _twin_node(entry: NodeEntry, config_dir: Path, scratch: Path) -> Node:
    return Node(package='twin_bringup', executable=entry.executable, name=entry.name,
                namespace=entry.namespace or None,
                parameters=[str(p) for p in entry.launch_parameter_files(config_dir, scratch)]
                + ([entry.override_values()] if entry.overrides and not (entry.namespace or entry.process) else []),
                remappings=[tuple(r.split(':=', 1)) for r in entry.scoped_remappings()],
                additional_env=entry.environment(), output='screen', emulate_tty=True)


def _container(group: ProcessGroup, config_dir: Path, scratch: Path) -> Node:
    """The group's nodes in one process: no ``name=``, which would rename every node in it."""
    return Node(package='twin_bringup', executable=group.executable,
                arguments=group.modules() + group.ros_arguments(config_dir, scratch),
                additional_env=group.environment(), output='screen', emulate_tty=True)


def _external_node(node: ExternalNode) -> Node:
    return Node(package=node.package, executable=node.executable, name=node.name,
                namespace=node.namespace or None, arguments=list(node.arguments),
                parameters=[dict(node.parameters)] if node.parameters else [],
                remappings=list(node.remappings), output='screen')


def _supervised(make_node, label: str, backoff: Backoff | None = None) -> list:
    """The node and a handler that restarts it after a crash, never after a configuration error."""
    backoff = backoff or Backoff()  # one Backoff per node, kept across restarts
    node = make_node()
    started = time.monotonic()

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        delay = restart_delay(event.returncode, time.monotonic() - started, backoff)
        if delay is None:
            return [LogInfo(msg=f'[{label}] exited with a configuration error (code {event.returncode}); '
                                'stopping the launch'),
                    EmitEvent(event=Shutdown(reason=f'{label}: configuration error'))]
        return [LogInfo(msg=f'[{label}] exited with code {event.returncode}; restarting in {delay:.1f} s'),
                TimerAction(period=delay, actions=_supervised(make_node, label, backoff))]

    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))]


def _graph(context, *args, **kwargs):
    config_dir = Path(get_package_share_directory('twin_bringup')) / 'config'
    profile = LaunchConfiguration('dds_profile').perform(context)
    environment = [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile)] if profile else []
    with_sim = _enabled(context, 'sim')
    scratch = Path(tempfile.mkdtemp(prefix='twin_launch_'))  # parameter files of namespaced robots
    robot_ids = [int(i) for i in LaunchConfiguration('robot_ids').perform(context).split(',') if i.strip()]
    robots = int(LaunchConfiguration('robots').perform(context))
    entries = load_node_table(config_dir, with_sim=with_sim).select(
        with_sim, robots, robot_ids, with_view=_enabled(context, 'view'), with_drivers=_enabled(context, 'drivers'))
    actions = list(environment) + [RegisterEventHandler(OnShutdown(
        on_shutdown=lambda *_: shutil.rmtree(scratch, ignore_errors=True)))]
    for process in group_processes(entries):
        make = _container if isinstance(process, ProcessGroup) else _twin_node
        actions += _supervised(lambda p=process, m=make: m(p, config_dir, scratch), process.qualified_name)
    rviz = _enabled(context, 'rviz')
    if rviz or _enabled(context, 'robot_state_publisher'):
        for node in visualization_nodes(config_dir, robot_namespaces(entries), rviz, scratch):
            get_package_prefix(node.package)  # PackageNotFoundError here, before any node starts
            actions.append(_external_node(node))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('sim', default_value='true',
                              description='Start the simulated workcell as the physical robot.'),
        DeclareLaunchArgument('drivers', default_value='true',
                              description='Start the device drivers; false where recorded device topics '
                                          '(twin_play --restamp) stand in for them.'),
        DeclareLaunchArgument('dds_profile', default_value='',
                              description='Fast DDS profile for every node; empty keeps your DDS setup. '
                                          'config/fastdds_loopback.xml keeps everything on this machine.'),
        DeclareLaunchArgument('robots', default_value='1',
                              description='Number of twins; more than one runs each in namespace '
                                          'robot_<i> (own simulated cell) plus the fleet node.'),
        DeclareLaunchArgument('robot_ids', default_value='',
                              description='Comma-separated robots of a fleet to run here (namespaced, '
                                          'no fleet node): one machine of a multi-machine fleet.'),
        DeclareLaunchArgument('view', default_value='false',
                              description='Serve the live view (Foxglove WebSocket, config/view.yaml) '
                                          'for Foxglove or Lichtblick; each robot of a fleet on its own port.'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz on the twin (with robot_state_publisher per robot).'),
        DeclareLaunchArgument('robot_state_publisher', default_value='false',
                              description='Publish each robot\'s URDF and TF from its twin/joint_states '
                                          'without RViz (e.g. for another viewer).'),
        OpaqueFunction(function=_graph),
    ])
