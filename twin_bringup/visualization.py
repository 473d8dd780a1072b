"""What RViz needs beside the twin, for one robot or a fleet: one plan for both launchers.

Per robot, ``robot_state_publisher`` turns the URDF and the twin's ``twin/joint_states`` into
``robot_description`` and TF; in a fleet each robot's frames carry its namespace as prefix
(``robot_2/base_link``) and a static transform places the robot in ``world``, so one RViz shows
every robot side by side. The RViz configuration is ``config/twin.rviz`` with its robot displays
repeated per robot on that robot's topics.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from twin_bringup.node_table import NodeEntry

WORLD_FRAME = 'world'
BASE_FRAME = 'base_link'
ROBOT_SPACING_M = 1.5  # fleet robots stand this far apart along world y
SHARED_DISPLAYS = ('rviz_default_plugins/Grid', 'rviz_default_plugins/TF')


@dataclass(frozen=True)
class ExternalNode:
    """A node of another ROS 2 package that the launchers start beside the twin."""

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameters: Mapping[str, object] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    role: str = 'view'

    @property
    def qualified_name(self) -> str:
        return f'/{self.namespace}/{self.name}' if self.namespace else f'/{self.name}'

    def command(self, program: str, scratch: Path) -> list[str]:
        """The command line; parameters go through a file in ``scratch`` (the URDF is long)."""
        args = [program, *self.arguments, '--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:=/{self.namespace}']
        if self.parameters:
            path = scratch / f'{self.qualified_name.strip("/").replace("/", "__")}.yaml'
            path.write_text(yaml.safe_dump({self.qualified_name: {'ros__parameters': dict(self.parameters)}}))
            args += ['--params-file', str(path)]
        for source, target in self.remappings:
            args += ['-r', f'{source}:={target}']
        return args


def robot_namespaces(entries: Sequence[NodeEntry]) -> list[str]:
    """The robots' namespaces among the twin's entries, in order: ``['']`` for a single robot."""
    return list(dict.fromkeys(entry.namespace.strip('/') for entry in entries if entry.role == 'twin'))


def frame_prefix(namespace: str) -> str:
    """The TF prefix of a robot's frames: ``robot_2/`` in a fleet, nothing for a single robot."""
    return f'{namespace}/' if namespace else ''


def visualization_nodes(config_dir: Path, namespaces: Sequence[str], rviz: bool,
                        scratch: Path) -> list[ExternalNode]:
    """robot_state_publisher per robot, the robots' placement in a fleet, and RViz if asked.

    ``namespaces``: ``['']`` for a single robot, ``['robot_1', ...]`` for a fleet.
    """
    description = (config_dir / 'arm.urdf').read_text()
    nodes = [ExternalNode('robot_state_publisher', 'robot_state_publisher', 'robot_state_publisher',
                          namespace, {'robot_description': description,
                                      'frame_prefix': frame_prefix(namespace)},
                          (('joint_states', 'twin/joint_states'),))
             for namespace in namespaces]
    fleet = any(namespaces)
    if fleet:
        nodes += [ExternalNode('tf2_ros', 'static_transform_publisher', 'placement', namespace, arguments=(
            '--y', str(index * ROBOT_SPACING_M), '--frame-id', WORLD_FRAME,
            '--child-frame-id', f'{frame_prefix(namespace)}{BASE_FRAME}'))
            for index, namespace in enumerate(namespaces)]
    if rviz:
        config = scratch / 'twin.rviz'
        config.write_text(rviz_config((config_dir / 'twin.rviz').read_text(), namespaces))
        nodes.append(ExternalNode('rviz2', 'rviz2', 'rviz2', arguments=('-d', str(config))))
    return nodes


def rviz_config(template: str, namespaces: Sequence[str]) -> str:
    """``template`` (config/twin.rviz) for these robots: the robot displays once per robot."""
    if not any(namespaces):
        return template
    document = yaml.safe_load(template)
    manager = document['Visualization Manager']
    shared = [d for d in manager['Displays'] if d['Class'] in SHARED_DISPLAYS]
    per_robot = [d for d in manager['Displays'] if d['Class'] not in SHARED_DISPLAYS]
    manager['Displays'] = shared + [_for_robot(display, namespace)
                                    for namespace in namespaces for display in per_robot]
    manager['Global Options']['Fixed Frame'] = WORLD_FRAME
    return yaml.safe_dump(document, sort_keys=False)


def _for_robot(display: dict, namespace: str) -> dict:
    robot = copy.deepcopy(display)
    robot['Name'] = f'{namespace}: {display["Name"]}'
    for key in ('Topic', 'Description Topic'):
        if key in robot:
            robot[key]['Value'] = f'/{namespace}{robot[key]["Value"]}'
    if robot['Class'] == 'rviz_default_plugins/RobotModel':
        robot['TF Prefix'] = namespace
    return robot
