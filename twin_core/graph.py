"""The node table's entries (``config/graph.yaml``) with their parameter files, and the processes
they run in: one each, or several in one container process (``process:``, :class:`ProcessGroup`).

Read here without validating the parameters against each node's schema (that needs every
layer: ``twin_bringup.node_table`` does it before a launch), so that tools of any layer start
a node the way ``twin_launch`` does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from twin_core.config import ConfigError, build, describe, ros_parameters
from twin_core.priority import NICE_VARIABLE

ROLES = ('twin', 'device', 'sim', 'view', 'fleet')
CONTAINER = 'twin_container'  # console script running several nodes in one process


@dataclass(frozen=True)
class NodeEntry:
    """One node of the graph: its own process, or one of a :class:`ProcessGroup`'s."""

    executable: str
    name: str
    config: str = field(metadata=describe('Parameter schema as module:Class.'))
    namespace: str = ''
    parameters: tuple[str, ...] = ()
    remappings: tuple[str, ...] = ()
    role: str = field(default='twin', metadata=describe('twin, device (a driver), sim, view or fleet', choices=ROLES))
    overrides: tuple[str, ...] = field(default=(), metadata=describe(
        'Parameters set on the command line, "name:=value" (YAML value), after the files.'))
    process: str = field(default='', metadata=describe(
        'Entries with the same process (and namespace) run in one container process; empty = its own.'))
    nice: int = field(default=0, metadata=describe(
        'CPU priority of the process, 0 (normal) to 19: under load it yields the cores to the processes '
        'of lower nice. A container runs at its most urgent entry\'s (the lowest nice of its entries).',
        min=0, max=19))

    @property
    def qualified_name(self) -> str:
        """``/namespace/name``: unique in the graph."""
        namespace = self.namespace.strip('/')
        return f'/{namespace}/{self.name}' if namespace else f'/{self.name}'

    def override_values(self) -> dict[str, object]:
        """The overrides as typed values (parsed like ``-p name:=value``)."""
        return {name: yaml.safe_load(value) for name, _, value in (o.partition(':=') for o in self.overrides)}

    def parameter_files(self, config_dir: Path) -> list[Path]:
        """Absolute paths of the parameter files (relative ones live in ``config_dir``)."""
        return [config_dir / name for name in self.parameters]

    def merged_parameters(self, config_dir: Path) -> dict:
        """The node's parameters: its files in order, then the overrides (nested)."""
        merged: dict = {}
        for path in self.parameter_files(config_dir):
            if not path.is_file():
                raise ConfigError(f'{self.name}: parameter file {path} does not exist')
            _merge(merged, _nest(ros_parameters(path, self.name)))
        _merge(merged, _nest(self.override_values()))
        return merged

    def launch_parameter_files(self, config_dir: Path, scratch: Path) -> list[Path]:
        """Parameter files to start the node with.

        Parameter files name nodes without a namespace; a namespaced or composed node gets one
        file in ``scratch`` keyed by its full name, with its overrides merged in (in a container,
        ``-p`` and a file's ``/**`` section would reach every node of the process).
        """
        if not (self.namespace or self.process):
            return self.parameter_files(config_dir)
        path = scratch / f'{self.qualified_name.strip("/").replace("/", "__")}.yaml'
        path.write_text(yaml.safe_dump({self.qualified_name: {
            'ros__parameters': self.merged_parameters(config_dir)}}))
        return [path]

    def ros_arguments(self, config_dir: Path, scratch: Path) -> list[str]:
        """The ``--ros-args`` part of this node's command line (see :meth:`launch_parameter_files`)."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:=/{self.namespace.strip("/")}']
        for path in self.launch_parameter_files(config_dir, scratch):
            args += ['--params-file', str(path)]
        for remap in self.scoped_remappings():
            args += ['-r', remap]
        if not (self.namespace or self.process):
            for override in self.overrides:
                args += ['-p', override]
        return args

    def scoped_remappings(self) -> list[str]:
        """The remappings, each limited to this node (``name:from:=to``) when it is composed."""
        return [f'{self.name}:{remap}' if self.process else remap for remap in self.remappings]

    def command_line(self, config_dir: Path, scratch: Path) -> list[str]:
        """Executable and arguments of this node's own process."""
        return [self.executable, *self.ros_arguments(config_dir, scratch)]

    def environment(self) -> dict[str, str]:
        """Variables this node's own process is started with, beside the launcher's."""
        return process_environment(self.nice)


