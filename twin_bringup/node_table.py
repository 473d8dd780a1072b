"""The node table: which processes make up the twin, with their parameters.

One YAML file (``config/graph.yaml``) feeds both ``launch/twin.launch.py`` and
``twin_launch``. Loading it validates every entry and every parameter file
against the node's schema, so a typo stops the launch with a message naming
the key instead of a node silently ignoring it. The entries themselves
(:class:`~twin_core.graph.NodeEntry`) are read by ``twin_core.graph``.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from twin_core.config import ConfigError, build, describe
from twin_core.graph import NodeEntry, read_node_table


@dataclass(frozen=True)
class Fleet:
    """How ``robots:=N`` twins share one machine: namespaces, devices and ports per robot.

    Robot ``index`` (1..N) runs every twin (and simulator) entry in namespace ``namespace``
    with the ``overrides`` of its node: templates formatted with ``robot`` (the namespace),
    ``index``, ``device_dir`` and each of ``ports`` shifted by ``index * port_stride``.
    The ``aggregator`` entry runs once, with parameter ``robots`` = the namespaces.
    """

    aggregator: NodeEntry
    namespace: str = field(default='robot_{index}', metadata=describe('Namespace of robot {index}.'))
    device_dir: str = field(default='/tmp/twin_sim', metadata=describe('Directory of the device links.'))
    port_stride: int = field(default=10, metadata=describe('Port shift between robots.', min=1, max=1000))
    ports: dict[str, int] = field(default_factory=dict, metadata=describe('Base ports by name.'))
    overrides: dict[str, dict[str, str]] = field(default_factory=dict, metadata=describe(
        'Per node name: parameter name -> value template.'))

    def robot_namespace(self, index: int) -> str:
        return self.namespace.format(index=index)

    def robot_entry(self, entry: NodeEntry, index: int) -> NodeEntry:
        """``entry`` as it runs for robot ``index``."""
        robot = self.robot_namespace(index)
        fields = {'robot': robot, 'index': index, 'device_dir': self.device_dir,
                  **{name: port + index * self.port_stride for name, port in self.ports.items()}}
        overrides = tuple(f'{name}:={template.format(**fields)}'
                          for name, template in self.overrides.get(entry.name, {}).items())
        return replace(entry, namespace=robot, overrides=entry.overrides + overrides)

    def aggregator_entry(self, robots: int) -> NodeEntry:
        names = ', '.join(self.robot_namespace(i) for i in range(1, robots + 1))
        return replace(self.aggregator, overrides=self.aggregator.overrides + (f'robots:=[{names}]',))


@dataclass(frozen=True)
class NodeTable:
    """All processes of the graph, in start order."""

    nodes: tuple[NodeEntry, ...]
    fleet: Fleet | None = None

    def select(self, with_sim: bool, robots: int = 1, robot_ids: Sequence[int] = (),
               with_view: bool = False, with_drivers: bool = True) -> list[NodeEntry]:
        """The entries to start: the twin's nodes and the device drivers (unless ``with_drivers``
        is off: recorded device topics stand in for them), plus the simulator's and the live
        view's when asked.

        With ``robots`` > 1, one namespaced copy per robot and the fleet aggregator. With
        ``robot_ids``, only those robots of the fleet (namespaced, no aggregator): a fleet
        spread over several machines.
        """
        chosen = [n for n in self.nodes if (with_sim or n.role != 'sim') and (with_view or n.role != 'view')
                  and (with_drivers or n.role != 'device')]
        if robots == 1 and not robot_ids:
            return chosen
        if robots < 1 or any(i < 1 for i in robot_ids):
            raise ConfigError(f'robots are numbered from 1: robots={robots}, robot_ids={list(robot_ids)}')
        if self.fleet is None:
            raise ConfigError('a fleet needs a "fleet" section in the node table')
        indices = list(robot_ids) or list(range(1, robots + 1))
        robot_entries = [self.fleet.robot_entry(entry, index) for index in indices for entry in chosen]
        return robot_entries if robot_ids else robot_entries + [self.fleet.aggregator_entry(robots)]


def load_node_table(config_dir: Path, filename: str = 'graph.yaml', with_sim: bool = True) -> NodeTable:
    """Read and fully validate the node table and the parameter files it names.

    Without ``with_sim`` the simulator's entries are not validated, so their schema (and the
    physics engine it imports) is never loaded where the twin runs against a real cell.
    """
    path = config_dir / filename
    nodes, document = read_node_table(path)
    table = NodeTable(nodes, build(Fleet, document['fleet'], f'{path.name}: fleet') if 'fleet' in document else None)
    names = [n.qualified_name for n in table.nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f'{path}: node names used twice: {duplicates}')
    fleet = table.select(with_sim, robots=2, with_view=True) if table.fleet else []
    for entry in table.select(with_sim, with_view=True) + fleet:  # one robot as the files say, and as a fleet
        validate_parameters(entry, config_dir)
    return table


def validate_parameters(entry: NodeEntry, config_dir: Path) -> object:
    """Check the entry's parameter files against its schema; return the built config."""
    return build(_schema(entry), entry.merged_parameters(config_dir), entry.qualified_name)


def _schema(entry: NodeEntry) -> type:
    module_name, _, class_name = entry.config.partition(':')
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f'{entry.name}.config: cannot load schema {entry.config}: {error}') from None
