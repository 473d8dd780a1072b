"""The node table: which processes make up the twin, with their parameters.

One YAML file (``config/graph.yaml``) feeds both ``launch/twin.launch.py`` and
``twin_launch``. Loading it validates every entry and every parameter file
against the node's schema, so a typo stops the launch with a message naming
the key instead of a node silently ignoring it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from twin_bringup.config import ConfigError, build, describe, ros_parameters

ROLES = ('twin', 'sim')


@dataclass(frozen=True)
class NodeEntry:
    """One process of the graph."""

    executable: str
    name: str
    config: str = field(metadata=describe('Parameter schema as module:Class.'))
    namespace: str = ''
    parameters: tuple[str, ...] = ()
    remappings: tuple[str, ...] = ()
    role: str = field(default='twin', metadata=describe('twin or sim', choices=ROLES))

    def parameter_files(self, config_dir: Path) -> list[Path]:
        """Absolute paths of the parameter files (relative ones live in ``config_dir``)."""
        return [config_dir / name for name in self.parameters]

    def ros_arguments(self, config_dir: Path) -> list[str]:
        """The ``--ros-args`` part of this node's command line."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:={self.namespace}']
        for path in self.parameter_files(config_dir):
            args += ['--params-file', str(path)]
        for remap in self.remappings:
            args += ['-r', remap]
        return args


@dataclass(frozen=True)
class NodeTable:
    """All processes of the graph, in start order."""

    nodes: tuple[NodeEntry, ...]

    def select(self, with_sim: bool) -> list[NodeEntry]:
        """The entries to start: the twin's nodes, plus the simulator's when asked."""
        return [n for n in self.nodes if with_sim or n.role != 'sim']


def load_node_table(config_dir: Path, filename: str = 'graph.yaml') -> NodeTable:
    """Read and fully validate the node table and the parameter files it names."""
    path = config_dir / filename
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f'{path}: cannot read node table: {error.strerror}') from None
    if not isinstance(document, dict) or not isinstance(document.get('nodes'), list):
        raise ConfigError(f'{path}: expected a mapping with a list under "nodes"')
    if set(document) != {'nodes'}:
        raise ConfigError(f'{path}: unknown top-level keys {sorted(set(document) - {"nodes"})}')
    table = NodeTable(tuple(build(NodeEntry, entry, f'{path.name}: nodes[{i}]')
                            for i, entry in enumerate(document['nodes'])))
    names = [n.namespace + '/' + n.name for n in table.nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f'{path}: node names used twice: {duplicates}')
    for entry in table.nodes:
        validate_parameters(entry, config_dir)
    return table


def validate_parameters(entry: NodeEntry, config_dir: Path) -> object:
    """Check the entry's parameter files against its schema; return the built config."""
    schema = _schema(entry)
    merged: dict = {}
    for path in entry.parameter_files(config_dir):
        if not path.is_file():
            raise ConfigError(f'{entry.name}: parameter file {path} does not exist')
        _merge(merged, _nest(ros_parameters(path, entry.name)))
    return build(schema, merged, entry.name)


def _schema(entry: NodeEntry) -> type:
    module_name, _, class_name = entry.config.partition(':')
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f'{entry.name}.config: cannot load schema {entry.config}: {error}') from None


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