@dataclass(frozen=True)
class ProcessGroup:
    """Entries with the same ``process`` and namespace, composed in one ``twin_container``.

    Each node keeps the name its class gives it (the entry's ``name``), its parameter file keyed
    by that name and its remappings scoped to it; a crash restarts the whole group.
    """

    process: str
    entries: tuple[NodeEntry, ...]
    executable: str = CONTAINER

    @property
    def namespace(self) -> str:
        return self.entries[0].namespace

    @property
    def name(self) -> str:
        return self.process

    @property
    def role(self) -> str:
        return self.entries[0].role

    @property
    def qualified_name(self) -> str:
        """``/namespace/process``."""
        namespace = self.namespace.strip('/')
        return f'/{namespace}/{self.process}' if namespace else f'/{self.process}'

    def modules(self) -> list[str]:
        """The node modules to load, from the entries' console scripts."""
        return [node_module(entry.executable) for entry in self.entries]

    def ros_arguments(self, config_dir: Path, scratch: Path) -> list[str]:
        """The ``--ros-args`` part: the namespace, every node's parameter file and scoped remappings."""
        args = ['--ros-args']
        if self.namespace:
            args += ['-r', f'__ns:=/{self.namespace.strip("/")}']
        for entry in self.entries:
            for path in entry.launch_parameter_files(config_dir, scratch):
                args += ['--params-file', str(path)]
            for remap in entry.scoped_remappings():
                args += ['-r', remap]
        return args

    def command_line(self, config_dir: Path, scratch: Path) -> list[str]:
        """``twin_container MODULE... --ros-args ...``."""
        return [self.executable, *self.modules(), *self.ros_arguments(config_dir, scratch)]

    @property
    def nice(self) -> int:
        """The most urgent entry's: a node composed with the live path must not slow it down."""
        return min(entry.nice for entry in self.entries)

    def environment(self) -> dict[str, str]:
        """Variables the container process is started with, beside the launcher's."""
        return process_environment(self.nice)


Process = NodeEntry | ProcessGroup


def process_environment(nice: int) -> dict[str, str]:
    """The variables giving a process its CPU priority (read by ``twin_ros.common.run_nodes``)."""
    return {NICE_VARIABLE: str(nice)} if nice else {}


def group_processes(entries: Sequence[NodeEntry]) -> list[Process]:
    """The processes that run ``entries``: entries sharing a ``process`` and namespace form one
    :class:`ProcessGroup` where the first of them stands; the others (and a group of one) run alone.
    A group holds one role, or twin nodes with device drivers (left out of it without drivers).
    """
    groups: dict[tuple[str, str], list[NodeEntry]] = {}
    for entry in entries:
        if entry.process:
            groups.setdefault((entry.namespace, entry.process), []).append(entry)
    processes: list[Process] = []
    for entry in entries:
        members = groups.get((entry.namespace, entry.process), [entry])
        if len(members) == 1:
            processes.append(entry)
        elif entry is members[0]:
            roles = sorted({m.role for m in members})
            if len(roles) > 1 and set(roles) != {'twin', 'device'}:
                raise ConfigError(f'process {entry.process}: one role per process (or twin nodes with '
                                  f'device drivers), not {roles}')
            processes.append(ProcessGroup(entry.process, tuple(members)))
    return processes


def node_module(executable: str) -> str:
    """The module of a console script of twin_bringup (``sync_node`` -> ``twin_sync.sync_node``)."""
    for point in entry_points(group='console_scripts', name=executable):
        if point.module.startswith('twin_'):
            return point.module
    raise ConfigError(f'{executable}: no console script of that name is installed (for its module)')


def read_node_table(path: Path) -> tuple[tuple[NodeEntry, ...], dict[str, Any]]:
    """The entries of the node table at ``path`` and its whole document; ``ConfigError`` if it is
    unreadable, not a mapping with a list under "nodes", has unknown top-level keys or a bad entry.
    """
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f'{path}: cannot read node table: {error.strerror}') from None
    if not isinstance(document, dict) or not isinstance(document.get('nodes'), list):
        raise ConfigError(f'{path}: expected a mapping with a list under "nodes"')
    unknown = set(document) - {'nodes', 'fleet'}
    if unknown:
        raise ConfigError(f'{path}: unknown top-level keys {sorted(unknown)}')
    return tuple(build(NodeEntry, entry, f'{path.name}: nodes[{i}]')
                 for i, entry in enumerate(document['nodes'])), document


def _nest(parameters: dict) -> dict:
    """Parameter files may nest mappings or use dotted names; normalise to nesting."""
    nested: dict = {}
    for key, value in parameters.items():
        node = nested
        *parents, leaf = str(key).split('.')
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, dict):
            _merge(node.setdefault(leaf, {}), _nest(value))
        else:
            node[leaf] = value
    return nested


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
